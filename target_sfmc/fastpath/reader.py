"""Singer input reader: msgspec speed, lanes for flat records, line numbers in errors.

Input is read in blocks of whole lines, as much as is there (a pipe is never waited on for
more). While streams have lanes, a block is first decoded in one call, every line as a
RECORD of a laned stream; when that works, each record goes to its stream's lane in input
order, and a record the lane declines goes the general way at its place. Any other block
(a SCHEMA or STATE in it, a record of another stream or one the decode refuses) is read
line by line with the SDK's loop, where a laned stream's RECORD is handed to its lane as
undecoded JSON text and the SDK's loop sees a placeholder message that nothing acts on.
Every other line is decoded and checked here, and an error names the line, never its
content.
"""

from __future__ import annotations

import collections
import decimal
import json
import re
import sys
import typing as t
from typing import Any

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, decoder
from singer_sdk.exceptions import (
    InvalidInputLine,
    InvalidRecord,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)

from target_sfmc.errors import InputError
from target_sfmc.fastpath.lanes import decode_envelope

# How much input one read takes (at most; a pipe gives what it has).
_BLOCK_BYTES = 1 << 16
# Which line of a block a decode error is about: msgspec says "- at `$[12].record...`".
_FAILED_LINE = re.compile(r"\$\[(\d+)\]")
# Blank lines (a trailing newline, a tap's empty line) are skipped, not errors.
_BLANK_LINE: dict[str, str] = {"type": "BLANK"}
# What the SDK's loop sees for a record a lane took (counted as a RECORD afterwards).
_TAKEN_BY_LANE = "RECORD_TAKEN_BY_LANE"
_LANE_TAKEN: dict[str, str] = {"type": _TAKEN_BY_LANE}
# Keys each message type needs, with the JSON type each must have (object: anything).
_SHAPES: dict[str, tuple[tuple[str, type], ...]] = {
    "SCHEMA": (("stream", str), ("schema", dict)),
    "RECORD": (("stream", str), ("record", dict)),
    "STATE": (("value", object),),
}
_KIND_NAMES: dict[type, str] = {str: "text", dict: "an object"}
# A \ud800-\udfff escape: JSON allows it, but a lone one is no character (msgspec calls the
# line "truncated").
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class ReaderLane(t.NamedTuple):
    """A stream's lane as the reader feeds it."""

    decode: t.Callable[[msgspec.Raw | bytes], Any]  # record JSON -> record_type, or raises
    record_type: type  # the Struct a record decodes into
    # (decoded records, start) -> index of the first record it did not take (len: took all);
    # the record there goes the general way.
    take_run: t.Callable[[t.Sequence[Any], int], int]


class BlockDecoder(t.NamedTuple):
    """Decodes a block of lines, each a RECORD of one of a set of laned streams, in one call."""

    lanes: dict[str, ReaderLane]  # the lanes it was built for
    # block -> messages; raises msgspec.DecodeError for a line that is anything else (blank
    # lines are skipped).
    decode: t.Callable[[bytes], list[Any]]
    # Each message's type -> the ``take_run`` of its stream's lane (a message's ``record`` is
    # the decoded record).
    takes: dict[type, t.Callable[[t.Sequence[Any], int], int]]


def block_decoder(lanes: dict[str, ReaderLane]) -> BlockDecoder:
    """The block decoder of these lanes.

    Args:
        lanes: Stream name -> its lane.

    Returns:
        The decoder, keeping a copy of ``lanes``.
    """
    takes: dict[type, t.Callable[[t.Sequence[Any], int], int]] = {}
    for stream, lane in lanes.items():
        line_type = msgspec.defstruct(
            "LaneLine",
            [("type", t.Literal["RECORD"]), ("record", lane.record_type)],
            tag_field="stream",
            tag=stream,
            gc=False,  # decoded JSON never forms reference cycles
        )
        takes[line_type] = lane.take_run
    union: Any = t.Union[tuple(takes)]  # noqa: UP007 - built at run time
    decode = msgspec.json.Decoder(union, float_hook=decimal.Decimal).decode_lines
    return BlockDecoder(dict(lanes), decode, takes)


