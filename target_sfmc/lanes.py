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
from typing import TYPE_CHECKING, Any, Union

import msgspec
from msgspec import UNSET, UnsetType
from msgspec.structs import astuple

from target_sfmc.dates import datelike_properties, parse_datelike
from target_sfmc.mapping import contact_key, put_attributes, title_case
from target_sfmc.validation import type_table

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

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

Mapped = tuple[str | None, dict[str, Any]]


class RecordLane:
    """Turns the JSON text of one record into ``(contact_key, attributes)``, or declines.

    Build one with :func:`compile_lane`.
    """

    def __init__(
        self,
        decode: Callable[[msgspec.Raw | bytes | str], Any],
        titles: Sequence[str | None],
        number_checks: Sequence[tuple[int, frozenset[type]]],
        present: Sequence[int],
        dates: Sequence[tuple[int, str, Callable[[Any], Any]]],
        user_id_at: Sequence[int],
        email_at: int | None,
    ) -> None:
        """Keep the precomputed parts (see :func:`compile_lane`)."""
        self._decode = decode
        self._titles = tuple(title for title in titles if title is not None)
        self._mapped_at = tuple(i for i, title in enumerate(titles) if title is not None)
        self._all_mapped = len(self._mapped_at) == len(titles)
        self._number_checks = tuple(number_checks)
        self._present = tuple(present)
        self._dates = tuple(dates)
        self._user_id_at = tuple(user_id_at)
        self._email_at = email_at

    def map(self, raw: msgspec.Raw | bytes | str) -> Mapped | None:  # noqa: C901 - one flat pass per record, kept inline for speed
        """Decode, check and map one record.

        Args:
            raw: The record's JSON text.

        Returns:
            ``(contact_key, attributes)`` exactly as the general path would produce them, or
            None when the general path must take the record.
        """
        try:
            values = list(astuple(self._decode(raw)))
        except msgspec.DecodeError:
            return None
        for index, allowed in self._number_checks:
            value = values[index]
            if value is not UNSET and type(value) not in allowed:
                return None
        for index in self._present:
            if values[index] is UNSET:
                return None
        for index, kind, parse in self._dates:
            value = values[index]
            if value is not None and value is not UNSET:
                try:
                    values[index] = parse_datelike(value, kind, parse)
                except (ValueError, TypeError):
                    return None
        user_id = None
        for index in self._user_id_at:
            value = values[index]
            if value is not None and value is not UNSET:
                user_id = value
                break
        email = None if self._email_at is None else values[self._email_at]
        ck = contact_key(user_id, None if email is UNSET else email)
        attributes: dict[str, Any] = {}
        if not self._all_mapped:
            values = [values[i] for i in self._mapped_at]
        put_attributes(attributes, self._titles, values)
        return ck, attributes


def compile_lane(
    schema: dict[str, Any],
    key_properties: Sequence[str],
    *,
    validate: bool,
    user_id_properties: Sequence[str],
    email_property: str,
) -> RecordLane | None:
    """Build the lane of a stream, when its schema allows one.

    Args:
        schema: The stream's schema.
        key_properties: The stream's key properties (each record must carry them).
        validate: Whether records are validated (``validate_records``).
        user_id_properties: Properties that can hold the user id, in order of preference.
        email_property: The property holding the email.

    Returns:
        The lane, or None when the schema has properties a lane cannot take as the general
        path does (nested schemas, keywords beyond types, a ``context`` object, names whose
        Title Case collide).
    """
    table = type_table(schema)
    if table is None:
        return None
    allowed_by_name, required = table
    names = list(allowed_by_name)
    must_be_present = {*key_properties, *(required if validate else ())}
    if "context" in allowed_by_name or not must_be_present <= set(names) - SDK_METADATA:
        return None
    titles = [None if name in SDK_METADATA else title_case(name) for name in names]
    mapped_titles = [title for title in titles if title is not None]
    if len(set(mapped_titles)) != len(mapped_titles):
        return None
    fields: list[tuple[str, Any, Any]] = []
    number_checks: list[tuple[int, frozenset[type]]] = []
    for index, name in enumerate(names):
        allowed = allowed_by_name[name]
        if allowed is None:
            return None
        field_type: Any = Any
        if name in SDK_METADATA or not validate:
            pass
        elif decimal.Decimal in allowed:
            number_checks.append((index, allowed))
        else:
            field_type = Union[tuple(_STRUCT_TYPES[kind] for kind in allowed)]  # noqa: UP007
        fields.append((f"f{index}", Union[field_type, UnsetType], UNSET))  # noqa: UP007
    at = {name: index for index, name in enumerate(names)}
    mapped = set(names) - SDK_METADATA
    try:
        record_type = msgspec.defstruct(
            "LaneRecord",
            fields,
            rename={f"f{index}": name for index, name in enumerate(names)},
            forbid_unknown_fields=True,
            gc=False,  # decoded JSON never forms reference cycles
        )
        # The SDK's decoder turns JSON floats into Decimal; so does the lane.
        decode = msgspec.json.Decoder(record_type, float_hook=decimal.Decimal).decode
    except (TypeError, ValueError):
        return None
    return RecordLane(
        decode=decode,
        titles=titles,
        number_checks=number_checks,
        present=sorted(at[name] for name in must_be_present),
        dates=[
            (at[name], kind, parse)
            for name, kind, parse in datelike_properties(schema)
            if name not in SDK_METADATA
        ],
        user_id_at=[at[name] for name in user_id_properties if name in mapped],
        email_at=at[email_property] if email_property in mapped else None,
    )
