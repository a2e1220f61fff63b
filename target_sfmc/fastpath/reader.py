"""Singer input reader: msgspec speed, lanes for flat records, line numbers in errors.

Reading stays the SDK's own loop; this reader changes how one line is decoded. A RECORD of
a stream with a lane is handed to the lane as undecoded JSON text; when the lane takes it,
the SDK's loop sees a placeholder message that nothing acts on. Every other line is decoded
and checked here, and an error names the line, never its content.
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


class LineNumberingReader(MsgSpecReader):
    """Reads Singer messages, feeds lanes, and reports bad input by line number."""

    line_number = 0

    def __init__(self) -> None:
        """Start with no record lanes."""
        super().__init__()
        # Stream name -> lane: takes a record's JSON text, True when it handled the record.
        self.record_lanes: dict[str, t.Callable[[msgspec.Raw], bool]] = {}

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
        return lane is not None and lane(envelope.record)

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
        try:
            counts = super().process_lines(file_input, callbacks)
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
