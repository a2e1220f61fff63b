"""The REST Data Extension API (``/data/v1/customobjects``) for "Data Extensions as code".

Search, read, fields, create and add fields.
A DE created here is registered exactly like one from the definition file, so rows, async jobs,
reads and inspection treat both alike.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from target_sfmc.emulator.folders import ROOT_DATA_EXTENSION_FOLDER_ID, data_extension_folder
from target_sfmc.emulator.schema import FIELD_TYPES, DefinitionError
from target_sfmc.emulator.wire import (
    ApiRequest,
    ApiResponse,
    error,
    invalid_format,
    page_params,
    parse_json,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from target_sfmc.emulator.faults import FaultInjector
    from target_sfmc.emulator.rows import CompiledDataExtension
    from target_sfmc.emulator.schema import DataExtension, Field
    from target_sfmc.emulator.store import Store

MAX_TEXT_LENGTH = 4000
DEFAULT_TEXT_LENGTH = 50
MAX_DECIMAL_PRECISION = 29
DEFAULT_SEARCH_PAGE_SIZE = 50
_TYPE_NAMES = {name.casefold(): name for name in FIELD_TYPES}
_WILDCARDS = frozenset({"", "*", "%"})
FIELD_TYPE_INVALID = "fieldType is invalid"
TEXT_KEY_NEEDS_LENGTH = "A text field with no length specified cannot be used as a primary key"
CATEGORY_INVALID = "A valid categoryId must be provided"
SEARCH_REQUIRED = "$search is a required parameter"


class RefusedError(Exception):
    """A request SFMC refuses, with its answer.

    Args:
        status: HTTP status.
        message: SFMC's message.
        errorcode: SFMC's error code.
    """

    def __init__(self, status: int, message: str, errorcode: int) -> None:
        """Remember the answer."""
        super().__init__(message)
        self.response = error(status, message, errorcode)


def _invalid(message: str) -> RefusedError:
    return RefusedError(400, message, 10005)


def _flag(raw: Mapping[str, Any], name: str, default: bool) -> bool:  # noqa: FBT001
    value = raw.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(f"{name} must be true or false.")
    return value


def _length(raw: Mapping[str, Any], name: str, *, default: int | None, upper: int) -> int | None:
    value = raw.get("length", default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise _invalid(f"Field '{name}': length must be between 1 and {upper}.")
    return value


def _size(raw: Mapping[str, Any], name: str, ftype: str, *, primary_key: bool) -> dict[str, Any]:
    """Read the length (Text, EmailAddress) or precision and scale (Decimal) of a REST field."""
    if ftype == "Text":
        default = None if primary_key else DEFAULT_TEXT_LENGTH
        length = _length(raw, name, default=default, upper=MAX_TEXT_LENGTH)
        if length is None:
            raise _invalid(TEXT_KEY_NEEDS_LENGTH)
        return {"length": length}
    if ftype == "EmailAddress":
        return {"length": _length(raw, name, default=254, upper=254)}
    if ftype != "Decimal":
        return {}
    precision = _length(raw, name, default=18, upper=MAX_DECIMAL_PRECISION) or 18
    scale = raw.get("scale", 0)
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= precision:
        raise _invalid(f"Field '{name}': scale must be between 0 and its length.")
    return {"precision": precision, "scale": scale}


def rest_field(raw: Any) -> dict[str, Any]:
    """Turn a REST field into the definition-file form, with SFMC's rules.

    A REST field has ``name``, ``type``, ``length``, ``scale``, ``isPrimaryKey``,
    ``isNullable``, ``ordinal`` and ``defaultValue``.

    Args:
        raw: One entry of a request's ``fields``.

    Returns:
        The field in the definition-file form.

    Raises:
        RefusedError: When SFMC would refuse the field.
    """
    if not isinstance(raw, dict):
        raise RefusedError(400, "Invalid Message Format", 10004)
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RefusedError(400, "Field name is required.", 10002)
    type_name = raw.get("type", raw.get("fieldType"))
    ftype = _TYPE_NAMES.get(type_name.casefold()) if isinstance(type_name, str) else None
    if ftype is None:
        raise _invalid(FIELD_TYPE_INVALID)
    primary_key = _flag(raw, "isPrimaryKey", default=False)
    nullable = _flag(raw, "isNullable", default=not primary_key)
    if primary_key and nullable:
        raise _invalid(f"Field '{name}': a primary key field cannot be nullable.")
    out: dict[str, Any] = {
        "name": name,
        "type": ftype,
        "primary_key": primary_key,
        "nullable": nullable,
    }
    out.update(_size(raw, name, ftype, primary_key=primary_key))
    default = raw.get("defaultValue")
    if default is not None and default != "":
        out["default_value"] = default
    return out


def _rest_fields(raw: Any, taken: set[str]) -> list[dict[str, Any]]:
    """Convert a request's ``fields`` (sorted by ``ordinal`` when given); names must be new."""
    if not isinstance(raw, list) or not raw:
        raise RefusedError(400, "At least one field is required.", 10002)
    entries = sorted(
        enumerate(raw),
        key=lambda pair: (
            pair[1].get("ordinal", pair[0]) if isinstance(pair[1], dict) else pair[0],
            pair[0],
        ),
    )
    fields: list[dict[str, Any]] = []
    for _position, entry in entries:
        converted = rest_field(entry)
        folded = converted["name"].casefold()
        if folded in taken:
            raise RefusedError(409, f"Field '{converted['name']}' already exists.", 30004)
        taken.add(folded)
        fields.append(converted)
    return fields


