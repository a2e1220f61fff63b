"""The base of every sink of the target: the run's shared runtime, dates found at SCHEMA.

Loading and ``--plan`` decide alike which Data Extension a stream mirrors, and when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from target_sfmc.fastpath.sink import FastPathSink
from target_sfmc.mirror import MIRRORED_TYPES
from target_sfmc.routing import key_columns

if TYPE_CHECKING:
    from singer_sdk import Target

    from target_sfmc.mirror import Mirror
    from target_sfmc.runtime import LoadingRuntime
    from target_sfmc.settings import StreamSettings


class RuntimeSink(FastPathSink):
    """A sink holding the target's shared runtime (client, pools, accounting)."""

    # The SDK's batch size for sinks that load no rows; a row loader picks its own.
    MAX_SIZE_DEFAULT = 10_000

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict,
        key_properties: list[str] | None,
    ) -> None:
        """Create the sink.

        Args:
            target: The target (a TargetSfmc, which owns the runtime).
            stream_name: Stream name after stream maps.
            schema: Stream schema.
            key_properties: Stream key properties.
        """
        self.runtime: LoadingRuntime = target.runtime  # type: ignore[attr-defined]
        super().__init__(target, stream_name, schema, key_properties)
        self.date_parser  # noqa: B018 - a schema whose dates cannot be found fails at its SCHEMA

    def register_mirror(self, stream: StreamSettings) -> None:
        """Mirror the stream's Data Extension (``load_method: overwrite``) when it can be.

        Args:
            stream: The stream's settings.
        """
        mirror = self.runtime.mirror
        if mirror is None:
            return
        if stream.type in MIRRORED_TYPES and stream.data_extension_key:
            columns = key_columns(stream, list(self.key_properties))
            mirror.register(self.stream_name, stream.data_extension_key, columns)
            return
        self.runtime.report.warn_once(
            self.stream_name,
            "not-mirrored",
            "load_method 'overwrite' mirrors identify and track streams; stream '%s' (%s) is "
            "loaded as upserts only.",
            self.stream_name,
            stream.type,
        )

    def mirror_to_activate(self) -> tuple[Mirror, str] | None:
        """At ``ACTIVATE_VERSION``: the Data Extension to mirror now, if any.

        A version activated before any of its rows arrived is mirrored once they have (at
        the next ``ACTIVATE_VERSION`` or the end of the input).

        Returns:
            The run's mirror and the Data Extension's key, or None when nothing is mirrored now.
        """
        stream = self.runtime.settings.streams.get(self.stream_name)
        key = stream.data_extension_key if stream is not None else None
        mirror = self.runtime.mirror
        if mirror is None or stream is None or key is None or stream.type not in MIRRORED_TYPES:
            self.runtime.report.warn_once(
                self.stream_name,
                "activate-version",
                "ACTIVATE_VERSION for stream '%s' changes nothing: only identify and track "
                "streams are mirrored, with load_method 'overwrite'.",
                self.stream_name,
            )
            return None
        if not mirror.has_rows(key):
            self.logger.info(
                "ACTIVATE_VERSION for stream '%s' before any of its rows: the mirror waits for "
                "them.",
                self.stream_name,
            )
            return None
        return mirror, key
