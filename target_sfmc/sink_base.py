"""The base of every sink of the target: the run's shared runtime, dates found at SCHEMA."""

from __future__ import annotations

from typing import TYPE_CHECKING

from target_sfmc.fastpath.sink import FastPathSink

if TYPE_CHECKING:
    from singer_sdk import Target

    from target_sfmc.runtime import LoadingRuntime


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