class LineNumberingReader(MsgSpecReader):
    """Reads Singer messages, feeds lanes, and reports bad input by line number."""

    line_number = 0

    def __init__(self) -> None:
        """Start with no record lanes."""
        super().__init__()
        # Stream name -> lane.
        self.record_lanes: dict[str, ReaderLane] = {}
        # The block decoder of the current lanes (rebuilt when they change).
        self._block: BlockDecoder | None = None

    @property
    def default_input(self) -> t.IO[bytes]:  # type: ignore[override]
        """Standard input as bytes: each line's UTF-8 is checked on its own, by line number.

        Returns:
            The binary standard input.
        """
        return sys.stdin.buffer

    def deserialize_json(self, line: str | bytes) -> dict:
        """Decode one line, or hand a laned stream's record to its lane.

        Args:
            line: One input line (bytes from standard input, text from ``--input``).

        Returns:
            The message (a placeholder when a lane took the record).

        Raises:
            InputError: When the line is not a JSON object or not a Singer message.
        """
        self.line_number += 1
        if self.record_lanes and self._taken_by_lane(line):
            return _LANE_TAKEN
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            if not line.strip():
                return _BLANK_LINE
            message = _decode_with_non_finite_numbers(line)
            if message is None:
                raise InputError(_decode_problem(line, exc, self.line_number)) from None
        if type(message) is dict and message.get("type") == "RECORD":
            if type(message.get("stream")) is str and type(message.get("record")) is dict:
                return message  # the common case, checked cheaply
        elif not isinstance(message, dict):
            raise InputError(f"Input line {self.line_number} is not a JSON object.")
        _check_shape(message, self.line_number)
        return message

    def _taken_by_lane(self, line: str | bytes) -> bool:
        # Lanes skip parts of a line without decoding them, which would let bytes that are
        # not UTF-8 through; the whole line's decode refuses them.
        if type(line) is bytes and not line.isascii():
            try:
                line.decode()
            except UnicodeDecodeError:
                return False
        try:
            envelope = decode_envelope(line)
        except msgspec.DecodeError:
            return False  # the full decode names the problem
        if envelope.type != "RECORD":
            return False
        lane = self.record_lanes.get(envelope.stream)
        if lane is None:
            return False
        try:
            record = lane.decode(envelope.record)
        except msgspec.DecodeError:
            return False  # the general path decides and words it
        return lane.take_run((record,), 0) == 1

    def _process_unknown_message(self, message_dict: dict) -> None:
        """Skip blank lines and records lanes took; name the line of an unknown message type.

        Args:
            message_dict: The message.

        Raises:
            InputError: For a message type Singer does not define.
        """
        if message_dict is _LANE_TAKEN or message_dict is _BLANK_LINE:
            return
        raise InputError(f"Input line {self.line_number} has an unknown message type.")

    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, t.Callable[[dict], None]],
    ) -> t.Counter[str]:
        """Process the input with the SDK's loop, naming the line of any bad message.

        Args:
            file_input: Input stream.
            callbacks: Message handlers.

        Returns:
            Message counts by type (records lanes took count as RECORD).

        Raises:
            InputError: For malformed or out-of-order input.
        """
        if file_input is not None and hasattr(file_input, "buffer"):
            file_input = file_input.buffer  # a text file: read bytes, check UTF-8 per line
        filein = file_input or self.default_input
        try:
            if hasattr(filein, "read1"):
                counts = self._process_blocks(filein, callbacks)
            else:
                counts = super().process_lines(t.cast("t.IO[str]", filein), callbacks)
        except UnicodeDecodeError:
            raise InputError(f"Input line {self.line_number + 1} is not valid UTF-8.") from None
        except (
            InvalidInputLine,
            InvalidRecord,
            RecordsWithoutSchemaException,
            MissingKeyPropertiesError,
        ) as exc:
            raise _at_line(exc, f"Input line {self.line_number}: {_safe_message(exc)}") from None
        counts = collections.Counter(counts)
        counts["RECORD"] += counts.pop(_TAKEN_BY_LANE, 0)
        counts.pop(_BLANK_LINE["type"], None)
        return counts

    def _process_blocks(
        self, filein: t.Any, callbacks: dict[str, t.Callable[[dict], None]]
    ) -> collections.Counter[str]:
        """The SDK's loop over lines, reading blocks of whole lines (see the module)."""
        stats: collections.Counter[str] = collections.Counter()
        read1 = filein.read1
        rest = b""
        while block := read1(_BLOCK_BYTES):
            end = block.rfind(b"\n") + 1
            if not end:
                rest += block
                continue
            lines, rest = rest + block[:end], block[end:]
            self._process_block(lines, callbacks, stats)
        if rest:
            self._process_line(rest, callbacks, stats)
        return stats

    def _process_block(
        self,
        lines: bytes,
        callbacks: dict[str, t.Callable[[dict], None]],
        stats: collections.Counter[str],
    ) -> None:
        """Whole lines: runs of laned records decoded in one call, other lines one by one."""
        position = 0
        # The block decode skips parts of a line without reading them: check UTF-8 first.
        if self.record_lanes and (lines.isascii() or _is_utf8(lines)):
            while self.record_lanes and position < len(lines):
                taken_to = self._take_run(lines, position, callbacks, stats)
                if taken_to < 0:
                    break  # the rest line by line
                if taken_to < len(lines):  # a line that is no laned record: the general way
                    end = lines.index(b"\n", taken_to) + 1
                    self._process_line(lines[taken_to:end], callbacks, stats)
                    taken_to = end
                position = taken_to
        for line in lines[position:].split(b"\n")[:-1]:
            self._process_line(line, callbacks, stats)

    def _process_line(
        self,
        line: bytes,
        callbacks: dict[str, t.Callable[[dict], None]],
        stats: collections.Counter[str],
    ) -> None:
        """One line, as the SDK's loop handles it."""
        self._current_message = line  # type: ignore[assignment] # the SDK reads bytes too
        line_dict = self.deserialize_json(line)
        self.assert_line_requires(line_dict, requires={"type"})
        record_type = line_dict["type"]
        if callback := callbacks.get(record_type):
            callback(line_dict)
        else:
            self._process_unknown_message(line_dict)
        stats[record_type] += 1

    def _take_run(
        self,
        lines: bytes,
        start: int,
        callbacks: dict[str, t.Callable[[dict], None]],
        stats: collections.Counter[str],
    ) -> int:
        """Hand the laned RECORD lines from ``start`` on to their lanes, up to another line.

        Returns:
            Where the first line that is no laned record starts (``len(lines)``: none is),
            or -1 when the rest of the block must be read line by line.
        """
        block = self._block
        if block is None or block.lanes != self.record_lanes:
            block = self._block = block_decoder(self.record_lanes)
        decoded = _decode_run(block.decode, lines[start:] if start else lines)
        if decoded is None:
            return -1
        run, messages = decoded
        if messages:
            self._feed_run(block.takes, run, messages, callbacks, stats)
        return start + len(run)

    def _feed_run(
        self,
        takes: dict[type, t.Callable[[t.Sequence[Any], int], int]],
        run: bytes,
        messages: list[Any],
        callbacks: dict[str, t.Callable[[dict], None]],
        stats: collections.Counter[str],
    ) -> None:
        """Each stretch of one stream's records to its lane; a declined one the general way."""
        first = self.line_number
        texts: list[bytes] | None = None
        offset, count = 0, len(messages)
        while offset < count:
            kind = type(messages[offset])
            end = count
            if len(takes) > 1:
                end = offset + 1
                while end < count and type(messages[end]) is kind:
                    end += 1
            records = [message.record for message in messages[offset:end]]
            self.line_number = first + offset
            taken_to = offset + takes[kind](records, 0)
            stats[_TAKEN_BY_LANE] += taken_to - offset
            offset = taken_to
            self.line_number = first + offset
            if offset < end:  # declined: the general way takes it here
                if texts is None:
                    texts = run.split(b"\n")
                self._process_line(texts[offset], callbacks, stats)
                offset += 1
        self.line_number = first + count


