"""Streams nobody configured (``ignore_unconfigured_streams``): records counted and skipped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from target_sfmc.records import UNCONFIGURED_STREAM
from target_sfmc.sink_base import RuntimeSink

if TYPE_CHECKING:
    from singer_sdk.sinks.core import BaseJSONSchemaValidator


class IgnoredStreamSink(RuntimeSink):
    """Counts the records of a stream nobody configured (``ignore_unconfigured_streams``)."""

    def setup(self) -> None:
        """Warn (once) that the stream is skipped."""
        self.runtime.report.warn_once(
            self.stream_name,
            UNCONFIGURED_STREAM,
            "Stream '%s' is not configured; its records are skipped and counted.",
            self.stream_name,
        )

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        """Records of an ignored stream are not validated.

        Returns:
            None.
        """
        return None

    def validate_and_parse(self, record: dict[str, Any]) -> None:
        """Records of an ignored stream are neither validated nor parsed: only counted.

        Args:
            record: The record.
        """

    def process_record(self, record: dict, context: dict) -> None:
        """Count the record as skipped.

        Args:
            record: The record.
            context: The SDK's batch context.
        """
        report = self.runtime.report
        report.count(self.stream_name, read=1)
        report.count_skip(self.stream_name, UNCONFIGURED_STREAM)
        if report.dead_letters is not None:
            context.setdefault("letters", []).append(
                report.dead_letter_entry(self.stream_name, None, UNCONFIGURED_STREAM, record)
            )

    def process_batch(self, context: dict) -> None:
        """Write the batch's dead letters.

        Args:
            context: The SDK's batch context.
        """
        self.runtime.report.dead_letter(context.get("letters", []))
