"""Record lanes: decode, validate and map a flat stream's records in one step.

Most taps send flat records whose properties have plain JSON types. For such a schema a
msgspec Struct decodes a record straight from its JSON text (no dict, no key strings to
build) and checks most types in C; the validator's type table checks the rest; Title Case
names computed once map the values. A record the lane cannot take exactly as the general
path would (an undeclared property, a value of another type, a date that does not parse, a
missing required or key property, bad JSON) is declined and goes the general way, which
decides and words any error. A lane never refuses a record itself.
"""

from __future__ import annotations

import decimal
import functools
import types
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar, Union

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import astuple

from target_sfmc.dates import (
    PARSERS,
    canonical_datetime_text,
    datelike_properties,
    parse_datelike,
)
from target_sfmc.fastpath.rows import attribute_row_type
from target_sfmc.jsonio import encode_json
from target_sfmc.mapping import (
    CONTACT_KEY,
    MappingError,
    clean_contact_key,
    put_attributes,
    title_case,
    to_sfmc_value,
)
from target_sfmc.validation import compile_validator, type_table

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from target_sfmc.records import Attributes

# Removed by the SDK before validation and mapping: decoded, never checked or mapped.
SDK_METADATA = frozenset(
    {
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
        "_sdc_sequence",
        "_sdc_table_version",
        "_sdc_sync_started_at",
    }
)
# msgspec checks these in C; numbers are checked in Python (JSON numbers decode to int or
# Decimal, and a typed Decimal field would also take strings).
_STRUCT_TYPES: dict[type, Any] = {
    str: str,
    int: int,
    bool: bool,
    type(None): None,
    dict: dict,
    list: list,
}


class Envelope(msgspec.Struct, gc=False):
    """The parts of a Singer message a lane needs; ``record`` stays undecoded."""

    type: str
    stream: str = ""
    record: msgspec.Raw = msgspec.Raw(b"")


decode_envelope = msgspec.json.Decoder(Envelope).decode

Mapped = tuple[str | None, "Attributes"]
Result = TypeVar("Result")


class DecodingLane(Generic[Result]):
    """What every lane shares: a record's JSON text decoded into a Struct, then mapped.

    A subclass sets ``_decode`` (a :func:`record_decoder` function) and ``map_decoded``
    (record Struct -> result, or None when the general path must take the record).
    """

    _decode: Callable[[msgspec.Raw | bytes | str], Any]
    map_decoded: Callable[[Any], Result | None]

    @property
    def decode(self) -> Callable[[msgspec.Raw | bytes | str], Any]:
        """Decodes a record's JSON text into :attr:`record_type` (msgspec.DecodeError if not)."""
        return self._decode

    @property
    def record_type(self) -> type:
        """The Struct a record decodes into (``map_decoded`` takes one)."""
        return decoded_type(self._decode)

    def map(self, raw: msgspec.Raw | bytes | str) -> Result | None:
        """Decode, check and map one record.

        Args:
            raw: The record's JSON text.

        Returns:
            What ``map_decoded`` gives the decoded record, or None when it does not decode.
        """
        try:
            record = self._decode(raw)
        except msgspec.DecodeError:
            return None
        return self.map_decoded(record)