def _decode_run(
    decode: t.Callable[[bytes], list[Any]], lines: bytes
) -> tuple[bytes, list[Any]] | None:
    """The leading lines that are laned RECORDs, and their messages.

    Returns:
        ``(those lines, their messages)`` (none when the first line is another kind), or
        None when the lines must be read one by one (not JSON, blank lines).
    """
    run = lines
    try:
        messages = decode(run)
    except msgspec.ValidationError as exc:
        # Every line before the one named (``$[n]``) is a laned record: decode those.
        found = _FAILED_LINE.match(str(exc).rpartition(" - at `")[2])
        if found is None:
            return None
        run = run[: _line_start(run, int(found[1]))]
        try:
            messages = decode(run) if run else []
        except msgspec.DecodeError:
            return None
    except msgspec.DecodeError:
        return None  # not JSON: the line by line read names the line
    if len(messages) != run.count(b"\n"):
        return None  # blank lines: the decode skipped them
    return run, messages


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _line_start(lines: bytes, index: int) -> int:
    """Where line ``index`` (from 0) of whole lines starts."""
    position = 0
    for _ in range(index):
        position = lines.index(b"\n", position) + 1
    return position


def _decode_with_non_finite_numbers(line: str | bytes) -> Any:
    """Decode a line with ``NaN``/``Infinity`` (Python taps write them) as Decimals.

    Not JSON, but common; the mapping then refuses such a number as a row error.

    Returns:
        The decoded line, or None when it is not JSON even so.
    """
    raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if b"NaN" not in raw and b"Infinity" not in raw:
        return None
    try:
        return json.loads(raw, parse_float=decimal.Decimal, parse_constant=decimal.Decimal)
    except ValueError:
        return None


