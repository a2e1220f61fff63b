"""Data Extension columns: the SFMC type each attribute gets (the type rules).

Which values fit a column is in :mod:`target_sfmc.de_values`, the columns a stream gives each
Data Extension in :mod:`target_sfmc.de_tables`, the compiled per-row checks in
:mod:`target_sfmc.de_row_checks`. Nothing here does I/O.

The type rules, for a property of a stream's SCHEMA:

- string: Text, as long as ``maxLength`` says, else ``default_text_length``; SFMC's Text holds
  at most 4000 characters, so a longer ``maxLength`` cannot become a column;
- string with ``format: date-time`` or ``date``: Date;
- string with ``format: email``, or a property named email: EmailAddress (254 characters);
- integer: Number, SFMC's 32-bit whole number; when the schema's bounds go beyond 32 bits,
  Decimal with 29 digits and none after the point;
- number: Decimal with ``default_decimal_precision`` digits, as many after the point as
  ``multipleOf`` has (``0.01``: 2), else ``default_decimal_scale``;
- boolean: Boolean;
- objects and arrays are not sent (the mapping drops them): no column; anything else
  (several types, no type) is Text.

Primary-key columns are never nullable; ``Contact Key`` is Text of 254 characters (SFMC's
subscriber key length) and ``Uuid`` Text of 36.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_sfmc.dates import resolve_local_reference
from target_sfmc.mapping import CONTEXT_ATTRIBUTES
from target_sfmc.schema_drafts import normalize_numeric_keywords
from target_sfmc.schema_numbers import schema_number

if TYPE_CHECKING:
    from collections.abc import Mapping


TEXT = "Text"
NUMBER = "Number"
DECIMAL = "Decimal"
BOOLEAN = "Boolean"
DATE = "Date"
EMAIL = "EmailAddress"
PHONE = "Phone"
LOCALE = "Locale"
FIELD_TYPES = (TEXT, NUMBER, DECIMAL, BOOLEAN, DATE, EMAIL, PHONE, LOCALE)
# Types whose ``length`` is a number of characters (Decimal's is its precision).
SIZED_TEXT = frozenset({TEXT, EMAIL, PHONE, LOCALE})

MAX_TEXT_LENGTH = 4000
EMAIL_LENGTH = 254
CONTACT_KEY_LENGTH = 254
UUID_LENGTH = 36
MAX_DECIMAL_PRECISION = 29
INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1

# Segment's context attributes: their column type when the schema does not say more.
_CONTEXT_TYPES: dict[str, str] = {
    "Ad Tracking Enabled": BOOLEAN,
    "Bluetooth Enabled": BOOLEAN,
    "Cellular Enabled": BOOLEAN,
    "Wifi Enabled": BOOLEAN,
    "Screen Density": DECIMAL,
    "Screen Height": NUMBER,
    "Screen Width": NUMBER,
}
CONTEXT_NAMES = frozenset(name for _path, name in CONTEXT_ATTRIBUTES)
CONTEXT_FOLDED = frozenset(name.casefold() for name in CONTEXT_NAMES)


@dataclass(frozen=True)
class Column:
    """One Data Extension column.

    ``length`` is the number of characters of Text-like columns and the precision (digits in
    all) of Decimal ones; ``scale`` the digits after a Decimal's point.
    """

    name: str
    type: str
    length: int | None = None
    scale: int | None = None
    primary_key: bool = False
    nullable: bool = True

    def describe(self) -> str:
        """The column's type in words, without parentheses (log lines hide those).

        Returns:
            For example ``Text of 50 characters`` or ``Decimal of 18 digits, 2 after the point``.
        """
        if self.type == DECIMAL:
            return f"Decimal of {self.length} digits, {self.scale or 0} after the point"
        if self.type == NUMBER:
            return "Number, a 32-bit whole number"
        if self.type in SIZED_TEXT and self.length:
            return f"{self.type} of {self.length} characters"
        return self.type

    def short(self) -> str:
        """The column's type, short: ``Text(50)``, ``Decimal(18,2)``, ``Number``.

        Returns:
            The type with its size.
        """
        if self.type == DECIMAL:
            return f"Decimal({self.length},{self.scale or 0})"
        if self.type in SIZED_TEXT and self.length:
            return f"{self.type}({self.length})"
        return self.type

    def to_api(self, ordinal: int) -> dict[str, Any]:
        """The column in the form SFMC's Data Extension API creates it.

        Args:
            ordinal: Its position in the Data Extension (from 0).

        Returns:
            ``{"name", "type", "length"?, "scale"?, "isPrimaryKey", "isNullable", "ordinal"}``.
        """
        field_form: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.length is not None:
            field_form["length"] = self.length
        if self.type == DECIMAL:
            field_form["scale"] = self.scale or 0
        field_form.update(
            {
                "isPrimaryKey": self.primary_key,
                "isNullable": self.nullable and not self.primary_key,
                "ordinal": ordinal,
            }
        )
        return field_form

    @classmethod
    def from_api(cls, raw: Any) -> Column | None:
        """Read one field of SFMC's answer.

        Args:
            raw: One item of ``fields`` as SFMC sends it.

        Returns:
            The column, or None when the item names no column.
        """
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            return None
        type_name = str(raw.get("type") or raw.get("fieldType") or TEXT)
        canonical = {t.casefold(): t for t in FIELD_TYPES}.get(type_name.casefold(), type_name)
        length = raw.get("length", raw.get("maxLength"))
        scale = raw.get("scale")
        primary_key = raw.get("isPrimaryKey") is True
        return cls(
            name=raw["name"],
            type=canonical,
            length=length if isinstance(length, int) and not isinstance(length, bool) else None,
            scale=scale if isinstance(scale, int) and not isinstance(scale, bool) else None,
            primary_key=primary_key,
            nullable=raw.get("isNullable", not primary_key) is not False,
        )


@dataclass(frozen=True)
class PropertyShape:
    """What a property's schema allows: its JSON types (null left out) and its keywords."""

    kinds: frozenset[str]
    keywords: Mapping[str, Any]

    @property
    def nested(self) -> bool:
        """Objects and arrays only: the mapping never sends such a property."""
        return bool(self.kinds) and self.kinds <= {"object", "array"}

    def bounds(self) -> tuple[decimal.Decimal | None, decimal.Decimal | None]:
        """The lowest and highest value the schema allows (None: unbounded).

        Returns:
            ``(low, high)``; an exclusive bound counts as the bound itself (close enough for
            choosing a column: an integer one step inside it fits the same column).
        """
        low = schema_number(self.keywords.get("minimum"))
        high = schema_number(self.keywords.get("maximum"))
        exclusive_low = schema_number(self.keywords.get("exclusiveMinimum"))
        exclusive_high = schema_number(self.keywords.get("exclusiveMaximum"))
        if exclusive_low is not None and (low is None or exclusive_low > low):
            low = exclusive_low
        if exclusive_high is not None and (high is None or exclusive_high < high):
            high = exclusive_high
        return low, high


