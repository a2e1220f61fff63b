"""A default singer-sdk target that does nothing: the CPU baseline of `benchmarks/run.py`.

Default SDK settings throughout: the default (stdlib json) message reader, the default
jsonschema validator with ``validate_records`` on, date-time parsing, default batch size.
``process_batch`` does nothing.

Run: ``python benchmarks/noop_target.py --input FILE`` (or records on stdin).
"""

from __future__ import annotations

from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.sinks import BatchSink


class NoopSink(BatchSink):
    """Collects records in the SDK's default way, then drops each batch."""

    def process_batch(self, context: dict) -> None:
        """Do nothing with the batch."""


class NoopTarget(Target):
    """Singer target whose sink throws every batch away."""

    name = "target-noop"
    config_jsonschema = th.PropertiesList().to_dict()
    default_sink_class = NoopSink


if __name__ == "__main__":
    NoopTarget.cli()
