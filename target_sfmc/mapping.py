"""Pure mapping rules from Singer records to SFMC attributes (SPEC §4).

Nothing here does I/O: every function takes plain values and returns plain values,
so the rules can be unit- and property-tested in isolation.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import msgspec
from msgspec import UNSET
from msgspec.structs import astuple

# Segment's classic destination maps these context paths to fixed attribute names.
CONTEXT_ATTRIBUTES: tuple[tuple[tuple[str, ...], str], ...] = tuple(
    (tuple(path.split(".")), name)
    for path, name in (
        ("app.name", "App Name"),
        ("app.version", "App Version"),
        ("app.build", "App Build"),
        ("campaign.name", "UTM Campaign"),
        ("campaign.source", "UTM Source"),
        ("campaign.medium", "UTM Medium"),
        ("campaign.term", "UTM Term"),
        ("campaign.content", "UTM Content"),
        ("locale", "Locale"),
        ("userAgent", "User Agent"),
        ("ip", "IP Address"),
        ("device.adTrackingEnabled", "Ad Tracking Enabled"),
        ("device.manufacturer", "Device Manufacturer"),
        ("device.model", "Device-model"),
        ("device.name", "Device Name"),
        ("device.type", "Device Type"),
        ("network.bluetooth", "Bluetooth Enabled"),
        ("network.carrier", "Network Carrier"),
        ("network.cellular", "Cellular Enabled"),
        ("network.wifi", "Wifi Enabled"),
        ("screen.density", "Screen Density"),
        ("screen.height", "Screen Height"),
        ("screen.width", "Screen Width"),
    )
)

CONTACT_KEY = "Contact Key"
UUID_KEY = "Uuid"
# Fixed namespace so that the same record always yields the same Uuid primary key.
_RECORD_UUID_NAMESPACE = uuid.UUID("5b0d1f4e-7c59-4b8e-9f8e-3c1f2a6d9e10")


class MappingError(ValueError):
    """A record cannot be turned into an SFMC row (the row is rejected, not the run)."""


class AttributeRow(msgspec.Struct, omit_defaults=True, gc=False):
    """A row's attributes as a Struct: built in one call, encoded like the dict it stands for.

    Each subclass (see :func:`attribute_row_type`) has one field per Title Case name; a
    field left None or UNSET is an attribute the row does not have, exactly as a dict
    without that key. It reads like that dict (``get``, ``keys``, ``[]``, ``**``).
    """

    # Title Case name -> field name, set per subclass.
    _fields_by_name: ClassVar[dict[str, str]] = {}

    def get(self, name: str, default: Any = None) -> Any:
        """The attribute's value, or ``default`` when the row does not have it."""
        field = self._fields_by_name.get(name)
        value = None if field is None else getattr(self, field)
        return default if value is None or value is UNSET else value

    def __getitem__(self, name: str) -> Any:
        """The attribute's value; KeyError when the row does not have it."""
        value = self.get(name, UNSET)
        if value is UNSET:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        """Set an attribute the row type declares (the Contact Key, once it is known)."""
        setattr(self, self._fields_by_name[name], value)

    def items(self) -> list[tuple[str, Any]]:
        """The attributes the row has, in field order."""
        return [
            (name, value)
            for name, value in zip(self.__struct_encode_fields__, astuple(self), strict=True)
            if value is not None and value is not UNSET
        ]

    def keys(self) -> list[str]:
        """The names of the attributes the row has."""
        return [name for name, _ in self.items()]


def attribute_row_type(names: Sequence[str]) -> type[AttributeRow]:
    """A row type with one field per name, created positionally: ``row_type(*values)``.

    Args:
        names: Title Case names, all different.

    Returns:
        The subclass; its fields default to None (no attribute).
    """
    fields = {name: f"a{index}" for index, name in enumerate(names)}
    return msgspec.defstruct(  # type: ignore[return-value] # a subclass of its base
        "Row",
        [(field, Any, None) for field in fields.values()],
        bases=(AttributeRow,),
        rename={field: name for name, field in fields.items()},
        namespace={"_fields_by_name": fields},
    )


Attributes = dict[str, Any] | AttributeRow


