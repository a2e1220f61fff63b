"""Data Extension definitions: fields, types and the definition file format.

A definition looks like the entries of the emulator's DE file::

    {"key": "IDENTIFY",
     "fields": [{"name": "Contact Key", "type": "Text", "length": 254, "primary_key": true},
                {"name": "Email", "type": "EmailAddress"}]}
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from target_sfmc.emulator.validation import compile_validator

#: Canonical SFMC field type names.
FIELD_TYPES: tuple[str, ...] = (
    "Text",
    "Number",
    "Decimal",
    "Boolean",
    "Date",
    "EmailAddress",
    "Phone",
    "Locale",
)
_TYPE_BY_FOLDED = {name.casefold(): name for name in FIELD_TYPES}
_TYPE_BY_FOLDED["email"] = "EmailAddress"

DEFAULT_TEXT_LENGTH = 4000
EMAIL_MAX_LENGTH = 254
PHONE_MAX_LENGTH = 50
LOCALE_MAX_LENGTH = 5
DEFAULT_DECIMAL_PRECISION = 18
DEFAULT_DECIMAL_SCALE = 2
MAX_DECIMAL_PRECISION = 38

_DE_NAMESPACE = uuid.UUID("6f1c3d52-3a8e-4c55-9d7e-2b1a0c5e9f10")


class DefinitionError(ValueError):
    """A Data Extension definition or definition file is invalid."""


@dataclass(frozen=True)
class Field:
    """One Data Extension column.

    Attributes:
        name: Column name in its defined spelling.
        type: Canonical SFMC type name (one of `FIELD_TYPES`).
        length: Maximum length for text-like types, None for the others.
        precision: Total digits for Decimal, None otherwise.
        scale: Digits after the decimal point for Decimal, None otherwise.
        primary_key: Whether the column is part of the primary key.
        nullable: Whether the column accepts null (primary keys never do).
        default_value: Value a new row gets when it does not provide the column.
    """

    name: str
    type: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    primary_key: bool = False
    nullable: bool = True
    default_value: Any = None

    def to_dict(self) -> dict[str, Any]:
        """Return the field in the definition-file format.

        Returns:
            A JSON-serialisable dict that `parse_field` reads back unchanged.
        """
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.length is not None:
            out["length"] = self.length
        if self.precision is not None:
            out["precision"] = self.precision
            out["scale"] = self.scale
        out["primary_key"] = self.primary_key
        out["nullable"] = self.nullable
        if self.default_value is not None:
            out["default_value"] = self.default_value
        return out


@dataclass
class DataExtension:
    """A Data Extension definition with case-insensitive column lookup.

    Attributes:
        key: External key (as defined).
        fields: Columns in their defined order.
        name: Display name (defaults to the key).
        id: Stable UUID of the DE (derived from the key).
        description: Free text.
        category_id: Folder (category) id; None for the root Data Extensions folder.
        is_sendable: Whether the DE is sendable.
        sendable_field: The sendable DE column (``sendableCustomObjectField``).
        sendable_subscriber_field: The subscriber field it relates to
            (``sendableSubscriberField``, for example ``Subscriber Key``).
    """

    key: str
    fields: list[Field]
    name: str = ""
    id: str = ""
    description: str = ""
    category_id: int | None = None
    is_sendable: bool = False
    sendable_field: str | None = None
    sendable_subscriber_field: str | None = None
    _by_folded: dict[str, Field] = field(default_factory=dict, repr=False)
    _memo: dict[str, Field | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        """Fill derived attributes and build the lookup tables."""
        if not self.name:
            self.name = self.key
        if not self.id:
            self.id = data_extension_id(self.key)
        self._by_folded = {f.name.casefold(): f for f in self.fields}

    @property
    def primary_keys(self) -> list[Field]:
        """Primary-key columns in defined order."""
        return [f for f in self.fields if f.primary_key]

    def column(self, name: str) -> Field | None:
        """Resolve a column name case-insensitively.

        Args:
            name: Column name as sent by a client.

        Returns:
            The matching field, or None for an unknown column.
        """
        try:
            return self._memo[name]
        except KeyError:
            found = self._by_folded.get(name.casefold())
            if len(self._memo) < 10_000:  # noqa: PLR2004 - bound the memo for hostile clients
                self._memo[name] = found
            return found

    def to_dict(self) -> dict[str, Any]:
        """Return the definition in the definition-file format.

        Returns:
            A JSON-serialisable dict accepted by `parse_data_extension`.
        """
        out: dict[str, Any] = {"key": self.key, "name": self.name, "id": self.id}
        if self.description:
            out["description"] = self.description
        if self.category_id is not None:
            out["category_id"] = self.category_id
        if self.is_sendable:
            out["is_sendable"] = True
            out["sendable_field"] = self.sendable_field
            out["sendable_subscriber_field"] = self.sendable_subscriber_field
        out["fields"] = [f.to_dict() for f in self.fields]
        return out


def data_extension_id(key: str) -> str:
    """Return the stable DE id (a UUID string) for an external key.

    Args:
        key: External key of the DE.

    Returns:
        A UUID derived from the case-folded key.
    """
    return str(uuid.uuid5(_DE_NAMESPACE, key.casefold()))


def _positive_int(raw: Any, what: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise DefinitionError(f"{what} must be a positive integer, got {raw!r}.")
    return raw


_DEFAULT_LENGTHS = {
    "Text": DEFAULT_TEXT_LENGTH,
    "EmailAddress": EMAIL_MAX_LENGTH,
    "Phone": PHONE_MAX_LENGTH,
    "Locale": LOCALE_MAX_LENGTH,
}


def _decimal_size(raw: dict[str, Any], name: str) -> tuple[int, int]:
    precision = _positive_int(
        raw.get("precision", raw.get("length", DEFAULT_DECIMAL_PRECISION)),
        f"Field {name!r} precision",
    )
    scale = raw.get("scale", DEFAULT_DECIMAL_SCALE)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 0:
        raise DefinitionError(f"Field {name!r} scale must be a non-negative integer.")
    if precision > MAX_DECIMAL_PRECISION or scale > precision:
        raise DefinitionError(
            f"Field {name!r} needs precision <= {MAX_DECIMAL_PRECISION} and scale <= precision."
        )
    return precision, scale


def parse_field(raw: Any) -> Field:
    """Parse one field definition.

    Args:
        raw: A dict with `name`, `type` and optional `length`, `precision`, `scale`,
            `primary_key` and `nullable`.

    Returns:
        The parsed field with defaults applied.

    Raises:
        DefinitionError: If the definition is malformed.
    """
    if not isinstance(raw, dict):
        raise DefinitionError(f"A field definition must be an object, got {raw!r}.")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DefinitionError(f"A field needs a non-empty string 'name', got {name!r}.")
    raw_type = raw.get("type", "Text")
    ftype = _TYPE_BY_FOLDED.get(raw_type.casefold()) if isinstance(raw_type, str) else None
    if ftype is None:
        expected = ", ".join(FIELD_TYPES)
        raise DefinitionError(f"Field {name!r} has unknown type {raw_type!r}; expected {expected}.")
    primary_key = bool(raw.get("primary_key", raw.get("isPrimaryKey", False)))
    nullable = False if primary_key else bool(raw.get("nullable", raw.get("isNullable", True)))
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    if ftype in _DEFAULT_LENGTHS:
        length = _positive_int(raw.get("length", _DEFAULT_LENGTHS[ftype]), f"Field {name!r} length")
    elif ftype == "Decimal":
        precision, scale = _decimal_size(raw, name)
    parsed = Field(
        name=name,
        type=ftype,
        length=length,
        precision=precision,
        scale=scale,
        primary_key=primary_key,
        nullable=nullable,
    )
    default = raw.get("default_value", raw.get("defaultValue"))
    if default is None:
        return parsed
    if isinstance(default, dict | list) or compile_validator(parsed)(default) is not None:
        raise DefinitionError(f"Field {name!r} has a default value its type refuses: {default!r}.")
    return replace(parsed, default_value=default)


def parse_data_extension(raw: Any) -> DataExtension:
    """Parse one Data Extension definition.

    Args:
        raw: A dict with `key` (or `customerKey`/`externalKey`), optional `name`, and `fields`.

    Returns:
        The parsed definition.

    Raises:
        DefinitionError: If the definition is malformed.
    """
    if not isinstance(raw, dict):
        raise DefinitionError(f"A data extension definition must be an object, got {raw!r}.")
    key = raw.get("key", raw.get("customerKey", raw.get("externalKey")))
    if not isinstance(key, str) or not key.strip():
        raise DefinitionError("A data extension needs a non-empty string 'key'.")
    raw_fields = raw.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise DefinitionError(f"Data extension {key!r} needs a non-empty 'fields' list.")
    fields = [parse_field(f) for f in raw_fields]
    seen: set[str] = set()
    for f in fields:
        folded = f.name.casefold()
        if folded in seen:
            raise DefinitionError(f"Data extension {key!r} defines column {f.name!r} twice.")
        seen.add(folded)
    return DataExtension(key=key, fields=fields, **_metadata(raw, key, seen))


def _metadata(raw: dict[str, Any], key: str, columns: set[str]) -> dict[str, Any]:
    """Read a DE's optional settings (name, description, folder, sendability)."""
    name = raw.get("name")
    description = raw.get("description")
    category_id = raw.get("category_id")
    if category_id is not None and (
        isinstance(category_id, bool) or not isinstance(category_id, int)
    ):
        raise DefinitionError(f"Data extension {key!r} category_id must be an integer.")
    out: dict[str, Any] = {
        "name": name if isinstance(name, str) else "",
        "description": description if isinstance(description, str) else "",
        "category_id": category_id,
    }
    if not raw.get("is_sendable"):
        return out
    sendable_field = raw.get("sendable_field")
    if not isinstance(sendable_field, str) or sendable_field.casefold() not in columns:
        raise DefinitionError(
            f"Data extension {key!r} is sendable, so 'sendable_field' must name one of its fields."
        )
    subscriber_field = raw.get("sendable_subscriber_field")
    out["is_sendable"] = True
    out["sendable_field"] = sendable_field
    out["sendable_subscriber_field"] = (
        subscriber_field if isinstance(subscriber_field, str) else None
    )
    return out