def field_resource(de: DataExtension, fld: Field, ordinal: int) -> dict[str, Any]:
    """Return a DE column as the REST Data Extension API shows it.

    Args:
        de: The DE.
        fld: The column.
        ordinal: Its position (from 0).

    Returns:
        ``{"id", "name", "type", "length"?, "scale"?, "defaultValue"?, "isPrimaryKey",
        "isNullable", "ordinal", "isHidden", "isReadOnly", "isTemplateField", "isInheritable",
        "isOverridable", "mustOverride", "description"}``; ``length`` for Text, EmailAddress,
        Phone, Locale and Decimal (its precision), ``scale`` for Decimal.
    """
    out: dict[str, Any] = {
        "id": str(uuid.uuid5(uuid.UUID(de.id), fld.name.casefold())),
        "name": fld.name,
        "type": fld.type,
    }
    if fld.length is not None:
        out["length"] = fld.length
    if fld.precision is not None:
        out["length"] = fld.precision
        out["scale"] = fld.scale
    if fld.default_value is not None:
        out["defaultValue"] = fld.default_value
    out.update(
        {
            "isPrimaryKey": fld.primary_key,
            "isNullable": fld.nullable,
            "ordinal": ordinal,
            "isHidden": False,
            "isReadOnly": False,
            "isTemplateField": False,
            "isInheritable": False,
            "isOverridable": True,
            "mustOverride": False,
            "description": "",
        }
    )
    return out


def data_extension_resource(de: DataExtension, row_count: int, *, fields: bool) -> dict[str, Any]:
    """Return a DE as the REST Data Extension API shows it.

    Args:
        de: The DE.
        row_count: Rows it holds.
        fields: Whether to include its ``fields`` (a read does; a search does not).

    Returns:
        ``{"id", "key", "name", "description", "categoryId", "isSendable", "isTestable",
        "sendableCustomObjectField"?, "sendableSubscriberField"?, "rowCount", "fieldCount",
        "fields"?}``.
    """
    out: dict[str, Any] = {
        "id": de.id,
        "key": de.key,
        "name": de.name,
        "description": de.description,
        "categoryId": ROOT_DATA_EXTENSION_FOLDER_ID if de.category_id is None else de.category_id,
        "isSendable": de.is_sendable,
        "isTestable": False,
    }
    if de.is_sendable:
        out["sendableCustomObjectField"] = de.sendable_field
        out["sendableSubscriberField"] = de.sendable_subscriber_field
    out["rowCount"] = row_count
    out["fieldCount"] = len(de.fields)
    if fields:
        out["fields"] = [field_resource(de, f, i) for i, f in enumerate(de.fields)]
    return out


