"""Date, date-time and time fields of a stream, parsed with the SDK's rules but faster.

The schema is read once: each record then only visits its date-like fields (the SDK walks the
whole schema for every record). Error messages never quote the value.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum

from target_sfmc.errors import TargetSfmcError

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
# SFMC stores milliseconds: YYYY-MM-DDTHH:MM:SS, then nothing or "." and 1 to 3 digits.
_SECONDS_END = 19
_CANONICAL_LENGTHS = frozenset({25, 27, 28, 29})
_CANONICAL_LENGTHS_MIN = 25
# The text of such a date-time (with its offset); once it parses, it is sent as it is.
canonical_datetime_text = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,3})?[+-][0-9]{2}:[0-9]{2}"
).fullmatch
_MAX_REFERENCE_HOPS = 32


def _string_format(definition: Any) -> str | None:
    if not isinstance(definition, dict):
        return None
    kinds = definition.get("type", [])
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    kind = definition.get("format")
    return kind if is_string and kind in PARSERS else None


class UnresolvableReferenceError(TargetSfmcError):
    """A date-like property's ``$ref`` cannot be followed; its kind cannot be known."""


def resolve_local_reference(definition: Any, root: dict, name: str) -> Any:
    """Follow a property schema's ``$ref`` chain inside the stream's own schema.

    Args:
        definition: A property's schema.
        root: The stream's schema (where ``#/...`` pointers start).
        name: The property's name, for the error.

    Returns:
        The schema the reference points at (``definition`` itself without a ``$ref``).

    Raises:
        UnresolvableReferenceError: When the reference leaves the schema or points at nothing.
    """
    for _ in range(_MAX_REFERENCE_HOPS):
        ref = definition.get("$ref") if isinstance(definition, dict) else None
        if not isinstance(ref, str):
            return definition
        node: Any = root
        if ref.startswith("#/") or ref == "#":
            for raw in ref[2:].split("/") if ref != "#" else []:
                part = raw.replace("~1", "/").replace("~0", "~")
                node = node.get(part) if isinstance(node, dict) else None
        else:
            node = None
        if not isinstance(node, dict):
            raise UnresolvableReferenceError(
                f"Property '{name}' has a $ref ('{ref}') that cannot be resolved inside its "
                "stream's schema, so whether it holds dates cannot be told; fix the schema."
            )
        definition = node
    return definition


def _datelike_kind(definition: dict, root: dict, name: str) -> str | None:
    definition = resolve_local_reference(definition, root, name)
    if not isinstance(definition, dict):
        return None
    kind = _string_format(definition)
    if kind is None:
        # oneOf / anyOf branches may be references too (Salesforce, Segment exports).
        for branch in (*definition.get("anyOf", ()), *definition.get("oneOf", ())):
            if isinstance(branch, dict):
                kind = _string_format(resolve_local_reference(branch, root, name))
                if kind is not None:
                    break
    return kind


def datelike_properties(schema: dict, root: dict | None = None) -> tuple[Field, ...]:
    """The date, date-time and time properties of an object schema, with their parsers.

    A property whose schema is a ``$ref`` (or an ``anyOf``/``oneOf`` of them) is read
    through the reference, inside the stream's schema.

    Args:
        schema: An object schema.
        root: The stream's schema, when ``schema`` is a part of it.

    Returns:
        ``(name, kind, parser)`` per date-like property.
    """
    root = schema if root is None else root
    fields = []
    for name, definition in schema.get("properties", {}).items():
        kind = _datelike_kind(definition, root, name) if isinstance(definition, dict) else None
        if kind in PARSERS:
            fields.append((name, kind, PARSERS[kind]))
    return tuple(fields)


def is_canonical_datetime(text: str, parsed: dt.datetime) -> bool:
    """Tell whether a date-time string is already as SFMC wants it.

    That is ``YYYY-MM-DDTHH:MM:SS``, at most 3 fractional digits (SFMC stores
    milliseconds) and a ``±hh:mm`` offset.

    Args:
        text: The string as received.
        parsed: Its parsed value.

    Returns:
        True when it can be sent as it is.
    """
    length = len(text)
    return (
        parsed.tzinfo is not None
        and length in _CANONICAL_LENGTHS
        and text[10] == "T"
        and text[-6] in "+-"
        and text[-3] == ":"
        and (length == _CANONICAL_LENGTHS_MIN or text[_SECONDS_END] == ".")
    )


def parse_datelike(value: Any, kind: str, parse: Callable[[Any], Any]) -> Any:
    """Parse one date-like value; a date-time already written as SFMC wants it stays text.

    Formatting such a value again is the costliest step a date-time would otherwise take. A
    ``time`` is checked but kept as the text received (SFMC has no time type: it lands in a
    Text column, as the tap wrote it).

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
    if kind == "time" or (kind == "date-time" and is_canonical_datetime(value, parsed)):
        return value
    return parsed


NestedField = tuple[str, str, str, "Callable[[Any], Any]"]


def nested_datelike_properties(schema: dict) -> tuple[NestedField, ...]:
    """The date-like properties one object level down (Segment traits, properties, context).

    Args:
        schema: The stream's schema.

    Returns:
        ``(parent, name, kind, parser)`` per date-like property of an object property.
    """
    nested: list[NestedField] = []
    for parent, definition in schema.get("properties", {}).items():
        if isinstance(definition, dict) and isinstance(definition.get("properties"), dict):
            nested += [(parent, *field) for field in datelike_properties(definition, schema)]
    return tuple(nested)


def parse_nested_datelike(record: dict[str, Any], nested: tuple[NestedField, ...]) -> None:
    """Parse the date-like values one object level down, in place; never refuse one.

    The SDK leaves nested values alone, so a value that does not parse stays as it is
    rather than failing the record.

    Args:
        record: The record (or the fields of it that hold the objects).
        nested: From :func:`nested_datelike_properties`.
    """
    for parent, name, kind, parse in nested:
        container = record.get(parent)
        value = container.get(name) if type(container) is dict else None
        if type(value) is not str:
            continue
        try:
            container[name] = parse_datelike(value, kind, parse)  # type: ignore[index]
        except ValueError:
            continue


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
        self._nested = nested_datelike_properties(schema)

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
        parse_nested_datelike(record, self._nested)

    def _repair(self, name: str, kind: str) -> Any:
        if self._treatment == DatetimeErrorTreatmentEnum.NULL:
            self._logger.warning("A '%s' value is not a valid %s; loading null.", name, kind)
            return None
        if self._treatment == DatetimeErrorTreatmentEnum.MAX:
            self._logger.warning("A '%s' value is not a valid %s; loading the maximum.", name, kind)
            return _MAXIMUM[kind]
        raise InvalidRecord(f"'{name}' is not a valid ISO-8601 {kind}", {})