@dataclass(frozen=True)
class EventDefinition:
    """A journey entry event definition.

    Attributes:
        key: Event definition key.
        data_extension: External key of the entry Data Extension the event's ``Data`` is
            checked against; None for a definition bound to none.
    """

    key: str
    data_extension: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the definition in the definition-file object form.

        Returns:
            ``{"key", "data_extension"}``.
        """
        return {"key": self.key, "data_extension": self.data_extension}


def parse_event_definition(raw: Any) -> EventDefinition:
    """Parse one event definition: a key, or ``{"key": …, "data_extension": …}``.

    Args:
        raw: The entry from ``event_definitions``.

    Returns:
        The parsed definition.

    Raises:
        DefinitionError: If the entry is malformed.
    """
    if isinstance(raw, str) and raw.strip():
        return EventDefinition(key=raw)
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"key", "data_extension"})
        if unknown:
            raise DefinitionError(
                f"An event definition has unknown setting(s) {', '.join(unknown)}; "
                "known: key, data_extension."
            )
        key = raw.get("key")
        data_extension = raw.get("data_extension")
        if isinstance(key, str) and key.strip():
            if data_extension is None:
                return EventDefinition(key=key)
            if isinstance(data_extension, str) and data_extension.strip():
                return EventDefinition(key=key, data_extension=data_extension)
    raise DefinitionError(
        "An event definition must be a key or "
        f'{{"key": <key>, "data_extension": <DE key>}}, got {raw!r}.'
    )


@dataclass(frozen=True)
class Journey:
    """A journey and the entry event definition that brings contacts into it.

    Attributes:
        key: The journey's key (``DefinitionKey`` in exit requests).
        event_definition_key: Key of its entry event definition.
    """

    key: str
    event_definition_key: str

    def to_dict(self) -> dict[str, Any]:
        """Return the journey in the definition-file form.

        Returns:
            ``{"key", "event_definition_key"}``.
        """
        return {"key": self.key, "event_definition_key": self.event_definition_key}


def parse_journey(raw: Any) -> Journey:
    """Parse one journey: ``{"key": …, "event_definition_key": …}``.

    Args:
        raw: The entry from ``journeys``.

    Returns:
        The journey.

    Raises:
        DefinitionError: If the entry is malformed.
    """
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"key", "event_definition_key"})
        if unknown:
            raise DefinitionError(
                f"A journey has unknown setting(s) {', '.join(unknown)}; "
                "known: key, event_definition_key."
            )
        key, definition = raw.get("key"), raw.get("event_definition_key")
        if isinstance(key, str) and key.strip() and isinstance(definition, str) and definition:
            return Journey(key=key, event_definition_key=definition)
    raise DefinitionError(
        f'A journey must be {{"key": <key>, "event_definition_key": <key>}}, got {raw!r}.'
    )


@dataclass
class DefinitionFile:
    """Contents of an emulator definition file.

    Attributes:
        data_extensions: Raw DE definitions (validated).
        event_definitions: Journey entry event definitions: keys, or
            ``{"key", "data_extension"}`` objects (validated).
        inactive_contacts: Contact keys that journeys treat as inactive.
        journeys: ``{"key", "event_definition_key"}`` objects (their shape validated).
    """

    data_extensions: list[dict[str, Any]]
    event_definitions: list[str | dict[str, Any]]
    inactive_contacts: list[str]
    journeys: list[dict[str, Any]] = field(default_factory=list)


def load_definition_file(path: str | Path) -> DefinitionFile:
    """Read and validate a definition file.

    Args:
        path: JSON file with `data_extensions`, optional `event_definitions`, `journeys` and
            `inactive_contacts`.

    Returns:
        The file's contents.

    Raises:
        DefinitionError: If the file is not valid JSON or has the wrong shape.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DefinitionError(f"Cannot read definition file {str(path)!r}: {exc}") from exc
    if not isinstance(doc, dict):
        raise DefinitionError(f"Definition file {str(path)!r} must hold a JSON object.")
    des = doc.get("data_extensions", [])
    events = doc.get("event_definitions", [])
    inactive = doc.get("inactive_contacts", [])
    if not isinstance(des, list):
        raise DefinitionError("'data_extensions' must be a list.")
    if not isinstance(events, list):
        raise DefinitionError("'event_definitions' must be a list.")
    if not isinstance(inactive, list) or not all(isinstance(c, str) for c in inactive):
        raise DefinitionError("'inactive_contacts' must be a list of strings.")
    for de in des:
        parse_data_extension(de)
    for event in events:
        parse_event_definition(event)
    journeys = doc.get("journeys", [])
    if not isinstance(journeys, list):
        raise DefinitionError("'journeys' must be a list.")
    for journey in journeys:
        parse_journey(journey)
    return DefinitionFile(
        data_extensions=des,
        event_definitions=events,
        inactive_contacts=inactive,
        journeys=journeys,
    )