class RecordLane(DecodingLane[Mapped]):
    """Turns the JSON text of one record into ``(contact_key, attributes)``, or declines.

    ``map`` gives ``(contact_key, attributes)`` exactly as the general path would produce them
    (the attributes with the Contact Key, when there is one), or None when the general path
    must take the record.

    Build one with :func:`compile_lane`. The record Struct lists the mapped properties
    first, in schema order, then the SDK metadata ones; a missing optional property decodes
    to None (or to UNSET where null is not allowed), and both are left out of the row, as
    the general path leaves out missing and null values.
    """

    def __init__(
        self,
        decode: Callable[[msgspec.Raw | bytes | str], Any],
        titles: Sequence[str],
        number_checks: Sequence[tuple[int, frozenset[type]]],
        nested_checks: Sequence[tuple[int, Callable[[msgspec.Raw], bool]]],
        dates: Sequence[tuple[int, str, Callable[[Any], Any]]],
        identifier_at: Sequence[int],
        *,
        typed: bool,
        has_unmapped: bool,
        deleted_at: int | None = None,
        guaranteed: Sequence[str] = (),
    ) -> None:
        """Keep the precomputed parts (see :func:`compile_lane`)."""
        self._decode = decode
        self._titles = tuple(titles)
        self._mapped = len(titles)
        self._number_checks = tuple(number_checks)
        self._nested_checks = tuple(nested_checks)
        self._dates = tuple(dates)
        self._numbers = tuple(index for index, _ in number_checks)
        self._converts = bool(self._dates or self._numbers)
        # Where the Contact Key candidates are: user id properties in order, then the email.
        self._identifier_at = tuple(identifier_at)
        # Typed: after the checks and conversions every value is None, UNSET or sent as it
        # is, so the row is built in one call (the Contact Key with them);
        # untyped lanes convert value by value.
        self._row_type = (
            attribute_row_type([*titles, *([CONTACT_KEY] if CONTACT_KEY not in titles else [])])
            if typed
            else None
        )
        self._has_unmapped = has_unmapped
        # Where ``_sdc_deleted_at`` is, when records marked deleted must take the general path.
        self._deleted_at = deleted_at
        # Title Case names whose values the decode itself held to a constraint (typed rows).
        self.guaranteed = frozenset(guaranteed) if typed else frozenset()
        self.map_decoded = self._compile_map()

    @property
    def row_type(self) -> type | None:
        """The type of the rows this lane builds (None: it builds dicts)."""
        return self._row_type

    def _compile_map(self) -> Callable[[Any], Mapped | None]:
        """The lane's ``map_decoded``: its checks and conversions unrolled into one function.

        Records pass by the hundred thousand: loops over this lane's few checks cost more
        than the checks. The generated function takes a record decoded into
        :attr:`record_type` and returns what :meth:`map` returns.
        """
        lines = ["def map_decoded(record):", "    v = astuple(record)"]
        if self._deleted_at is not None:
            lines += [
                f"    marker = v[{int(self._deleted_at)}]",
                "    if marker is not None and marker != '':",
                "        return None",
            ]
        lines += number_check_lines(self._number_checks)
        for index, _check in self._nested_checks:
            lines += [
                f"    nested = v[{int(index)}]",
                f"    if nested is not None and not NESTED_CHECKS[{int(index)}](nested):",
                "        return None",
            ]
        # Each mapped value as an expression: the decoded one, or its converted copy.
        value_of = [f"v[{index}]" for index in range(self._mapped)]
        for index, kind, parse in self._dates:
            name = f"x{int(index)}"
            lines += [
                f"    {name} = v[{int(index)}]",
                f"    if {name} is not None and {name} is not UNSET:",
            ]
            indent = "        "
            if kind == "date-time" and parse is PARSERS["date-time"]:
                # The common case, text already as SFMC wants it: only checked that it parses.
                lines += [
                    f"        if type({name}) is str and canonical_datetime_text({name}):",
                    "            try:",
                    f"                PARSERS['date-time']({name})",
                    "            except ValueError:",
                    "                return None",
                    "        else:",
                ]
                indent = "            "
            lines += [
                f"{indent}try:",
                f"{indent}    {name} = parse_datelike({name}, *DATES[{int(index)}])",
                f"{indent}except (ValueError, TypeError):",
                f"{indent}    return None",
                f"{indent}if type({name}) is not str:",
                f"{indent}    {name} = to_sfmc_value({name})",
            ]
            value_of[index] = name
        for index in self._numbers:
            name = f"x{int(index)}"
            lines += [
                f"    {name} = v[{int(index)}]",
                f"    if type({name}) is Decimal:",
                "        try:",
                f"            {name} = to_sfmc_value({name})",
                "        except MappingError:",
                "            return None",
            ]
            value_of[index] = name
        # contact_key(), unrolled: the first candidate that is not empty once cleaned.
        lines.append("    ck = None")
        for depth, index in enumerate(self._identifier_at):
            indent = "    " * (depth + 1)
            lines += [
                f"{indent}candidate = {value_of[index]}",
                f"{indent}if type(candidate) is str:",
                f"{indent}    ck = candidate.replace(':', '').strip() or None",
                f"{indent}else:",
                f"{indent}    ck = clean_contact_key(candidate)",
                f"{indent}if ck is None:",
            ]
        lines.append("    " * (len(self._identifier_at) + 1) + "pass")
        # The row holds the Contact Key, when there is one (in place of the record's own).
        if self._row_type is None:
            lines += [
                "    attributes = {}",
                f"    put_attributes(attributes, TITLES, ({', '.join(value_of)},))",
                "    if ck is not None:",
                "        attributes[CONTACT_KEY] = ck",
                "    return ck, attributes",
            ]
        else:
            if CONTACT_KEY in self._titles:
                at = self._titles.index(CONTACT_KEY)
                value_of[at] = f"(ck if ck is not None else {value_of[at]})"
            else:
                value_of.append("ck")
            lines.append(f"    return ck, ROW({', '.join(value_of)})")
        namespace: dict[str, Any] = {
            "astuple": astuple,
            "UNSET": UNSET,
            "Decimal": decimal.Decimal,
            "MappingError": MappingError,
            "parse_datelike": parse_datelike,
            "canonical_datetime_text": canonical_datetime_text,
            "PARSERS": PARSERS,
            "to_sfmc_value": to_sfmc_value,
            "clean_contact_key": clean_contact_key,
            "put_attributes": put_attributes,
            "ALLOWED": dict(self._number_checks),
            "NESTED_CHECKS": dict(self._nested_checks),
            "DATES": {index: (kind, parse) for index, kind, parse in self._dates},
            "ROW": self._row_type,
            "TITLES": self._titles,
            "CONTACT_KEY": CONTACT_KEY,
        }
        exec("\n".join(lines), namespace)  # noqa: S102 - code built above from integers only
        return namespace["map_decoded"]