def property_shape(definition: Any, root: Mapping[str, Any], name: str) -> PropertyShape:
    """Read a property's schema (through ``$ref``, ``anyOf`` and ``oneOf``).

    Args:
        definition: The property's schema.
        root: The stream's schema (where references start).
        name: The property's name, for errors.

    Returns:
        Its shape.
    """
    definition = resolve_local_reference(definition, dict(root), name)
    if not isinstance(definition, dict):
        return PropertyShape(frozenset(), {})
    kinds = _kinds(definition.get("type"))
    keywords: dict[str, Any] = dict(definition)
    if "type" not in definition:
        for branch in (*definition.get("anyOf", ()), *definition.get("oneOf", ())):
            resolved = resolve_local_reference(branch, dict(root), name)
            if not isinstance(resolved, dict):
                continue
            branch_kinds = _kinds(resolved.get("type"))
            kinds |= branch_kinds
            if branch_kinds - {"null"}:
                keywords = {**resolved, **keywords}
    return PropertyShape(frozenset(kinds - {"null"}), normalize_numeric_keywords(keywords))


def _kinds(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, list):
        return {kind for kind in value if isinstance(kind, str)}
    return set()


def decimal_scale(step: Any) -> int | None:
    """Digits after the point that a ``multipleOf`` step needs (``0.01``: 2, ``5``: 0).

    Args:
        step: The ``multipleOf`` value.

    Returns:
        The scale, or None when the step is not a usable number.
    """
    number = schema_number(step)
    if number is None or number <= 0:
        return None
    exponent = number.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else None