def _needs_space(key: str, i: int) -> bool:
    prev, char = key[i - 1], key[i]
    if prev.islower() and char.isupper():
        return True
    if prev.isupper() and char.isupper() and i + 1 < len(key) and key[i + 1].islower():
        return True
    return (prev.isalpha() and char.isdigit()) or (prev.isdigit() and char.isalpha())


def _capitalize_first(word: str) -> str:
    first = word[0]
    if not first.islower():
        return word
    upper = first.upper()
    # Only a one-to-one upper-casing keeps the function idempotent ("ß" -> "SS" would not).
    if len(upper) != 1 or not upper.isupper() or upper.isalpha() != first.isalpha():
        return word
    return upper + word[1:]


@functools.lru_cache(maxsize=65536)
def title_case(key: str) -> str:
    """Convert an attribute name to SFMC Title Case the way Segment does (SPEC §4.1).

    Args:
        key: Source attribute name, e.g. ``firstName`` or ``first_name``.

    Returns:
        The Title Case name, e.g. ``First Name``.
    """
    spaced = [key[0]] if key else []
    for i in range(1, len(key)):
        if _needs_space(key, i):
            spaced.append(" ")
        spaced.append(key[i])
    words = "".join(spaced).replace("_", " ").split()
    return " ".join(_capitalize_first(word) for word in words)


def clean_contact_key(value: Any) -> str | None:
    """Return a usable Contact Key from one candidate value, or None.

    Args:
        value: A user id or email value as found in the record.

    Returns:
        The value as text without colons and surrounding white space, or None when empty.
    """
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value).replace(":", "").strip()
    return text or None


def contact_key(user_id: Any, email: Any) -> str | None:
    """Contact Key = user id when present, else email (SPEC §4.2).

    Args:
        user_id: The record's user id, if any.
        email: The record's email, if any.

    Returns:
        The Contact Key, or None when the record has neither.
    """
    return clean_contact_key(user_id) or clean_contact_key(email)


def first_present(record: Mapping[str, Any], names: Sequence[str]) -> Any:
    """Return the value of the first of ``names`` present (non-null) in ``record``.

    Args:
        record: A record.
        names: Candidate field names in order of preference.

    Returns:
        The first non-null value, or None.
    """
    for name in names:
        value = record.get(name)
        if value is not None:
            return value
    return None


def format_datetime(value: dt.datetime) -> str:
    """ISO-8601 with an explicit ``±hh:mm`` offset and at most 3 fractional digits.

    A naive value is taken as UTC. SFMC stores milliseconds: microseconds are truncated,
    never rounded (rounding up could move the value into the next second, minute or day).
    An offset with seconds (historic local mean time) cannot be written as ``±hh:mm``: such
    a value is sent in UTC, the same instant.

    Args:
        value: A datetime.

    Returns:
        For example ``2020-05-30T13:30:00+00:00`` or ``2020-05-30T13:30:00.123+05:30``.
    """
    offset = value.utcoffset()
    if offset is None:
        value = value.replace(tzinfo=dt.UTC)
    elif offset.seconds % 60 or offset.microseconds:
        value = value.astimezone(dt.UTC)
    return value.isoformat(timespec="milliseconds" if value.microsecond >= 1000 else "seconds")  # noqa: PLR2004 - one millisecond


_DROP = object()
_SENT_AS_IS = frozenset({str, int, bool})
_NESTED = frozenset({dict, list})


def to_sfmc_value(value: Any) -> Any:
    """Convert one record value to the value sent to SFMC (SPEC §4.3).

    Args:
        value: A record value as the SDK delivers it (Decimal, datetime, ...).

    Returns:
        The value to send, or the private drop marker for nulls and nested values.

    Raises:
        MappingError: For numbers JSON cannot carry (NaN, infinity).
    """
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise MappingError("a number is not finite (NaN or infinity)")
        # SFMC's Number and Decimal columns want plain digits, not 1E+2.
        return decimal.Decimal(format(value, "f")) if "E" in str(value) else value
    if value is None or isinstance(value, (dict, list, tuple)):
        return _DROP
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise MappingError("a number is not finite (NaN or infinity)")
        return value
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def is_dropped(value: Any) -> bool:
    """Tell whether :func:`to_sfmc_value` dropped a value.

    Args:
        value: A converted value.

    Returns:
        True for the drop marker.
    """
    return value is _DROP