_decode_nested = msgspec.json.Decoder(float_hook=decimal.Decimal).decode


def _nested_value_passes(raw: msgspec.Raw, check: Callable[[Any], Any]) -> bool:
    """Whether a nested value (raw JSON text) satisfies its property's schema."""
    try:
        check(_decode_nested(raw))
    except Exception:  # noqa: BLE001 - any refusal sends the record the general way
        return False
    return True


def struct_field_type(
    allowed: frozenset[type], constraint: tuple[type, msgspec.Meta] | None
) -> tuple[Any, bool]:
    """A typed field for a record Struct, with the constraint on its base type if it has it.

    Args:
        allowed: The Python types the property's schema accepts (none of them a number).
        constraint: ``(str or int, msgspec.Meta)`` its values must also meet, if any.

    Returns:
        The field type, and whether every value it lets through meets the constraint.
    """
    members = [_STRUCT_TYPES[kind] for kind in allowed]
    if constraint is None or constraint[0] not in members:
        return Union[tuple(members)], False  # noqa: UP007
    base, meta = constraint
    held = all(member in {base, None} for member in members)
    members = [Annotated[member, meta] if member is base else member for member in members]
    return Union[tuple(members)], held  # noqa: UP007


def compile_lane(
    schema: dict[str, Any],
    key_properties: Sequence[str],
    *,
    validate: bool,
    user_id_properties: Sequence[str],
    email_property: str,
    declines_deleted: bool = False,
    constraints: Mapping[str, tuple[type, msgspec.Meta]] | None = None,
) -> RecordLane | None:
    """Build the lane of a stream, when its schema allows one.

    Args:
        schema: The stream's schema.
        key_properties: The stream's key properties (each record must carry them).
        validate: Whether records are validated (``validate_records``).
        user_id_properties: Properties that can hold the user id, in order of preference.
        email_property: The property holding the email.
        declines_deleted: Leave records with a ``_sdc_deleted_at`` to the general path.
        constraints: Property -> ``(str or int, msgspec.Meta)``: values of that type must
            also meet the Meta (a length, a range) or the record goes the general way, where
            the same rule is checked and worded. Date-like properties are left out (the lane
            rewrites their text).

    Returns:
        The lane, or None when the schema has properties a lane cannot take as the general
        path does (nested schemas, keywords beyond types, a ``context`` object, names whose
        Title Case collide).
    """
    table = type_table(schema)
    if table is None:
        return None
    allowed_by_name, required, _ = table
    must_be_present = {*key_properties, *(required if validate else ())}
    if "context" in allowed_by_name or not must_be_present <= set(allowed_by_name) - SDK_METADATA:
        return None
    # Plain object and array properties a record must carry stay decoded (an untyped lane).
    nested = {
        name: _nested_field(schema, name, allowed, validate=validate)
        for name, allowed in allowed_by_name.items()
        if name not in SDK_METADATA
        and (allowed is None or (allowed <= _DROPPED_TYPES and name not in must_be_present))
    }
    if None in nested.values() or must_be_present & set(nested):
        return None
    mapped = [name for name in allowed_by_name if name not in SDK_METADATA and name not in nested]
    # Decoded (nested values as raw JSON text, to check them) but never mapped.
    unmapped = [*nested, *(name for name in allowed_by_name if name in SDK_METADATA)]
    titles = [title_case(name) for name in mapped]
    if len(set(titles)) != len(titles) or "" in titles:
        return None
    names = mapped + unmapped
    fields: list[tuple[str, Any, Any] | tuple[str, Any]] = []
    number_checks: list[tuple[int, frozenset[type]]] = []
    nested_checks = [
        (names.index(name), field[1])
        for name, field in nested.items()
        if field is not None and field[1] is not None
    ]
    typed = validate
    dates = [(name, kind, parse) for name, kind, parse in datelike_properties(schema)]
    datelike = {name for name, _kind, _parse in dates}
    constrained: list[str] = []
    for index, name in enumerate(names):
        allowed = allowed_by_name[name]
        nested_field = nested.get(name)
        field_type: Any = Any if nested_field is None else nested_field[0]
        default: Any = None
        if name in nested or allowed is None or name in SDK_METADATA or not validate:
            pass  # nested values are checked apart; metadata is decoded, never checked
        elif decimal.Decimal in allowed:
            # Null is checked here, so a missing non-nullable number must differ from null.
            if type(None) not in allowed and name not in must_be_present:
                default, allowed = UNSET, allowed | {UnsetType}
            number_checks.append((index, allowed))
        else:
            constraint = None if name in datelike else (constraints or {}).get(name)
            field_type, held = struct_field_type(allowed, constraint)
            constrained += [titles[index]] * held
            typed = typed and not allowed & {dict, list}
        # A missing key or required property fails the decode: the general path words it.
        fields.append(
            (f"f{index}", field_type)
            if name in must_be_present
            else (f"f{index}", field_type, default)
        )
    at = {name: index for index, name in enumerate(names)}
    decode = record_decoder("LaneRecord", fields, names, forbid_unknown=True)
    if decode is None:
        return None
    return RecordLane(
        decode=decode,
        titles=titles,
        number_checks=number_checks,
        nested_checks=nested_checks,
        dates=[(at[name], kind, parse) for name, kind, parse in dates if name not in SDK_METADATA],
        identifier_at=[
            at[name] for name in (*user_id_properties, email_property) if name in mapped
        ],
        typed=typed,
        has_unmapped=bool(unmapped),
        deleted_at=at.get("_sdc_deleted_at") if declines_deleted else None,
        guaranteed=constrained,
    )