def _decode_problem(line: str | bytes, exc: msgspec.DecodeError, line_number: int) -> str:
    raw = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if "UTF-8" in str(exc):
        return f"Input line {line_number} is not valid UTF-8."
    if "truncated" in str(exc) and _SURROGATE_ESCAPE.search(raw):
        return (
            f"Input line {line_number} is not valid JSON: it has a \\u escape of a lone UTF-16 "
            "surrogate (\\ud800-\\udfff), which is no character."
        )
    return f"Input line {line_number} is not valid JSON ({exc})."


def _check_shape(message: dict, line_number: int) -> None:
    shape = _SHAPES.get(str(message.get("type")), ())
    missing = [key for key, _ in shape if key not in message]
    if "type" not in message or missing:
        raise InputError(
            f"Input line {line_number} is not a valid Singer message "
            f"(missing {', '.join(missing) or 'type'})."
        )
    for key, kind in shape:
        if not isinstance(message[key], kind):
            raise InputError(
                f"Input line {line_number} is not a valid Singer message "
                f"('{key}' must be {_KIND_NAMES[kind]})."
            )


_LINE_ERROR_CLASSES: dict[type[Exception], type[Exception]] = {}


def _init_message(self: Exception, message: str) -> None:
    Exception.__init__(self, message)
    self.error_message = message  # type: ignore[attr-defined]
    self.record = {}  # type: ignore[attr-defined]


def _at_line(exc: Exception, message: str) -> Exception:
    """Re-type an SDK input error so it is both an InputError and the SDK's exception."""
    original = type(exc)
    cls = _LINE_ERROR_CLASSES.get(original)
    if cls is None:
        cls = type(original.__name__, (InputError, original), {"__init__": _init_message})
        _LINE_ERROR_CLASSES[original] = cls
    return cls(message)


def _safe_message(exc: Exception) -> str:
    if isinstance(exc, InvalidRecord):
        return f"a record does not match its stream's schema: {exc.error_message}"
    if isinstance(exc, MissingKeyPropertiesError) and str(exc).startswith("a record of stream"):
        return str(exc)  # the fast path's own words: names, never values
    if isinstance(exc, MissingKeyPropertiesError):
        return "a record is missing one of its stream's key properties."
    if isinstance(exc, InvalidInputLine):
        return "the message is not valid (a SCHEMA needs 'properties')."
    return str(exc)
