"""Deterministic records for real taps' schemas, with the edge values taps really send.

:class:`CorpusStream` reads one schema of the corpus and

- derives the Data Extension a user would declare for it (one column per top-level property
  that maps to a scalar, typed from the schema, sized to hold every generated value), and
- generates records that conform to the schema (seeded: the same records every run),
  mixing ordinary values with edge values: integers beyond 2**53, ``1E-7``, ``1E+21``,
  decimals with many digits, date-times with non-UTC offsets and microseconds, naive
  timestamps, ``format: date`` and ``format: time`` values, nulls and nested values.

Numbers are ``decimal.Decimal`` (as the target decodes them); :func:`encode_line` writes
them as JSON numbers with their exact digits.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import msgspec

from target_sfmc.mapping import title_case

SCHEMAS = Path(__file__).parent / "schemas"
INT32 = (-(2**31), 2**31 - 1)
DECIMAL_PRECISION = 29  # the emulator's (and SFMC's) largest Decimal
DEFAULT_SCALE = 7  # room for 1E-7 and, with 22 integer digits, for 1E+21
MAX_SCALE = 10
TEXT_LENGTH = 4000
MAX_DEPTH = 4

DATE_TIMES = [
    "2020-05-30T13:30:00.123456+05:30",  # non-UTC offset, microseconds
    "2021-12-31T23:59:59.999999-08:00",  # must not round up into next year
    "2020-01-01T00:00:00Z",
    "2019-07-04T12:00:00",  # naive: taken as UTC
    "2019-07-04 12:00:00.5",  # naive, space separator, one fractional digit
    "2022-03-27T01:30:00.000001+01:00",
    "2016-02-29T23:59:59.9995+00:00",
    "2024-06-15T08:15:30.1+14:00",
    "1969-07-20T20:17:40-05:00",
    "2030-10-05T07:07:07.070+00:00",
]
DATES = ["2020-02-29", "1999-12-31", "2038-01-19", "1900-01-01"]
TIMES = ["13:30:00", "23:59:59.999999", "00:00:00+02:00", "08:15:30.123", "12:00"]
WORDS = ["alpha", "Zoë", "naïve café", "O'Brien", "東京", "a,b;c", "line\nbreak", "tab\tx", " "]
# What a file tap reads as text and must arrive as the same text (never a number or a date).
TEXT_LOOKALIKES = ["28.99", "0.0", "false", "007", "1E-7", "2018-10-07 15:39:47.646987", "NaN"]
INTEGER_EDGES = [0, -1, 1, INT32[1], INT32[0], 2**53 + 1, -(2**53 + 1), 2**63 - 1, -(2**63), 2**70]
NUMBER_EDGES = [
    Decimal("1E-7"),
    Decimal("1E+21"),
    Decimal("1234567890123456.123456"),
    Decimal("0.1"),
    Decimal("19.01"),
    Decimal("-0.5"),
    Decimal(0),
    Decimal("99999999999999999999.9999999"),
    Decimal(-12345678901234567890),
    Decimal("3.0000000001"),
]

_encoder = msgspec.json.Encoder(decimal_format="number")


def encode_line(message: dict[str, Any]) -> str:
    """One Singer message as a JSON line, Decimals written as numbers with their digits.

    Args:
        message: The message.

    Returns:
        The line, without a newline.
    """
    return _encoder.encode(message).decode()


@dataclass
class Bounds:
    """What a number must satisfy: the schema's keywords and the column's size."""

    minimum: Decimal | None = None
    maximum: Decimal | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    step: Decimal | None = None
    scale: int = 0
    integer_digits: int = DECIMAL_PRECISION

    def admits(self, value: Decimal | int) -> bool:
        """Tell whether a value conforms to the schema and fits the column."""
        number = Decimal(value)
        if self.minimum is not None and (
            number < self.minimum or (self.exclusive_minimum and number == self.minimum)
        ):
            return False
        if self.maximum is not None and (
            number > self.maximum or (self.exclusive_maximum and number == self.maximum)
        ):
            return False
        if self.step is not None and (Fraction(number) / Fraction(self.step)).denominator != 1:
            return False
        sign, digits, exponent = number.normalize().as_tuple() if number else (0, (0,), 0)
        del sign
        fraction_digits = max(0, -int(exponent))
        integer_digits = max(0, len(digits) + int(exponent))
        return fraction_digits <= self.scale and integer_digits <= self.integer_digits


def number_bounds(schema: dict[str, Any], *, integer: bool) -> Bounds:
    """The bounds of a number property, in either dialect, and the column that holds it.

    Args:
        schema: The property's schema.
        integer: Whether the property is an integer.

    Returns:
        The bounds.
    """
    bounds = Bounds()
    for side in ("minimum", "maximum"):
        flag = f"exclusive{side.capitalize()}"
        value, exclusive = schema.get(side), schema.get(flag)
        if isinstance(exclusive, bool):
            exclusive_bound = value if exclusive else None
        else:
            exclusive_bound = exclusive
        if value is not None:
            setattr(bounds, side, Decimal(str(value)))
        if exclusive_bound is not None:
            setattr(bounds, side, Decimal(str(exclusive_bound)))
            setattr(bounds, f"exclusive_{side}", True)
    if schema.get("multipleOf") is not None:
        bounds.step = Decimal(str(schema["multipleOf"]))
    if integer:
        bounds.scale = 0
    elif bounds.step is not None:
        bounds.scale = min(MAX_SCALE, max(0, -bounds.step.normalize().as_tuple().exponent))  # type: ignore[operator]
    else:
        bounds.scale = DEFAULT_SCALE
    bounds.integer_digits = DECIMAL_PRECISION - bounds.scale
    return bounds


@dataclass
class Column:
    """A Data Extension column for one top-level property."""

    name: str
    prop: str
    kind: str  # date-time, date, time, string, integer, number, boolean
    field: dict[str, Any]


@dataclass
class Property:
    """What a top-level property holds, as far as the mapping is concerned."""

    name: str
    schema: dict[str, Any]
    types: set[str]
    format: str | None
    nullable: bool
    nested: bool
    kind: str | None = None
    bounds: Bounds | None = None
    max_length: int | None = None


@dataclass
class CorpusStream:
    """One corpus schema: its source entry, its Data Extension and its records."""

    entry: dict[str, Any]
    schema: dict[str, Any] = field(init=False)
    properties: dict[str, Property] = field(init=False)
    key_properties: list[str] = field(init=False)

    def __post_init__(self) -> None:
        """Read the schema file and classify its top-level properties."""
        self.schema = json.loads((SCHEMAS / self.entry["file"]).read_text())
        self.key_properties = list(self.entry["key_properties"])
        self.properties = {
            name: self._classify(name, definition)
            for name, definition in self.schema.get("properties", {}).items()
        }

    @property
    def name(self) -> str:
        """The stream name used in the corpus runs."""
        return str(self.entry["stream"])

    @property
    def data_extension_key(self) -> str:
        """The key of the stream's Data Extension."""
        return self.name.upper()

    def resolve(self, definition: Any) -> Any:
        """Follow ``#/...`` references inside the stream's schema."""
        for _ in range(16):
            ref = definition.get("$ref") if isinstance(definition, dict) else None
            if not isinstance(ref, str):
                return definition
            node: Any = self.schema
            for part in ref.lstrip("#/").split("/"):
                node = node[part]
            definition = node
        return definition

    def _branches(self, definition: dict[str, Any]) -> list[dict[str, Any]]:
        definition = self.resolve(definition)
        branches = definition.get("anyOf") or definition.get("oneOf")
        if branches:
            return [b for branch in branches for b in self._branches(branch)]
        return [definition]

    def _classify(self, name: str, definition: dict[str, Any]) -> Property:
        branches = self._branches(definition)
        types: set[str] = set()
        fmt = None
        for branch in branches:
            declared = branch.get("type")
            if declared is None:
                types.add("any")
            else:
                types.update([declared] if isinstance(declared, str) else declared)
            fmt = fmt or (branch.get("format") if "string" in (branch.get("type") or []) else None)
        scalar = types - {"null", "object", "array"}
        prop = Property(
            name=name,
            schema=self.resolve(definition),
            types=types,
            format=fmt,
            nullable="null" in types or "any" in types,
            nested=not scalar,
        )
        if "string" in scalar or "any" in scalar:
            prop.kind = fmt if fmt in ("date-time", "date", "time") else "string"
            lengths = [b.get("maxLength") for b in branches if b.get("maxLength")]
            prop.max_length = min(lengths) if lengths else None
        elif "number" in scalar:
            prop.kind = "number"
            prop.bounds = number_bounds(branches[0], integer=False)
        elif "integer" in scalar:
            prop.kind = "integer"
            prop.bounds = number_bounds(branches[0], integer=True)
        elif "boolean" in scalar:
            prop.kind = "boolean"
        return prop

    # -- the Data Extension ----------------------------------------------------------------

    def columns(self, primary_keys: list[str] | None = None) -> list[Column]:
        """The columns of the stream's Data Extension.

        Args:
            primary_keys: Properties that form the primary key (default: key properties).

        Returns:
            One column per top-level property with a scalar kind.
        """
        keys = set(self.key_properties if primary_keys is None else primary_keys)
        columns = []
        for prop in self.properties.values():
            if prop.kind is None:
                continue
            column = {"name": title_case(prop.name), **self._field_type(prop)}
            if prop.name in keys:
                column["primary_key"] = True
            columns.append(Column(column["name"], prop.name, prop.kind, column))
        return columns

    @staticmethod
    def _field_type(prop: Property) -> dict[str, Any]:
        if prop.kind in ("date-time", "date"):
            return {"type": "Date"}
        if prop.kind == "boolean":
            return {"type": "Boolean"}
        if prop.kind == "integer":
            bounds = prop.bounds or Bounds()
            small = (
                bounds.minimum is not None
                and bounds.maximum is not None
                and bounds.minimum >= INT32[0]
                and bounds.maximum <= INT32[1]
            )
            return {"type": "Number"} if small else {"type": "Decimal", "precision": 29, "scale": 0}
        if prop.kind == "number":
            bounds = prop.bounds or Bounds()
            return {"type": "Decimal", "precision": DECIMAL_PRECISION, "scale": bounds.scale}
        return {"type": "Text", "length": min(prop.max_length or TEXT_LENGTH, TEXT_LENGTH)}

    # -- records ---------------------------------------------------------------------------

    def records(self, count: int, *, unique: list[str] | None = None) -> list[dict[str, Any]]:
        """Records that conform to the schema, the same ones every time.

        Args:
            count: How many.
            unique: Properties made unique and never null (default: the key properties).

        Returns:
            The records; the first ones go through every edge value of their properties.
        """
        rng = random.Random(zlib.crc32(self.name.encode()))  # noqa: S311 - reproducible data
        unique = self.key_properties if unique is None else unique
        required = set(self.schema.get("required", [])) | set(unique)
        records = []
        for index in range(count):
            record: dict[str, Any] = {}
            for name, prop in self.properties.items():
                if name in unique:
                    record[name] = self._unique(prop, index)
                    continue
                if name not in required and rng.random() < 0.08:
                    continue  # absent, as taps leave out unselected or sparse fields
                if prop.nullable and name not in required and rng.random() < 0.15:
                    record[name] = None
                    continue
                record[name] = self._value(prop.schema, rng, index, 0, prop)
            records.append(record)
        return records

    def _unique(self, prop: Property, index: int) -> Any:
        if prop.kind == "integer":
            bounds = prop.bounds or Bounds()
            # Beyond 2**53 when the property can hold it: keys must survive exactly.
            base = 2**53 + 1 if bounds.admits(2**53 + 1 + 10**6) else 10**6
            return base + index
        if prop.kind == "number":
            return Decimal(index) + Decimal("0.5") if (prop.bounds or Bounds()).scale else index
        if prop.kind == "date-time":
            moment = dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
                seconds=index, microseconds=123456
            )
            return moment.isoformat()
        return f"{self.name}-{index:05d}"

    def _value(
        self,
        schema: Any,
        rng: random.Random,
        index: int,
        depth: int,
        prop: Property | None = None,
    ) -> Any:
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return None
        if "enum" in schema:
            return rng.choice(schema["enum"])
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            if prop is not None and prop.kind in ("date-time", "date", "time"):
                branches = [b for b in branches if self.resolve(b).get("format")] or branches
            return self._value(rng.choice(branches), rng, index, depth)
        if prop is not None and prop.kind is not None:
            return self._scalar(prop.kind, rng, index, prop)
        declared = schema.get("type", "any")
        types = [declared] if isinstance(declared, str) else list(declared)
        kind = rng.choice([t for t in types if t != "null"] or ["null"])
        if kind in ("object", "array"):
            return self._container(kind, schema, types, rng, index, depth)
        if kind == "null":
            return None
        if kind == "any":
            return rng.choice(["opaque", 7, {"k": "v"}, [1, "x"]])
        fmt = schema.get("format") if kind == "string" else None
        nested = Property("", schema, set(types), fmt, "null" in types, nested=False)
        nested.kind = fmt if fmt in ("date-time", "date", "time") else kind
        if kind in ("number", "integer"):
            nested.bounds = number_bounds(schema, integer=kind == "integer")
        return self._scalar(nested.kind, rng, index, nested)

    def _container(
        self,
        kind: str,
        schema: dict[str, Any],
        types: list[str],
        rng: random.Random,
        index: int,
        depth: int,
    ) -> Any:
        if depth >= MAX_DEPTH:
            return None if "null" in types else ({} if kind == "object" else [])
        if kind == "object":
            return self._object(schema, rng, index, depth)
        items = schema.get("items", {})
        return [self._value(items, rng, index, depth + 1) for _ in range(rng.randint(0, 2))]

    def _object(self, schema: dict[str, Any], rng: random.Random, index: int, depth: int) -> dict:
        properties = schema.get("properties") or {}
        if not properties:
            return {"source": rng.choice(WORDS), "count": rng.randint(0, 9)}
        return {
            name: self._value(sub, rng, index, depth + 1)
            for name, sub in properties.items()
            if rng.random() < 0.8
        }

    def _scalar(self, kind: str, rng: random.Random, index: int, prop: Property) -> Any:
        if kind == "date-time":
            return (
                DATE_TIMES[index % len(DATE_TIMES)]
                if index < 2 * len(DATE_TIMES)
                else _random_datetime(rng)
            )
        if kind == "date":
            return DATES[index % len(DATES)] if index < len(DATES) else _random_datetime(rng)[:10]
        if kind == "time":
            return TIMES[index % len(TIMES)]
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "integer":
            bounds = prop.bounds or Bounds()
            edges = [v for v in INTEGER_EDGES if bounds.admits(v)]
            if index < len(edges):
                return edges[index]
            return _random_integer(rng, bounds)
        if kind == "number":
            bounds = prop.bounds or Bounds()
            edges = [v for v in NUMBER_EDGES if bounds.admits(v)]
            if index < len(edges):
                return edges[index]
            return _random_number(rng, bounds)
        return self._text(rng, index, prop)

    @staticmethod
    def _text(rng: random.Random, index: int, prop: Property) -> str:
        if "email" in prop.name.lower():
            return f"user{index}@example.com"
        if rng.random() < 0.3:
            return rng.choice(TEXT_LOOKALIKES)
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        return text[: min(prop.max_length or 40, 40)] or "x"