def context_attributes(context: Any) -> dict[str, Any]:
    """Attributes taken from a Segment ``context`` object (SPEC §4.4).

    Args:
        context: The record's ``context`` value.

    Returns:
        Attribute name -> SFMC value, nulls and nested values left out.
    """
    if not isinstance(context, Mapping):
        return {}
    attributes: dict[str, Any] = {}
    for path, name in CONTEXT_ATTRIBUTES:
        node: Any = context
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
            if node is None:
                break
        value = to_sfmc_value(node)
        if not is_dropped(value):
            attributes[name] = value
    return attributes


def map_attributes(
    record: Mapping[str, Any],
    context: Any = None,
) -> dict[str, Any]:
    """Title-case the attributes of one record and convert their values.

    Args:
        record: Traits or properties of one call (a flat record).
        context: An optional Segment context object; its attributes lose name clashes.

    Returns:
        Title Case name -> SFMC value. Nulls and nested values are left out; when two
        keys give the same name the later key wins.
    """
    attributes = context_attributes(context) if context is not None else {}
    put_attributes(attributes, map(title_case, record), record.values())
    return attributes


def put_attributes(attributes: dict[str, Any], names: Iterable[str], values: Iterable[Any]) -> None:
    """Add attributes under already title-cased names, converting their values.

    Args:
        attributes: The row being built (changed in place).
        names: Title Case names.
        values: Record values in the same order; nulls, nested and missing
            (``msgspec.UNSET``) values are left out.
    """
    for name, raw in zip(names, values, strict=True):
        # Fast path for the common JSON types; everything else goes through to_sfmc_value.
        if type(raw) in _SENT_AS_IS:
            attributes[name] = raw
        elif raw is not None and raw is not UNSET and type(raw) not in _NESTED:
            value = to_sfmc_value(raw)
            if value is not _DROP:
                attributes[name] = value


def parse_primary_keys(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """Parse a ``primary_keys`` setting into Title Case names.

    Args:
        spec: ``"Contact Key,Product Id"`` or a list of names.

    Returns:
        The names, trimmed and title-cased, empty entries removed.
    """
    if spec is None:
        return ()
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    return tuple(title_case(part.strip()) for part in parts if part and part.strip())


def primary_key_values(
    attributes: Attributes,
    primary_keys: Sequence[str],
) -> dict[str, Any]:
    """Pick the primary-key values of a mapped row.

    Args:
        attributes: The mapped row.
        primary_keys: Title Case primary-key names.

    Returns:
        Primary-key name -> value.

    Raises:
        MappingError: When a primary-key value is missing or empty.
    """
    keys: dict[str, Any] = {}
    for name in primary_keys:
        value = attributes.get(name)
        if value is None or value == "":
            raise MappingError(f"the row has no value for primary key '{name}'")
        keys[name] = value
    return keys


# Sorted keys and numbers kept as numbers, so "1" and 1 give different UUIDs.
_canonical_encoder = msgspec.json.Encoder(decimal_format="number", order="sorted", enc_hook=str)


def record_uuid(record: Mapping[str, Any]) -> str:
    """Deterministic UUIDv5 of a record's canonical JSON, for replay-safe Uuid keys.

    Args:
        record: The record as received.

    Returns:
        A UUID string that is the same every time the same record is loaded.
    """
    # SDK metadata (_sdc_received_at, ...) changes on every run: a replay must hash the same.
    content = {k: v for k, v in record.items() if not k.startswith("_sdc_")}
    canonical = _canonical_encoder.encode(content).decode()
    return str(uuid.uuid5(_RECORD_UUID_NAMESPACE, canonical))


def segment_email(message: Mapping[str, Any]) -> Any:
    """Email of a Segment message: traits, then context.traits, then properties.

    Args:
        message: A Segment message.

    Returns:
        The first email found, or None.
    """
    for path in (("traits",), ("context", "traits"), ("properties",)):
        node: Any = message
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping) and node.get("email") not in {None, ""}:
            return node["email"]
    return None