def number_check_lines(number_checks: Sequence[tuple[int, frozenset[type]]]) -> list[str]:
    """Generated lines declining a record whose number at an index has a type not allowed.

    The generated function has the decoded values in ``v`` and the allowed types in
    ``ALLOWED`` (index -> types).
    """
    lines: list[str] = []
    for index, _allowed in number_checks:
        lines += [
            f"    if type(v[{int(index)}]) not in ALLOWED[{int(index)}]:",
            "        return None",
        ]
    return lines


def decoded_type(decode: Callable[[msgspec.Raw | bytes | str], Any]) -> type:
    """The Struct a :func:`record_decoder` decode function returns."""
    return decode.__self__.type  # type: ignore[attr-defined] # a Decoder's bound decode


def record_decoder(
    type_name: str, fields: list[tuple[Any, ...]], names: list[str], *, forbid_unknown: bool
) -> Callable[[msgspec.Raw | bytes | str], Any] | None:
    """A decoder of one JSON object into a Struct with positional fields ``f0``, ``f1``, ...

    Args:
        type_name: The Struct's name.
        fields: ``(field, type)`` or ``(field, type, default)`` per property, in ``names`` order.
        names: The JSON key each field is read from.
        forbid_unknown: Keys not in ``names`` fail the decode (else they are skipped).

    Returns:
        The decode function, or None when msgspec cannot build such a type.
    """
    try:
        record_type = msgspec.defstruct(
            type_name,
            fields,
            rename={f"f{index}": name for index, name in enumerate(names)},
            forbid_unknown_fields=forbid_unknown,
            kw_only=True,  # required fields keep their place among optional ones
            gc=False,  # decoded JSON never forms reference cycles
        )
        # The SDK's decoder turns JSON floats into Decimal; so does the lane.
        return msgspec.json.Decoder(record_type, float_hook=decimal.Decimal).decode
    except (TypeError, ValueError):
        return None