def _random_datetime(rng: random.Random) -> str:
    """A wall-clock time since 1990 with an offset, or naive (local text, no zone)."""
    offset = rng.choice([None, 0, 330, -480, 60, -210, 840])
    zone = dt.timezone(dt.timedelta(minutes=offset or 0))
    moment = dt.datetime(1990, 1, 1, tzinfo=zone) + dt.timedelta(
        seconds=rng.randint(0, 60 * 365 * 86400), microseconds=rng.randint(0, 999999)
    )
    return (moment.replace(tzinfo=None) if offset is None else moment).isoformat()


def _random_integer(rng: random.Random, bounds: Bounds) -> int:
    low = int(bounds.minimum) + 1 if bounds.minimum is not None else -(10**20)
    high = int(bounds.maximum) - 1 if bounds.maximum is not None else 10**20
    low, high = max(low, -(10**28)), min(high, 10**28)
    return rng.randint(low, high)


def _random_number(rng: random.Random, bounds: Bounds) -> Decimal:
    step = (
        bounds.step if bounds.step is not None and bounds.step.adjusted() >= -bounds.scale else None
    )
    unit = step or Decimal(1).scaleb(-bounds.scale)
    for _ in range(100):
        digits = rng.randint(1, 15)
        value = Decimal(rng.randint(-(10**digits), 10**digits)) * unit
        if bounds.admits(value):
            return value
    return Decimal(0)


def corpus() -> list[CorpusStream]:
    """Every schema of the corpus, in index order.

    Returns:
        The streams.
    """
    index = json.loads((SCHEMAS / "index.json").read_text())
    return [CorpusStream(entry) for entry in index]
