"""Data Extension columns: the SFMC type each attribute gets, and which values fit a column.

Nothing here does I/O. The type rules, for a property of a stream's SCHEMA:

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
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from msgspec import UNSET
from msgspec.structs import astuple

from target_sfmc.dates import resolve_local_reference
from target_sfmc.mapping import CONTACT_KEY, CONTEXT_ATTRIBUTES, UUID_KEY, title_case
from target_sfmc.routing import track_primary_keys
from target_sfmc.schema_drafts import normalize_numeric_keywords
from target_sfmc.schema_numbers import schema_number

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from target_sfmc.settings import StreamSettings, TargetSettings

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
_SIZED_TEXT = frozenset({TEXT, EMAIL, PHONE, LOCALE})

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
        if self.type in _SIZED_TEXT and self.length:
            return f"{self.type} of {self.length} characters"
        return self.type

    def short(self) -> str:
        """The column's type, short: ``Text(50)``, ``Decimal(18,2)``, ``Number``.

        Returns:
            The type with its size.
        """
        if self.type == DECIMAL:
            return f"Decimal({self.length},{self.scale or 0})"
        if self.type in _SIZED_TEXT and self.length:
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


# -- which values fit a column ----------------------------------------------------------------

_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")
BOOLEAN_TEXTS = frozenset({"true", "false", "1", "0", "yes", "no"})


def _text_check(length: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if type(value) is str:
            return None if len(value) <= length else "is too long"
        if isinstance(value, bool):
            text = "True" if value else "False"
        elif isinstance(value, decimal.Decimal):
            text = format(value, "f")
        else:
            text = str(value)
        return None if len(text) <= length else "is too long"

    return check


def _number_check(value: Any) -> str | None:
    if type(value) is int:
        number = value
    elif isinstance(value, bool):
        return "is a boolean, not a whole number"
    elif isinstance(value, int):
        number = int(value)
    elif isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        if not value.is_finite() or not isinstance(exponent, int) or exponent < 0:
            return "is not a whole number"
        number = int(value)
    elif isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            return "is text that is not a whole number"
        number = int(value)
    else:
        return "is not a whole number"
    if INT32_MIN <= number <= INT32_MAX:
        return None
    return f"is beyond the 32-bit range, {INT32_MIN} to {INT32_MAX}"


def _decimal_check(precision: int, scale: int) -> Callable[[Any], str | None]:
    whole_digits = precision - scale

    def check(value: Any) -> str | None:
        if isinstance(value, bool):
            return "is a boolean, not a number"
        if isinstance(value, int):
            digits = len(str(abs(value)).lstrip("0"))
            return None if digits <= whole_digits else "has too many digits before the point"
        if isinstance(value, decimal.Decimal):
            number = value
        else:
            try:
                number = decimal.Decimal(value.strip() if isinstance(value, str) else repr(value))
            except (decimal.InvalidOperation, ValueError, TypeError):
                return (
                    "is text that is not a number" if isinstance(value, str) else "is not a number"
                )
        if not number.is_finite():
            return "is not a finite number"
        text = format(abs(number), "f")
        whole, _, fraction = text.partition(".")
        if len(whole.lstrip("0")) > whole_digits:
            return "has too many digits before the point"
        if len(fraction.rstrip("0")) > scale:
            return "has too many digits after the point"
        return None

    return check


def _boolean_check(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().casefold() in BOOLEAN_TEXTS:
        return None
    return "is not a boolean"


def _date_check(value: Any) -> str | None:
    return None if isinstance(value, str) else "is not a date"


def value_check(column: Column) -> Callable[[Any], str | None] | None:
    """The check a value must pass to go into a column (None: every value goes).

    Args:
        column: The column.

    Returns:
        ``value -> reason`` (None when the value fits, else a few words such as ``is too
        long``; never the value), or None when the column takes any value the mapping sends.
    """
    if column.type in _SIZED_TEXT and column.length:
        return _text_check(column.length)
    if column.type == NUMBER:
        return _number_check
    if column.type == DECIMAL:
        precision = column.length or 18
        return _decimal_check(precision, min(column.scale or 0, precision))
    if column.type == BOOLEAN:
        return _boolean_check
    if column.type == DATE:
        return _date_check
    return None


def always_fits(column: Column, shape: PropertyShape | None) -> bool:
    """Tell whether every value the schema allows fits the column (no check per value).

    Args:
        column: The column.
        shape: The property's shape, when the attribute comes from a declared property.

    Returns:
        True only when the schema guarantees it.
    """
    if shape is None:
        return False
    kinds, keywords = shape.kinds, shape.keywords
    if column.type == BOOLEAN:
        return kinds == {"boolean"}
    if column.type == DATE:
        return kinds == {"string"} and keywords.get("format") in {"date-time", "date"}
    if column.type in _SIZED_TEXT:
        max_length = keywords.get("maxLength")
        return (
            kinds == {"string"}
            and column.length is not None
            and keywords.get("format") not in {"date-time", "date", "time"}
            and isinstance(max_length, int)
            and max_length <= column.length
        )
    if column.type == NUMBER:
        low, high = shape.bounds()
        return (
            kinds == {"integer"}
            and low is not None
            and high is not None
            and low >= INT32_MIN
            and high <= INT32_MAX
        )
    if column.type == DECIMAL:
        return _decimal_always_fits(column, shape)
    return False


def _decimal_always_fits(column: Column, shape: PropertyShape) -> bool:
    precision, scale = column.length or 18, column.scale or 0
    if not shape.kinds or not shape.kinds <= {"integer", "number"}:
        return False
    integers = shape.kinds == {"integer"}
    step_scale = 0 if integers else decimal_scale(shape.keywords.get("multipleOf"))
    if step_scale is None or step_scale > scale:
        return False
    low, high = shape.bounds()
    if low is None or high is None:
        return False
    limit = decimal.Decimal(10) ** (precision - scale)
    return -limit < low and high < limit


# -- the columns a stream sends ---------------------------------------------------------------


@dataclass
class TableSpec:
    """The columns one destination gets from one stream, as its SCHEMA and settings say.

    ``columns`` maps each case-folded name to its column, in the order a created Data
    Extension lists them (primary keys first); ``shapes`` keeps the schema of each column that
    comes from a declared property; ``problems`` says which columns cannot be created as the
    schema asks, and why.
    """

    key: str
    name: str
    sendable: bool = False
    columns: dict[str, Column] = field(default_factory=dict)
    shapes: dict[str, PropertyShape] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    audience: bool = False  # an audience stream: every other attribute is a Boolean

    @property
    def primary_keys(self) -> tuple[str, ...]:
        """Names of the primary-key columns."""
        return tuple(c.name for c in self.columns.values() if c.primary_key)

    def add(
        self,
        column: Column | None,
        shape: PropertyShape | None = None,
        problem: str | None = None,
        *,
        replace: bool = False,
    ) -> None:
        """Add a column; one of the same name stays unless ``replace`` (keys always stay).

        Args:
            column: The column (None: nothing to add).
            shape: Its property's shape.
            problem: Why it cannot be created as the schema asks.
            replace: A later property of the same name wins, as in the mapping.
        """
        if column is None:
            return
        folded = column.name.casefold()
        existing = self.columns.get(folded)
        if existing is not None and (existing.primary_key or not replace):
            return
        self.columns[folded] = column
        self.shapes.pop(folded, None)
        self.problems.pop(folded, None)
        if shape is not None:
            self.shapes[folded] = shape
        if problem is not None:
            self.problems[folded] = problem

    def column_for(self, title: str, value: Any, rules: ColumnRules) -> Column:
        """The column an attribute gets when it is first seen in a record.

        Args:
            title: The attribute name.
            value: One of its values.
            rules: The type rules.

        Returns:
            The column the SCHEMA gives it, else one chosen from the value.
        """
        known = self.columns.get(title.casefold())
        if known is not None:
            return Column(known.name, known.type, known.length, known.scale)
        if self.audience and isinstance(value, bool):
            return Column(title, BOOLEAN)
        return rules.for_value(title, value)


def add_properties(
    spec: TableSpec,
    schema: Mapping[str, Any],
    root: Mapping[str, Any],
    rules: ColumnRules,
    *,
    email_property: str | None,
) -> None:
    """Add a column per scalar property of an object schema (Title Case names).

    Args:
        spec: The destination's columns (changed in place).
        schema: An object schema (the stream's, or its ``traits``/``properties``).
        root: The stream's schema.
        rules: The type rules.
        email_property: The property holding the email.
    """
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return
    for name, definition in properties.items():
        title = title_case(name)
        if not title or title.casefold() == CONTACT_KEY.casefold():
            continue
        shape = property_shape(definition, root, name)
        is_email = name == email_property or title.casefold() == "email"
        column, problem = rules.for_property(title, shape, is_email=is_email)
        spec.add(column, shape, problem, replace=True)


def add_context(spec: TableSpec, context: Any, root: Mapping[str, Any], rules: ColumnRules) -> None:
    """Add the Segment context attributes (the stream declares a ``context`` object).

    Args:
        spec: The destination's columns (changed in place).
        context: The ``context`` property's schema.
        root: The stream's schema.
        rules: The type rules.
    """
    context_schema = resolve_local_reference(context, dict(root), "context")
    for path, title in CONTEXT_ATTRIBUTES:
        node: Any = context_schema
        for part in path:
            properties = node.get("properties") if isinstance(node, dict) else None
            node = properties.get(part) if isinstance(properties, dict) else None
            node = resolve_local_reference(node, dict(root), "context") if node else None
        shape = property_shape(node, root, "context") if isinstance(node, dict) else None
        if title.casefold() not in spec.columns:
            spec.add(rules.for_context(title, shape), shape)


def key_column(
    title: str, properties: Mapping[str, Any], root: Mapping[str, Any], rules: ColumnRules
) -> tuple[Column, PropertyShape | None, str | None]:
    """A primary-key column: from the property it names, else Contact Key, Uuid or Text.

    Args:
        title: The primary key's Title Case name.
        properties: The properties that could hold it (name -> schema).
        root: The stream's schema.
        rules: The type rules.

    Returns:
        ``(column, shape, problem)``.
    """
    if title == CONTACT_KEY:
        return (
            Column(CONTACT_KEY, TEXT, CONTACT_KEY_LENGTH, primary_key=True, nullable=False),
            None,
            None,
        )
    if title == UUID_KEY:
        return Column(UUID_KEY, TEXT, UUID_LENGTH, primary_key=True, nullable=False), None, None
    for name, definition in reversed(list(properties.items())):
        if title_case(name) == title:
            shape = property_shape(definition, root, name)
            column, problem = rules.for_property(title, shape, primary_key=True)
            if column is not None:
                if column.type == TEXT and column.length is None:
                    column = rules.text(title, primary_key=True)
                return column, shape, problem
    return rules.text(title, primary_key=True), None, None


def contact_key_column() -> Column:
    """``Contact Key`` where it is not the primary key.

    Returns:
        Nullable Text of 254 characters.
    """
    return Column(CONTACT_KEY, TEXT, CONTACT_KEY_LENGTH)


def declares_any(schema: Mapping[str, Any], names: Iterable[str]) -> bool:
    """Tell whether an object schema declares one of the names.

    Args:
        schema: An object schema.
        names: Property names.

    Returns:
        True when one of them is a declared property.
    """
    properties = schema.get("properties")
    return isinstance(properties, dict) and any(name in properties for name in names)


def _object_schema(definition: Any, root: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """A property's object schema (through ``$ref``); empty when it declares nothing."""
    resolved = resolve_local_reference(definition, dict(root), name)
    return resolved if isinstance(resolved, dict) else {}


def stream_tables(
    stream: StreamSettings,
    settings: TargetSettings,
    schema: Mapping[str, Any],
    key_properties: list[str],
    *,
    audiences: Iterable[str] = (),
) -> tuple[list[TableSpec], list[TableSpec]]:
    """The columns each destination of a stream gets, as its SCHEMA and settings say.

    Identify: ``Contact Key`` and the traits, and the context attributes when the stream
    declares ``context``. Track: the primary keys, ``Contact Key`` when the stream carries a
    user id or email, the properties and the context attributes. Audience: ``Contact Key``
    and one Boolean per audience. Segment streams: the identify Data Extension from
    ``traits``, each conversion event's from ``properties``.

    Args:
        stream: The stream's settings.
        settings: The target settings.
        schema: The stream's SCHEMA.
        key_properties: The stream's key properties.
        audiences: Audience names seen in the stream's records (audience streams).

    Returns:
        The Data Extensions' columns, and the Journey entry events' ``Data`` attributes (a
        spec per event definition key).
    """
    des = settings.data_extensions
    rules = ColumnRules(des.text_length, des.decimal_precision, des.decimal_scale)
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    if stream.type == "segment":
        return _segment_tables(settings, schema, properties, rules)
    if stream.type == "api_event":
        event = TableSpec(stream.event_definition_key or "", stream.event_definition_key or "")
        add_properties(event, schema, schema, rules, email_property=stream.email_property)
        if "context" in properties:
            add_context(event, properties["context"], schema, rules)
        return [], [event]
    key = stream.data_extension_key or ""
    spec = TableSpec(key, stream.data_extension_name or key)
    if stream.type in {"identify", "audience"}:
        spec.sendable = True
        spec.add(key_column(CONTACT_KEY, properties, schema, rules)[0])
        if stream.type == "audience":
            spec.audience = True
            for audience in audiences:
                spec.add(Column(title_case(audience), BOOLEAN))
            return [spec], []
    else:
        primary_keys = (
            (UUID_KEY,) if stream.uuid_primary_key else track_primary_keys(stream, key_properties)
        )
        for primary_key in primary_keys:
            column, shape, problem = key_column(primary_key, properties, schema, rules)
            spec.add(column, shape, problem)
        if declares_any(schema, (*stream.user_id_properties, stream.email_property)):
            spec.add(contact_key_column())
    add_properties(spec, schema, schema, rules, email_property=stream.email_property)
    if "context" in properties:
        add_context(spec, properties["context"], schema, rules)
    return [spec], []


def _segment_tables(
    settings: TargetSettings,
    schema: Mapping[str, Any],
    properties: Mapping[str, Any],
    rules: ColumnRules,
) -> tuple[list[TableSpec], list[TableSpec]]:
    context = properties.get("context")
    traits = _object_schema(properties.get("traits"), schema, "traits")
    event_properties = _object_schema(properties.get("properties"), schema, "properties")
    declared = event_properties.get("properties")
    declared = declared if isinstance(declared, dict) else {}
    tables: dict[str, TableSpec] = {}
    identify_key = settings.identify_data_extension_key
    if identify_key:
        spec = tables[identify_key.casefold()] = TableSpec(
            identify_key, identify_key, sendable=True
        )
        spec.add(Column(CONTACT_KEY, TEXT, CONTACT_KEY_LENGTH, primary_key=True, nullable=False))
        add_properties(spec, traits, schema, rules, email_property="email")
        if context is not None:
            add_context(spec, context, schema, rules)
    for conversion in settings.conversion_events.values():
        key = conversion.data_extension_key
        spec = tables.setdefault(key.casefold(), TableSpec(key, key))
        primary_keys = (UUID_KEY,) if conversion.uuid_primary_key else conversion.primary_keys
        for primary_key in primary_keys:
            column, shape, problem = key_column(primary_key, declared, schema, rules)
            spec.add(column, shape, problem)
        spec.add(contact_key_column())
        add_properties(spec, event_properties, schema, rules, email_property="email")
        if context is not None:
            add_context(spec, context, schema, rules)
    events: dict[str, TableSpec] = {}
    for definition_key in settings.api_events.values():
        event = events.setdefault(definition_key, TableSpec(definition_key, definition_key))
        add_properties(event, event_properties, schema, rules, email_property="email")
        if context is not None:
            add_context(event, context, schema, rules)
    return list(tables.values()), list(events.values())


# -- one compiled check per row shape -----------------------------------------------------------


def _fits_at_once(column: Column) -> str:
    """A Python expression on ``v`` that is true when the value surely fits (no call needed).

    Only integers taken from the column are written into it; any other value goes to the
    column's full check.
    """
    if column.type in _SIZED_TEXT and column.length:
        return f"type(v) is str and len(v) <= {int(column.length)}"
    if column.type == NUMBER:
        return f"type(v) is int and {INT32_MIN} <= v <= {INT32_MAX}"
    if column.type == BOOLEAN:
        return "v is True or v is False"
    if column.type == DATE:
        return "type(v) is str"
    if column.type == DECIMAL:
        precision = int(column.length or 18)
        scale = min(int(column.scale or 0), precision)
        whole = precision - scale
        # A Decimal's adjusted() is the position of its first digit; its text (never in
        # exponent form here) shows the digits after the point.
        return (
            f"(type(v) is int and -{10**whole} < v < {10**whole}) or (type(v) is Decimal and "
            f"v.adjusted() < {whole} and 'E' not in (text := str(v)) and "
            f"('.' not in text or len(text) - text.find('.') <= {scale + 1}))"
        )
    return "False"


def compile_row_check(
    checks: list[tuple[str, Column, Callable[[Any], str | None]]],
    positions: Mapping[str, int] | None,
) -> Callable[[Any], tuple[int, str] | None]:
    """One function checking every checked column of a row, with the common cases inline.

    Rows pass by the hundred thousand: a loop calling one check per column costs more than
    mapping the row. The generated function tests each value inline (a string's length, an
    integer's range) and calls the column's full check only when that test fails.

    Args:
        checks: ``(attribute name, column, full check)`` per checked column.
        positions: For rows of one fast-path row type, each name's position in the row's
            tuple; None for rows that are dicts (looked up by name).

    Returns:
        ``row -> (index into checks, reason)`` for the first value that does not fit, or None.
    """
    lines = ["def run(row):"]
    lines.append("    row_values = astuple(row)" if positions is not None else "    get = row.get")
    for index, (name, column, _check) in enumerate(checks):
        if positions is not None:
            if name not in positions:
                continue
            lines.append(f"    v = row_values[{int(positions[name])}]")
            present = "v is not None and v is not UNSET"
        else:
            lines.append(f"    v = get(NAMES[{index}])")
            present = "v is not None"
        lines.append(f"    if {present} and not ({_fits_at_once(column)}):")
        lines.append(f"        reason = CHECKS[{index}](v)")
        lines.append("        if reason is not None:")
        lines.append(f"            return {index}, reason")
    lines.append("    return None")
    namespace: dict[str, Any] = {
        "astuple": astuple,
        "UNSET": UNSET,
        "Decimal": decimal.Decimal,
        "NAMES": tuple(name for name, _column, _check in checks),
        "CHECKS": tuple(check for _name, _column, check in checks),
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - code built above from integers only
    return namespace["run"]


def compile_projection(kept: list[tuple[str, int]]) -> Callable[[Any], dict[str, Any]]:
    """One function turning a fast-path row into a dict of only the kept attributes.

    Args:
        kept: ``(name, position in the row's tuple)`` of each attribute to keep.

    Returns:
        ``row -> {name: value}`` without the other attributes, nulls and missing values.
    """
    lines = ["def project(row):", "    row_values = astuple(row)", "    out = {}"]
    for index, (_name, position) in enumerate(kept):
        lines.append(f"    v = row_values[{int(position)}]")
        lines.append("    if v is not None and v is not UNSET:")
        lines.append(f"        out[NAMES[{index}]] = v")
    lines.append("    return out")
    namespace: dict[str, Any] = {
        "astuple": astuple,
        "UNSET": UNSET,
        "NAMES": tuple(name for name, _position in kept),
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - code built above from integers only
    return namespace["project"]
