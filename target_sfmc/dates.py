"""Date, date-time and time fields of a stream, parsed with the SDK's rules but faster.

The schema is read once: each record then only visits its date-like fields (the SDK walks the
whole schema for every record). Error messages never quote the value.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

PARSERS: dict[str, Callable[[Any], Any]] = {
    "date-time": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
}
_MAXIMUM: dict[str, Any] = {
    "date-time": dt.datetime.max.replace(tzinfo=dt.UTC),
    "date": dt.date.max,
    "time": dt.time.max,
}

Field = tuple[str, str, "Callable[[Any], Any]"]


def _string_format(definition: Any) -> str | None:
    if not isinstance(definition, dict):
        return None
    kinds = definition.get("type", [])
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    kind = definition.get("format")
    return kind if is_string and kind in PARSERS else None


def datelike_kind(definition: Any) -> str | None:
    """The date-like kind of a property, as the SDK decides it.

    A string with format ``date-time``, ``date`` or ``time``, also as one branch of an
    ``anyOf`` (the first such branch counts).

    Args:
        definition: A property's schema.

    Returns:
        ``date-time``, ``date``, ``time``, or None.
    """
    kind = _string_format(definition)
    if kind is None and isinstance(definition, dict) and isinstance(definition.get("anyOf"), list):
        kind = next(filter(None, map(_string_format, definition["anyOf"])), None)
    return kind


def datelike_properties(schema: dict) -> tuple[Field, ...]:
    """The date, date-time and time properties of an object schema, with their parsers.

    Args:
        schema: An object schema.

    Returns:
        ``(name, kind, parser)`` per date-like property.
    """
    fields = []
    for name, definition in schema.get("properties", {}).items():
        kind = datelike_kind(definition)
        if kind in PARSERS:
            fields.append((name, kind, PARSERS[kind]))
    return tuple(fields)


def is_canonical_datetime(text: str, parsed: dt.datetime) -> bool:
    """Tell whether a date-time string is already as SFMC wants it: ``T`` and ``±hh:mm``.

    Args:
        text: The string as received.
        parsed: Its parsed value.

    Returns:
        True when it can be sent as it is.
    """
    return (
        parsed.tzinfo is not None
        and len(text) >= 25  # noqa: PLR2004 - YYYY-MM-DDTHH:MM:SS+hh:mm
        and text[10] == "T"
        and text[-6] in "+-"
        and text[-3] == ":"
    )


def parse_datelike(value: Any, kind: str, parse: Callable[[Any], Any]) -> Any:
    """Parse one date-like value; a date-time already written as SFMC wants it stays text.

    Formatting such a value again is the costliest step a date-time would otherwise take.

    Args:
        value: The value as received.
        kind: ``date-time``, ``date`` or ``time``.
        parse: The kind's parser (from :data:`PARSERS`).

    Returns:
        The parsed value, or ``value`` itself when it can be sent as it is.

    Raises:
        ValueError: When the value does not parse.
        TypeError: When the value is not text.
    """
    parsed = parse(value)
    if kind == "date-time" and is_canonical_datetime(value, parsed):
        return value
    return parsed


class DateParser:
    """Parses a stream's top-level date-like fields (and those one object level down)."""

    def __init__(
        self, schema: dict, treatment: DatetimeErrorTreatmentEnum, logger: logging.Logger
    ) -> None:
        """Read the schema once.

        Args:
            schema: The stream's schema.
            treatment: What to do with a top-level value that does not parse (SDK setting).
            logger: Where MAX/NULL repairs are reported.
        """
        self._treatment = treatment
        self._logger = logger
        self._fields = datelike_properties(schema)
        nested: list[tuple[str, str, str, Callable[[Any], Any]]] = []
        for parent, definition in schema.get("properties", {}).items():
            if isinstance(definition, dict) and isinstance(definition.get("properties"), dict):
                nested += [(parent, *field) for field in datelike_properties(definition)]
        self._nested = tuple(nested)

    def parse(self, record: dict[str, Any]) -> None:
        """Parse the record's date-like fields in place (see :func:`parse_datelike`).

        Args:
            record: The record.

        Raises:
            InvalidRecord: When a top-level value does not parse and the treatment is ERROR.
        """
        for name, kind, parse in self._fields:
            value = record.get(name)
            if value is None:
                continue
            try:
                record[name] = parse_datelike(value, kind, parse)
            except (ValueError, TypeError):
                record[name] = self._repair(name, kind)
        for parent, name, kind, parse in self._nested:
            # Segment traits/properties: the SDK leaves nested values alone, so a value that
            # does not parse stays as it is rather than failing the record.
            container = record.get(parent)
            value = container.get(name) if type(container) is dict else None
            if type(value) is not str:
                continue
            try:
                container[name] = parse_datelike(value, kind, parse)  # type: ignore[index]
            except ValueError:
                continue

    def _repair(self, name: str, kind: str) -> Any:
        if self._treatment == DatetimeErrorTreatmentEnum.NULL:
            self._logger.warning("A '%s' value is not a valid %s; loading null.", name, kind)
            return None
        if self._treatment == DatetimeErrorTreatmentEnum.MAX:
            self._logger.warning("A '%s' value is not a valid %s; loading the maximum.", name, kind)
            return _MAXIMUM[kind]
        raise InvalidRecord(f"'{name}' is not a valid ISO-8601 {kind}", {})
