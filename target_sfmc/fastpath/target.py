"""The target side of the fast path: the SDK's per-record step for streams without maps.

For a stream with no stream map, no flattening and no SDK metadata columns, the SDK still
copies, transforms and looks up every record; that costs more than mapping the record to
SFMC. :meth:`FastPathTarget._process_record_message` keeps the SDK's steps, in the SDK's
order, without that work (with the reader's loop, the only SDK code copied here). Once a
stream's first record went this way, its sink may offer a lane, which the reader then
feeds; a lane ends
each record with the same steps, its clock-based ones (metrics, record age) checked at most
every half second.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import sys
import time
import typing as t

from singer_sdk import Target
from singer_sdk.mapper import SameRecordTransform, StreamMap
from singer_sdk.plugin_base import PluginBase, _ConfigInput

from target_sfmc.batch_files import batch_records
from target_sfmc.fastpath.reader import LineNumberingReader, ReaderLane
from target_sfmc.fastpath.sink import FastPathSink
from target_sfmc.jsonio import encode_json

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.sinks import Sink

# Lanes run the SDK's clock-based steps (metric logging, record age) at most this often.
_CLOCK_CHECK_SECONDS = 0.5

# The SDK code copied here, by fingerprint: a test fails when the installed SDK's differs.
COPIED_SDK_CODE: dict[str, str] = {
    # The loop body, in fastpath/reader.py (LineNumberingReader._process_line).
    "singer_sdk.singerlib.encoding.base.GenericSingerReader.process_lines": (
        "f6d848854616d1d8f15ee84c52d07d1e04b96bd188832a8fddf1c35e96c4b35a"
    ),
    "singer_sdk.target_base.Target._process_record_message": (
        "08aaf4096e2d39e7c3826848feebbaac40fb7b3e67fe863576cde90e4e425dfc"
    ),
}


def sdk_code_fingerprint(function: t.Callable[..., t.Any]) -> str:
    """Fingerprint of an SDK function's source, to notice when an upgrade changes it.

    Args:
        function: The SDK function.

    Returns:
        SHA-256 of its source text.
    """
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()


class FastPathTarget(Target):
    """A Target whose records skip the SDK's generic per-record work where they can."""

    message_reader_class = LineNumberingReader

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Create the target with no direct streams yet.

        Args:
            *args: Passed to :class:`singer_sdk.Target`.
            **kwargs: Passed to :class:`singer_sdk.Target`.
        """
        super().__init__(*args, **kwargs)
        self._direct_sinks: dict[str, Sink] = {}
        self._lanes_tried: set[str] = set()
        # Stream -> records its lanes took (one cell per stream, cheap to add to).
        self._lane_records: dict[str, list[int]] = {}
        self._state_on_hold = False

    @classmethod
    def from_cli(cls, *, about: bool, about_format: str | None, config: t.Any) -> t.Self:
        """The SDK's CLI start: ``--about`` (which exits), the version line, the target.

        Args:
            about: Display package metadata and settings.
            about_format: Format for ``--about``.
            config: Config input from the CLI.

        Returns:
            The target, its config validated.
        """
        PluginBase.invoke.__func__(cls, about=about, about_format=about_format)  # type: ignore[attr-defined]
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        return cls(config=config.config, validate_config=True, parse_env_config=config.parse_env)

    @property
    def _reader(self) -> LineNumberingReader:
        return t.cast("LineNumberingReader", self.message_reader)

    def _process_schema_message(self, message_dict: dict) -> None:
        """Handle a SCHEMA; when it replaces a stream's sink, load the old sink's rows first.

        The SDK keeps a replaced sink until the next full drain, while the new sink may drain
        earlier when it fills: the old rows would then land after newer ones for the same keys.

        Args:
            message_dict: The SCHEMA message.
        """
        stream_name = str(message_dict.get("stream"))
        self._reader.record_lanes.pop(stream_name, None)
        self._lanes_tried.discard(stream_name)
        super()._process_schema_message(message_dict)
        for stream_map in self.mapper.stream_maps.get(stream_name, []):
            self._count_filtered(stream_map, stream_name)
        for replaced in self._sinks_to_clear:
            self.drain_one(replaced)

    def _count_filtered(self, stream_map: StreamMap, stream_name: str) -> None:
        """Tell :meth:`on_record_filtered` of each record a stream map drops.

        The SDK drops such records without a word (``__filter__``, ``__else__: __NULL__``).
        """
        transform = stream_map.transform
        if getattr(transform, "counts_filtered", False):
            return
        on_filtered = self.on_record_filtered

        def counting(record: dict) -> dict | None:
            result = transform(record)
            if result is None:
                on_filtered(stream_name)
            return result

        counting.counts_filtered = True  # type: ignore[attr-defined]
        stream_map.transform = counting  # type: ignore[method-assign]

    def on_record_filtered(self, stream_name: str) -> None:
        """A stream map dropped a record of the stream (the SDK's default: nothing).

        Args:
            stream_name: The record's stream, before stream maps.
        """

    def _process_record_message(self, message_dict: dict) -> None:
        """Handle a RECORD: the SDK's steps, minus the generic work, for direct streams.

        Args:
            message_dict: The RECORD message.
        """
        stream_name = message_dict["stream"]
        sink: Sink | None = self._direct_sinks.get(stream_name)
        if sink is None or self._sinks_active.get(stream_name) is not sink:
            sink = self._direct_sink(stream_name)
        if sink is None:
            super()._process_record_message(message_dict)
            return
        record = message_dict["record"]
        context = sink._get_context(record)  # noqa: SLF001
        sink._remove_sdc_metadata_from_record(record)  # noqa: SLF001
        sink._validate_and_parse(record)  # noqa: SLF001
        record = sink.preprocess_record(record, context)
        sink._singer_validate_message(record)  # noqa: SLF001
        sink.tally_record_read()
        sink.process_record(record, context)
        sink.record_counter_metric.increment()
        if sink.is_full:  # the SDK's _after_process_record only logs at DEBUG: skipped
            self.drain_one(sink)
        self._handle_max_record_age()
        if stream_name not in self._lanes_tried:
            self._lanes_tried.add(stream_name)
            lane = self._record_lane(stream_name, sink)
            if lane is not None:
                self._reader.record_lanes[stream_name] = lane

    def _process_batch_message(self, message_dict: dict) -> None:
        """Handle a BATCH: each record of its files goes the way of a RECORD message.

        Args:
            message_dict: The BATCH message.
        """
        stream_name = message_dict.get("stream")
        for record in batch_records(message_dict, self._reader.line_number):
            self._process_record_message(
                {"type": "RECORD", "stream": stream_name, "record": record}
            )

    def _record_lane(self, stream_name: str, sink: Sink) -> ReaderLane | None:
        """The reader's lane for a direct stream: the steps above, minus the generic decode.

        Args:
            stream_name: The stream.
            sink: Its sink (direct: no stream map, no SDK metadata properties).

        Returns:
            The lane (its ``take_run``: decoded records and where to start -> where the
            first record it did not take is), or None when the stream has no lane.
        """
        if not isinstance(sink, FastPathSink):
            return None
        sink_lane = sink.record_lane()
        if sink_lane is None:
            return None
        take_run = self._lane_take_run(stream_name, sink, sink_lane.take)
        return ReaderLane(sink_lane.decode, sink_lane.record_type, take_run)

    def _lane_take_run(
        self, stream_name: str, sink: Sink, take: t.Callable[[t.Any, dict], bool]
    ) -> t.Callable[[t.Sequence[t.Any], int], int]:
        """A lane's ``take_run``: its sink's ``take`` per record, the SDK's steps per run."""
        sinks_active = self._sinks_active
        no_record: dict = {}  # the batch context does not depend on the record
        # The same objects for the sink's life, looked up once rather than per record.
        get_context = sink._get_context  # noqa: SLF001
        tally_record_read = sink.tally_record_read
        record_counter = sink.record_counter_metric
        max_size = sink.max_size  # fixed for the sink's life (batch_size_rows is config)
        drain_one = self.drain_one
        handle_max_record_age = self._handle_max_record_age
        clock = time.monotonic
        next_clock_check = clock()
        taken = self._lane_records.setdefault(stream_name, [0])

        def take_run(records: t.Sequence[t.Any], start: int) -> int:
            nonlocal next_clock_check
            if sinks_active.get(stream_name) is not sink:
                return start
            index, end = start, len(records)
            while index < end:
                # Up to a full batch, then the SDK's per-record steps once for all of them.
                context = get_context(no_record)
                stop = min(end, index + max(max_size - sink.current_size, 1))
                first = index
                while index < stop and take(records[index], context):
                    index += 1
                if index > first:
                    taken[0] += index - first
                    tally_record_read(index - first)
                    record_counter.value += index - first  # exact; its clock is read below
                if sink.current_size >= max_size:
                    drain_one(sink)
                if index < stop:
                    break  # declined: the general way takes it next
            now = clock()
            if now >= next_clock_check:
                next_clock_check = now + _CLOCK_CHECK_SECONDS
                record_counter.increment(0)
                handle_max_record_age()
            return index

        return take_run

    def _direct_sink(self, stream_name: str) -> Sink | None:
        maps = self.mapper.stream_maps.get(stream_name)
        sink = self._sinks_active.get(stream_name)
        direct = (
            sink is not None
            and maps is not None
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == stream_name
            and not maps[0].flattening_enabled
            and not sink.include_sdc_metadata_properties
        )
        if not direct or sink is None:
            self._direct_sinks.pop(stream_name, None)
            return None
        self._direct_sinks[stream_name] = sink
        return sink

    def process_endofpipe(self) -> None:
        """End of input: the SDK's end (load and clean up), :meth:`on_input_loaded`, final STATE.

        The final STATE waits for :meth:`on_input_loaded`: when that step fails, no STATE
        claims the input was loaded.
        """
        self._state_on_hold = True
        try:
            super().process_endofpipe()
        finally:
            self._state_on_hold = False
        for stream_name, (taken,) in self._lane_records.items():
            self.logger.debug("Stream '%s': %d records took its lane.", stream_name, taken)
        self.on_input_loaded()
        if self._latest_state:
            self._write_state_message(copy.deepcopy(self._latest_state))

    def on_input_loaded(self) -> None:
        """Every record of the input is loaded and confirmed (the SDK's default: nothing)."""

    def _write_state_message(self, state: dict) -> None:
        """Emit STATE; tap floats arrive as Decimal, which ``json.dumps`` cannot write.

        Args:
            state: The latest state.
        """
        if self._state_on_hold:
            return
        sys.stdout.buffer.write(encode_json(state) + b"\n")
        sys.stdout.flush()
        self.on_state_emitted(state)

    def on_state_emitted(self, state: dict) -> None:
        """A STATE message was written to stdout (the SDK's default: nothing more).

        Args:
            state: The state.
        """

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """On SIGTERM/SIGINT, let the target decide what may still be loaded.

        Args:
            signum: Signal number.
            frame: Current frame.
        """
        del frame
        self.on_termination(signum)

    def on_termination(self, signum: int) -> None:
        """React to SIGTERM/SIGINT (the SDK's default: drain everything, then exit).

        Args:
            signum: Signal number.
        """
        self.drain_all(is_endofpipe=True)
        raise SystemExit(128 + signum)