def _nested_field(
    schema: dict[str, Any], name: str, allowed: frozenset[type] | None, *, validate: bool
) -> tuple[Any, Callable[[msgspec.Raw], bool] | None] | None:
    """How a lane takes an object or array property: the mapping drops its value.

    Args:
        schema: The stream's schema.
        name: The property.
        allowed: The types its schema accepts, when they are plain types (else None).
        validate: Whether records are validated.

    Returns:
        ``(field type, check)``: a type the decode holds the value to exactly as the
        property's schema would (no check then), or the value's JSON text and a check of it
        (the property's plain types or own schema with validation, else that the value is
        one the mapping drops); None when the lane cannot take the property (another
        keyword, or a reference to the rest of the schema).
    """
    if allowed is not None:  # objects, arrays, null: told by the first character
        return msgspec.Raw, _starts_as(allowed if validate else _DROPPED_TYPES)
    definition = schema["properties"][name]
    names = _type_names(definition)
    if not names or not names <= {"object", "array", "null"} or _refers(definition):
        return None
    if not validate:
        return msgspec.Raw, _starts_as(_DROPPED_TYPES)
    exact = exact_type(definition)
    if exact is not None:
        return exact, None
    check = own_schema_check(schema, name)
    if check is None:
        return None
    return msgspec.Raw, functools.partial(_nested_value_passes, check=check)


# JSON Schema types as msgspec types that take exactly their values (no bool for numbers).
_EXACT_PLAIN: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": int | float,
    "boolean": bool,
    "null": None,
}
# Keywords that never refuse a value (formats are not checked, as in the SDK).
_PASSIVE = frozenset(
    {"type", "format", "description", "title", "default", "examples", "$comment", "readOnly"}
    | {"writeOnly", "deprecated"}
)
_MAX_NESTING = 8
# What JSON value each type name takes: branches of a union must not share one.
_JSON_KIND = {"integer": "number", "number": "number"}
_UNION_KEYWORDS = ("anyOf", "oneOf")


def _type_names(definition: Any) -> set[str]:
    """The JSON Schema type names a property takes: its ``type``, or its union's branches'.

    Empty when a branch, or the property itself, names no type.
    """
    if not isinstance(definition, dict):
        return set()
    keyword = next((word for word in _UNION_KEYWORDS if word in definition), None)
    if keyword is None:
        kinds = definition.get("type")
        if isinstance(kinds, str):
            return {kinds}
        return set(kinds) if isinstance(kinds, list) else set()
    branches = definition[keyword]
    if "type" in definition or not isinstance(branches, list) or not branches:
        return set()
    parts = [_type_names(branch) for branch in branches]
    return set().union(*parts) if all(parts) else set()


def _exact_union(definition: dict[str, Any], depth: int) -> Any:
    """An ``anyOf``/``oneOf`` whose branches take different JSON values, as one union type.

    With no value able to match two branches, ``anyOf`` and ``oneOf`` accept the same values:
    those of any one branch, which is what a union of the branches' exact types decodes.
    """
    keyword = "anyOf" if "anyOf" in definition else "oneOf"
    branches = definition[keyword]
    if (
        set(definition) - _PASSIVE - {keyword}
        or "type" in definition
        or not isinstance(branches, list)
        or not branches
    ):
        return None
    seen: set[str] = set()
    members: list[Any] = []
    for branch in branches:
        names = _type_names(branch)
        kinds = {_JSON_KIND.get(name, name) for name in names}
        if not names or kinds & seen or any(word in branch for word in _UNION_KEYWORDS):
            return None
        seen |= kinds
        member = exact_type(branch, depth + 1)
        if member is None and names != {"null"}:
            return None
        members.append(member)
    try:
        exact: Any = Union[tuple(members)]  # noqa: UP007
        msgspec.json.Decoder(exact)
    except (TypeError, ValueError):
        return None
    return exact