@dataclass(frozen=True)
class ColumnRules:
    """The settings that shape created columns."""

    text_length: int
    decimal_precision: int
    decimal_scale: int

    def for_property(
        self,
        title: str,
        shape: PropertyShape,
        *,
        is_email: bool = False,
        primary_key: bool = False,
    ) -> tuple[Column | None, str | None]:
        """The column a property of the SCHEMA becomes.

        Args:
            title: The column name (the property's Title Case name).
            shape: The property's shape.
            is_email: The property is the stream's email (a property named email).
            primary_key: The column is a primary key.

        Returns:
            ``(column, problem)``: no column for objects and arrays; the problem says why the
            column cannot be created as the schema asks (then the column is the closest one).
        """
        kinds, keywords = shape.kinds, shape.keywords
        nullable = not primary_key
        if shape.nested:
            return None, None
        if kinds == {"boolean"}:
            return Column(title, BOOLEAN, primary_key=primary_key, nullable=nullable), None
        if kinds == {"integer"}:
            low, high = shape.bounds()
            if (low is not None and low < INT32_MIN) or (high is not None and high > INT32_MAX):
                column = Column(title, DECIMAL, MAX_DECIMAL_PRECISION, 0, primary_key, nullable)
                return column, None
            return Column(title, NUMBER, primary_key=primary_key, nullable=nullable), None
        if kinds and kinds <= {"integer", "number"}:
            return self._decimal(title, keywords, primary_key=primary_key)
        if kinds == {"string"}:
            return self._string(title, keywords, is_email=is_email, primary_key=primary_key)
        return self.text(title, primary_key=primary_key), None

    def _string(
        self, title: str, keywords: Mapping[str, Any], *, is_email: bool, primary_key: bool
    ) -> tuple[Column, str | None]:
        nullable = not primary_key
        text_format = keywords.get("format")
        if text_format in {"date-time", "date"}:
            return Column(title, DATE, primary_key=primary_key, nullable=nullable), None
        if text_format == "email" or is_email:
            return Column(title, EMAIL, EMAIL_LENGTH, None, primary_key, nullable), None
        max_length = keywords.get("maxLength")
        if not isinstance(max_length, int) or isinstance(max_length, bool):
            return self.text(title, primary_key=primary_key), None
        if max_length > MAX_TEXT_LENGTH:
            problem = (
                f"its maxLength is {max_length}, more than the {MAX_TEXT_LENGTH} characters an "
                "SFMC Text column holds"
            )
            return Column(title, TEXT, MAX_TEXT_LENGTH, None, primary_key, nullable), problem
        return Column(title, TEXT, max(1, max_length), None, primary_key, nullable), None

    def _decimal(
        self, title: str, keywords: Mapping[str, Any], *, primary_key: bool
    ) -> tuple[Column, str | None]:
        scale = decimal_scale(keywords.get("multipleOf"))
        scale = self.decimal_scale if scale is None else scale
        precision = max(self.decimal_precision, scale)
        problem = None
        if precision > MAX_DECIMAL_PRECISION:
            problem = (
                f"its multipleOf needs {scale} digits after the point, more than the "
                f"{MAX_DECIMAL_PRECISION} digits an SFMC Decimal column holds"
            )
            precision = scale = MAX_DECIMAL_PRECISION
        column = Column(title, DECIMAL, precision, scale, primary_key, not primary_key)
        return column, problem

    def text(self, title: str, *, primary_key: bool = False) -> Column:
        """A Text column of the default length.

        Args:
            title: The column name.
            primary_key: The column is a primary key.

        Returns:
            The column.
        """
        return Column(title, TEXT, self.text_length, None, primary_key, not primary_key)

    def for_value(self, title: str, value: Any) -> Column:
        """The column of an attribute no schema describes, from one of its values.

        Args:
            title: The attribute name.
            value: A value the mapping sends for it.

        Returns:
            Boolean, Number (Decimal of 29 digits beyond 32 bits), Decimal, EmailAddress for
            an attribute named Email, else Text.
        """
        if title in CONTEXT_NAMES:
            return self.for_context(title, None)
        if isinstance(value, bool):
            return Column(title, BOOLEAN)
        if isinstance(value, int):
            if INT32_MIN <= value <= INT32_MAX:
                return Column(title, NUMBER)
            return Column(title, DECIMAL, MAX_DECIMAL_PRECISION, 0)
        if isinstance(value, (float, decimal.Decimal)):
            return Column(title, DECIMAL, self.decimal_precision, self.decimal_scale)
        if title.casefold() == "email":
            return Column(title, EMAIL, EMAIL_LENGTH)
        return self.text(title)

    def for_context(self, title: str, shape: PropertyShape | None) -> Column:
        """The column of a Segment context attribute.

        Args:
            title: One of the context attribute names.
            shape: Its schema inside the stream's ``context``, when declared.

        Returns:
            The column: from the schema when it says, else the attribute's usual type.
        """
        if shape is not None and shape.kinds and not shape.nested:
            column, problem = self.for_property(title, shape)
            if column is not None and problem is None:
                return column
        kind = _CONTEXT_TYPES.get(title, TEXT)
        if kind == DECIMAL:
            return Column(title, DECIMAL, self.decimal_precision, self.decimal_scale)
        if kind == TEXT:
            return self.text(title)
        return Column(title, kind)
