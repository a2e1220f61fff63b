"""Pure mapping rules from Singer records to SFMC attributes.

Nothing here does I/O: every function takes plain values and returns plain values,
so the rules can be unit- and property-tested in isolation. The rules:

- Attribute names are sent in Title Case, as Segment's SFMC destination does (see
  :func:`title_case`).
- The Contact Key is the user id when present, else the email, without colons (SFMC
  refuses them) and surrounding white space.
- Nulls are left out (SFMC refuses rows with nulls); nested objects and arrays are dropped;
  decimals keep their exact digits, written as plain digits; date-times carry an explicit
  offset (a naive one is UTC).
- A Segment ``context`` object adds a fixed set of attributes (:data:`CONTEXT_ATTRIBUTES`),
  which lose to the record's own attributes on a name clash.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

import msgspec
from msgspec import UNSET

from target_sfmc.jsonio import PlainDecimal

if TYPE_CHECKING:
    from target_sfmc.records import Attributes

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
    """Convert an attribute name to SFMC Title Case the way Segment does.

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


# Bounds the memory of names seen (a stream whose keys never repeat would grow it forever).
_TITLE_CACHE_SIZE = 65536


class _TitleCaseCache(dict[str, str]):
    """Title Case names computed once: a known name is one dict lookup, in C."""

    def __missing__(self, key: str) -> str:
        if len(self) >= _TITLE_CACHE_SIZE:
            self.clear()
        value = self[key] = title_case(key)
        return value


title_cased = _TitleCaseCache().__getitem__
"""Same as :func:`title_case`, for the names of every record (cheaper per known name)."""


def clean_contact_key(value: Any) -> str | None:
    """Return a usable Contact Key from one candidate value, or None.

    Args:
        value: A user id or email value as found in the record.

    Returns:
        The value as text without colons and surrounding white space, or None when that
        leaves nothing. A number has one text form whichever way it was written (``1e3``,
        ``1000.0`` and ``1000`` are all ``1000``), so one user stays one Contact.
    """
    if type(value) is str:  # the common case first
        return value.replace(":", "").strip() or None
    if value is None or value is UNSET or isinstance(value, (dict, list, bool)):
        return None
    numeric = isinstance(value, (decimal.Decimal, float))
    text = _canonical_number(value) if numeric else str(value)
    return text.replace(":", "").strip() or None


def _canonical_number(value: decimal.Decimal | float) -> str:
    number = decimal.Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        return str(number)
    text = format(number, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def contact_key(*candidates: Any) -> str | None:
    """Contact Key = the user id when present, else the email.

    Args:
        *candidates: The record's user id values in order of preference, then its email. A
            candidate that is empty once cleaned (blank, only colons) counts as absent.

    Returns:
        The Contact Key, or None when no candidate gives one.
    """
    for value in candidates:
        key = clean_contact_key(value)
        if key is not None:
            return key
    return None


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
# Decoded JSON values that are never objects (told apart without the Mapping ABC check).
_JSON_SCALARS = frozenset({str, int, bool, float, type(None), list, decimal.Decimal})


def to_sfmc_value(value: Any) -> Any:
    """Convert one record value to the value sent to SFMC.

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
        # SFMC's Number and Decimal columns want plain digits, not 1E+2 or 1E-7.
        return PlainDecimal(value) if "E" in str(value) else value
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


def is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    """Tell whether a value is an object (a dict first: the ABC check costs more).

    Args:
        value: Any record value.

    Returns:
        True for a dict or another Mapping.
    """
    kind = type(value)
    return kind is dict or (kind not in _JSON_SCALARS and isinstance(value, Mapping))


def _context_groups() -> tuple[tuple[str, str | None, tuple[tuple[str, str], ...]], ...]:
    """:data:`CONTEXT_ATTRIBUTES` by the context key each path starts at, in their order.

    Each group is ``(key, name, ())`` for a path of one part, ``(key, None, ((part, name),
    ...))`` for paths of two. Each key's paths are adjacent in the table, so walking the
    groups adds the attributes in the table's order.
    """
    groups: dict[str, tuple[str | None, list[tuple[str, str]]]] = {}
    for path, name in CONTEXT_ATTRIBUTES:
        if len(path) == 1:
            groups[path[0]] = (name, [])
        else:
            groups.setdefault(path[0], (None, []))[1].append((path[1], name))
    return tuple((key, own, tuple(leaves)) for key, (own, leaves) in groups.items())


CONTEXT_GROUPS = _context_groups()
"""The context table by the context key each path starts at (see :func:`_context_groups`)."""


def context_attributes(context: Any) -> dict[str, Any]:
    """Attributes taken from a Segment ``context`` object.

    Args:
        context: The record's ``context`` value.

    Returns:
        Attribute name -> SFMC value, nulls and nested values left out.
    """
    attributes: dict[str, Any] = {}
    if not is_mapping(context):
        return attributes
    for key, own, leaves in CONTEXT_GROUPS:
        node = context.get(key)
        if node is None:
            continue
        if own is not None:  # a value of the context itself (locale, ip, ...)
            if type(node) in _SENT_AS_IS:
                attributes[own] = node
            else:
                _put_converted(attributes, own, node)
        elif is_mapping(node):
            get = node.get
            for part, name in leaves:
                value = get(part)
                if type(value) in _SENT_AS_IS:
                    attributes[name] = value
                elif value is not None:
                    _put_converted(attributes, name, value)
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
    put_attributes(attributes, map(title_cased, record), record.values())
    attributes.pop("", None)  # a name with no letters or digits ("", "_") names no column
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
        elif raw is not None:
            _put_converted(attributes, name, raw)


def _put_converted(attributes: dict[str, Any], name: str, raw: Any) -> None:
    """Add one value that is not sent as it is (nested and missing values are left out)."""
    if raw is not UNSET and type(raw) not in _NESTED:
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
    email = _email_in(message.get("traits"))
    if email is None:
        context = message.get("context")
        if is_mapping(context):
            email = _email_in(context.get("traits"))
    return _email_in(message.get("properties")) if email is None else email


def _email_in(node: Any) -> Any:
    """The ``email`` of an object when it has one (not null, not empty), else None."""
    if not is_mapping(node):
        return None
    email = node.get("email")
    # An unhashable email (an object, a list) is no Contact Key, but still the one found.
    return None if email == "" else email