def exact_type(definition: Any, depth: int = 0) -> Any:
    """A msgspec type that decodes exactly the values a (nested) property schema accepts.

    Only plain types, ``properties`` with ``required`` and a boolean ``additionalProperties``,
    ``items`` of such schemas, and ``anyOf``/``oneOf`` of them whose branches take different
    JSON values (an object or null, say); a value the type refuses fails the record's
    decode, and the general path decides.

    Args:
        definition: A property's schema.
        depth: How deep in the schema (nesting is bounded).

    Returns:
        The type, or None when the schema has anything else.
    """
    if not isinstance(definition, dict) or depth > _MAX_NESTING:
        return None
    if any(word in definition for word in _UNION_KEYWORDS):
        return _exact_union(definition, depth)
    kinds = definition.get("type")
    names = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
    keywords = set(definition) - _PASSIVE
    object_keywords = keywords & {"properties", "required", "additionalProperties"}
    if (
        not names
        or not keywords <= {"properties", "required", "additionalProperties", "items"}
        or (object_keywords and "object" not in names)
        or ("items" in keywords and "array" not in names)
    ):
        return None
    members: list[Any] = []
    for kind in names:
        if kind in _EXACT_PLAIN:
            member = _EXACT_PLAIN[kind]
        elif kind == "object":
            member = _exact_object(definition, depth)
        elif kind == "array":
            item = exact_type(definition["items"], depth + 1) if "items" in definition else Any
            member = None if item is None else types.GenericAlias(list, (item,))
        else:
            return None
        if member is None and kind != "null":
            return None
        members.append(member)
    try:
        exact: Any = Union[tuple(members)]  # noqa: UP007
        msgspec.json.Decoder(exact)  # a union msgspec cannot decode is no exact type
    except (TypeError, ValueError):
        return None
    return exact


def _exact_object(definition: dict[str, Any], depth: int) -> Any:
    """A Struct holding an object to its ``properties`` (others skipped unless forbidden)."""
    properties = definition.get("properties", {})
    required = definition.get("required", [])
    additional = definition.get("additionalProperties", True)
    if (
        not isinstance(properties, dict)
        or not isinstance(required, list)
        or not set(required) <= set(properties)
        or additional not in (True, False, {})
    ):
        return None
    if not properties:
        return dict if additional is not False else None
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for index, (name, sub) in enumerate(properties.items()):
        kind = exact_type(sub, depth + 1)
        if kind is None:
            return None
        # An absent property is valid: its default is never checked.
        fields.append((f"f{index}", kind) if name in required else (f"f{index}", kind, None))
    try:
        return msgspec.defstruct(
            "NestedObject",
            fields,
            rename={f"f{index}": name for index, name in enumerate(properties)},
            forbid_unknown_fields=additional is False,
            kw_only=True,
            gc=False,
        )
    except (TypeError, ValueError):
        return None


# Values the mapping drops, and the first character of their JSON text.
_DROPPED_TYPES: frozenset[type] = frozenset({dict, list, type(None)})
_FIRST_CHARACTERS: dict[type, int] = {dict: ord("{"), list: ord("["), type(None): ord("n")}


def _starts_as(allowed: frozenset[type]) -> Callable[[msgspec.Raw], bool]:
    """A check that a value's JSON text is of one of the allowed types (objects, arrays, null).

    msgspec has checked the text is JSON; its first character tells its type.
    """
    firsts = frozenset(_FIRST_CHARACTERS[kind] for kind in allowed)

    def check(raw: msgspec.Raw) -> bool:
        return memoryview(raw)[0] in firsts

    return check


def _refers(definition: Any) -> bool:
    """Whether a property's schema refers to another part of the schema (``$ref``)."""
    return b'"$ref"' in encode_json(definition)


def own_schema_check(schema: dict[str, Any], name: str) -> Callable[[Any], Any] | None:
    """A property's own schema as a check of its decoded value, apart from the record's.

    Args:
        schema: The stream's schema.
        name: The property.

    Returns:
        A function raising on a value the record's validation refuses at that property, or
        None when the property's schema refers to the rest of the schema or does not compile
        (the general path words what is wrong with it).
    """
    definition = schema["properties"][name]
    if not isinstance(definition, dict) or _refers(definition):
        return None
    own = {**definition, **({"$schema": schema["$schema"]} if "$schema" in schema else {})}
    try:
        return compile_validator(own)
    except Exception:  # noqa: BLE001 - the general path words what is wrong with the schema
        return None