def _sendability(body: Mapping[str, Any], field_names: set[str]) -> dict[str, Any]:
    """Read ``isSendable`` and its two fields from a create request."""
    if not _flag(body, "isSendable", default=False):
        return {}
    custom_field = body.get("sendableCustomObjectField")
    subscriber_field = body.get("sendableSubscriberField")
    if subscriber_field is not None and not isinstance(subscriber_field, str):
        raise RefusedError(400, "Invalid Message Format", 10004)  # only a string deserializes
    if not isinstance(custom_field, str) or custom_field.casefold() not in field_names:
        raise _invalid("sendableCustomObjectField must name a field of the data extension.")
    return {
        "is_sendable": True,
        "sendable_field": custom_field,
        "sendable_subscriber_field": subscriber_field or "Subscriber Key",
    }


class CustomObjectsApi:
    """Handlers of the REST Data Extension API, mixed into `SfmcApi`."""

    store: Store
    faults: FaultInjector
    _des_by_id: dict[str, CompiledDataExtension]

    if TYPE_CHECKING:

        def data_extension(self, key: str) -> CompiledDataExtension | None:
            """Find a DE by external key."""

        def data_extensions(self) -> list[DataExtension]:
            """Return every DE definition."""

        def add_data_extension(self, raw: Mapping[str, Any]) -> DataExtension:
            """Create or redefine a DE."""

    def _by_object_id(self, raw_id: str) -> CompiledDataExtension:
        """Find a DE by its ObjectID, refusing a malformed or unknown one like SFMC."""
        try:
            object_id = str(uuid.UUID(raw_id))
        except ValueError:
            raise RefusedError(400, "Id is invalid", 10001) from None
        cde = self._des_by_id.get(object_id.casefold())
        if cde is None:
            raise RefusedError(404, f"Data extension with id {raw_id} was not found.", 30003)
        return cde

    def customobjects_search(self, req: ApiRequest) -> ApiResponse:
        """``GET /data/v1/customobjects?$search=TEXT[&$page=&$pageSize=]``.

        ``$search`` matches part of a DE's name or, unless ``search_matches_name_only``, of its
        external key (case-insensitive); it is required and may not be a wildcard.

        Args:
            req: The request.

        Returns:
            200 ``{"count", "page", "pageSize", "items": [...]}`` (items without fields), or
            the 400 for a missing ``$search``.
        """
        text = req.query.get("$search", "").strip()
        if text in _WILDCARDS:
            return error(400, SEARCH_REQUIRED, 10005)
        paging = page_params(req.query, DEFAULT_SEARCH_PAGE_SIZE, ("$",))
        if isinstance(paging, ApiResponse):
            return paging
        page, size = paging
        folded = text.casefold()
        name_only = self.faults.config.search_matches_name_only
        found = sorted(
            (
                de
                for de in self.data_extensions()
                if folded in de.name.casefold() or (not name_only and folded in de.key.casefold())
            ),
            key=lambda de: (de.name.casefold(), de.key.casefold()),
        )
        start = (page - 1) * size
        items = [
            data_extension_resource(de, self.store.count_rows(de.id), fields=False)
            for de in found[start : start + size]
        ]
        return ApiResponse(
            200, {"count": len(found), "page": page, "pageSize": size, "items": items}
        )

    def customobject_get(self, req: ApiRequest) -> ApiResponse:
        """``GET /data/v1/customobjects/{id}`` — a DE with its fields.

        Args:
            req: The request (``{id}`` is the DE's ObjectID; a key is "Id is invalid").

        Returns:
            200 with the DE (`data_extension_resource`), or a 400/404.
        """
        try:
            de = self._by_object_id(req.params["id"]).de
        except RefusedError as exc:
            return exc.response
        return ApiResponse(
            200, data_extension_resource(de, self.store.count_rows(de.id), fields=True)
        )

    def customobject_fields(self, req: ApiRequest) -> ApiResponse:
        """``GET /data/v1/customobjects/{id}/fields`` — a DE's columns.

        Args:
            req: The request (``{id}`` is the DE's ObjectID; a key is "Id is invalid").

        Returns:
            200 ``{"id", "fields": [...]}`` (`field_resource`), or a 400/404.
        """
        try:
            de = self._by_object_id(req.params["id"]).de
        except RefusedError as exc:
            return exc.response
        return ApiResponse(
            200,
            {"id": de.id, "fields": [field_resource(de, f, i) for i, f in enumerate(de.fields)]},
        )

    def customobjects_create(self, req: ApiRequest) -> ApiResponse:
        """``POST /data/v1/customobjects`` — create a DE.

        Body: ``{"name", "key"?, "description"?, "categoryId"?, "isSendable"?,
        "sendableCustomObjectField"?, "sendableSubscriberField"?, "fields": [...]}``. Refused
        like SFMC: a key or name already used (409, errorcode 30004), an unknown field type
        ("fieldType is invalid"), Text length outside 1-4000, a nullable primary key, a Text
        primary key without a length, an unknown folder.

        Args:
            req: The request.

        Returns:
            201 with the created DE (`data_extension_resource`), or the refusal.
        """
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(body, dict):
            return invalid_format()
        try:
            definition = self._definition_from(body)
            with self.store.lock:
                self._check_unused(definition["key"], definition["name"])
                de = self.add_data_extension(definition)
        except RefusedError as exc:
            return exc.response
        except DefinitionError as exc:
            return error(400, str(exc), 10005)
        return ApiResponse(201, data_extension_resource(de, 0, fields=True))

    def _definition_from(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Build a definition-file entry from a create request, with SFMC's checks."""
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RefusedError(400, "Name is required.", 10002)
        key = body.get("key", body.get("customerKey"))
        if key is None:
            key = str(uuid.uuid4()).upper()
        if not isinstance(key, str) or not key.strip():
            raise _invalid("key must be a non-empty string.")
        description = body.get("description", "")
        if not isinstance(description, str):
            raise _invalid("description must be a string.")
        category_id = body.get("categoryId")
        if category_id is not None and (
            isinstance(category_id, bool)
            or not isinstance(category_id, int)
            or data_extension_folder(category_id) is None
        ):
            raise _invalid(CATEGORY_INVALID)
        taken: set[str] = set()
        fields = _rest_fields(body.get("fields"), taken)
        definition: dict[str, Any] = {
            "key": key,
            "name": name,
            "description": description,
            "category_id": category_id,
            "fields": fields,
        }
        definition.update(_sendability(body, taken))
        return definition

    def _check_unused(self, key: str, name: str) -> None:
        if self.data_extension(key) is not None:
            raise RefusedError(
                409, f"A data extension with the external key '{key}' already exists.", 30004
            )
        if any(de.name.casefold() == name.casefold() for de in self.data_extensions()):
            raise RefusedError(409, f"A data extension named '{name}' already exists.", 30004)

    def customobject_add_fields(self, req: ApiRequest) -> ApiResponse:
        """``POST /data/v1/customobjectsasync/{id}/fields`` — add columns to a DE.

        Body ``{"fields": [...]}`` in the create request's field form. The emulator applies the
        change before answering 202 with a request id. Refused like SFMC: a name the DE already
        has, a primary key or a non-nullable column without ``defaultValue`` on a DE holding
        rows, and the create request's field rules. Existing rows get a new column's
        ``defaultValue``.

        Args:
            req: The request (``{id}`` is the DE's ObjectID).

        Returns:
            202 ``{"requestId", "resultMessages": []}``, or the refusal.
        """
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(body, dict):
            return invalid_format()
        try:
            with self.store.lock:
                self._add_fields(self._by_object_id(req.params["id"]).de, body.get("fields"))
        except RefusedError as exc:
            return exc.response
        except DefinitionError as exc:
            return error(400, str(exc), 10005)
        return ApiResponse(202, {"requestId": str(uuid.uuid4()), "resultMessages": []})

    def _add_fields(self, de: DataExtension, raw_fields: Any) -> None:
        new_fields = _rest_fields(raw_fields, {f.name.casefold() for f in de.fields})
        if self.store.count_rows(de.id):
            for fld in new_fields:
                if fld["primary_key"]:
                    raise _invalid(
                        f"Field '{fld['name']}': a primary key field can only be added to an "
                        "empty data extension."
                    )
                if not fld["nullable"] and "default_value" not in fld:
                    raise _invalid(
                        f"Field '{fld['name']}': a field that does not allow null needs a "
                        "default value when the data extension holds rows."
                    )
        definition = de.to_dict()
        definition["fields"].extend(new_fields)
        self.add_data_extension(definition)
        for fld in new_fields:
            if "default_value" in fld:
                self.store.fill_column(de.id, fld["name"], fld["default_value"])
