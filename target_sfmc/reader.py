"""Singer input reader: msgspec speed, line numbers in errors, no record values in logs."""

from __future__ import annotations

import collections
import typing as t
from collections import defaultdict

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecReader, decoder
from singer_sdk.exceptions import (
    InvalidInputLine,
    InvalidRecord,
    MissingKeyPropertiesError,
    RecordsWithoutSchemaException,
)

from target_sfmc.errors import InputError
from target_sfmc.lanes import decode_envelope

# Blank lines (a trailing newline, a tap's empty line) are skipped, not errors.
_BLANK_LINE: dict[str, str] = {"type": "BLANK"}
# Keys each message type needs, with the JSON type each must have (object: anything).
_SHAPES: dict[str, tuple[tuple[str, type], ...]] = {
    "SCHEMA": (("stream", str), ("schema", dict)),
    "RECORD": (("stream", str), ("record", dict)),
    "STATE": (("value", object),),
}
_KIND_NAMES: dict[type, str] = {str: "text", dict: "an object"}


class LineNumberingReader(MsgSpecReader):
    """Reads Singer messages and reports bad input by line number."""

    line_number = 0

    def __init__(self) -> None:
        """Start with no record lanes."""
        super().__init__()
        # Stream name -> lane: takes a record's JSON text, True when it handled the record.
        self.record_lanes: dict[str, t.Callable[[msgspec.Raw], bool]] = {}

    def deserialize_json(self, line: str) -> dict:
        """Parse one line without ever logging its content.

        Args:
            line: One input line.

        Returns:
            The message.

        Raises:
            InputError: When the line is not a JSON object.
        """
        self.line_number += 1
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            if not line.strip():
                return _BLANK_LINE
            raise InputError(f"Input line {self.line_number} is not valid JSON ({exc}).") from None
        if type(message) is dict and message.get("type") == "RECORD":
            if type(message.get("stream")) is str and type(message.get("record")) is dict:
                return message  # the common case, checked cheaply
        elif not isinstance(message, dict):
            raise InputError(f"Input line {self.line_number} is not a JSON object.")
        shape = _SHAPES.get(str(message.get("type")), ())
        missing = [key for key, _ in shape if key not in message]
        if "type" not in message or missing:
            raise InputError(
                f"Input line {self.line_number} is not a valid Singer message "
                f"(missing {', '.join(missing) or 'type'})."
            )
        for key, kind in shape:
            if not isinstance(message[key], kind):
                raise InputError(
                    f"Input line {self.line_number} is not a valid Singer message "
                    f"('{key}' must be {_KIND_NAMES[kind]})."
                )
        return message

    def _process_unknown_message(self, message_dict: dict) -> None:
        """Skip blank lines; name the line of an unknown message type.

        Args:
            message_dict: The message.

        Raises:
            InputError: For a message type Singer does not define.
        """
        if message_dict is _BLANK_LINE:
            return
        raise InputError(f"Input line {self.line_number} has an unknown message type.")

    def process_lines(
        self,
        file_input: t.IO[str] | None,
        callbacks: dict[str, t.Callable[[dict], None]],
    ) -> t.Counter[str]:
        """Process the input, naming the line of any bad message.

        Args:
            file_input: Input stream.
            callbacks: Message handlers.

        Returns:
            Message counts by type.

        Raises:
            InputError: For malformed or out-of-order input.
        """
        try:
            return self._read(file_input or self.default_input, callbacks)
        except (
            InvalidInputLine,
            InvalidRecord,
            RecordsWithoutSchemaException,
            MissingKeyPropertiesError,
        ) as exc:
            raise _at_line(exc, f"Input line {self.line_number}: {_safe_message(exc)}") from None

    def _read(
        self, lines: t.Iterable[str], callbacks: dict[str, t.Callable[[dict], None]]
    ) -> t.Counter[str]:
        """The SDK's loop; a record of a stream with a lane skips the full decode."""
        stats: dict[str, int] = defaultdict(int)
        lanes = self.record_lanes
        for line in lines:
            self._current_message = line
            if lanes:
                try:
                    envelope = decode_envelope(line)
                except msgspec.DecodeError:
                    envelope = None  # the full decode below names the problem
                if envelope is not None and envelope.type == "RECORD":
                    lane = lanes.get(envelope.stream)
                    if lane is not None and lane(envelope.record):
                        self.line_number += 1
                        stats["RECORD"] += 1
                        continue
            message = self.deserialize_json(line)
            self.assert_line_requires(message, requires={"type"})
            kind = message["type"]
            if callback := callbacks.get(kind):
                callback(message)
            else:
                self._process_unknown_message(message)
            stats[kind] += 1
        return collections.Counter(stats)


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
    if isinstance(exc, MissingKeyPropertiesError):
        return "a record is missing one of its stream's key properties."
    if isinstance(exc, InvalidInputLine):
        return "the message is not valid (a SCHEMA needs 'properties')."
    return str(exc)
