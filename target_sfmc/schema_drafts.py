"""Reading a tap's schema: its draft's numeric keywords, and references inside it.

Taps write their exclusive bounds in two dialects: Draft 4 (``exclusiveMaximum: true``
beside ``maximum``) and Draft 6 and later (``exclusiveMaximum`` is the bound itself). A
schema's ``$schema`` says which; without one, both forms are read by their shape.
:func:`normalize_numeric_keywords` turns either into the numeric form. References are
followed only inside the schema: a remote ``$ref`` is never fetched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from fastjsonschema.exceptions import JsonSchemaDefinitionException
from singer_sdk.exceptions import InvalidJSONSchema

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


def declares_draft4(schema: Any) -> bool | None:
    """Which dialect a schema declares for its exclusive bounds.

    Args:
        schema: A stream's schema.

    Returns:
        True for Draft 3/4 (boolean ``exclusiveMaximum``), False for Draft 6 and later
        (numeric), None when the schema has no ``$schema``.
    """
    declared = schema.get("$schema") if isinstance(schema, dict) else None
    if not isinstance(declared, str):
        return None
    return "draft-04" in declared or "draft-03" in declared


# Keywords whose value is one schema, a list of schemas, or a map of name -> schema.
_ONE_SCHEMA = (
    "additionalProperties",
    "additionalItems",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs", "dependentSchemas")


def _subschemas(node: dict[str, Any]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """``(path, subschema)`` of each schema directly inside ``node``."""
    for keyword in (*_ONE_SCHEMA, *_SCHEMA_LISTS, *_SCHEMA_MAPS, "dependencies"):
        value = node.get(keyword)
        if isinstance(value, dict) and keyword in _ONE_SCHEMA:
            yield (keyword,), value
        elif isinstance(value, list) and keyword in _SCHEMA_LISTS:
            yield from (((keyword, str(i)), item) for i, item in enumerate(value))
        elif isinstance(value, dict) and keyword not in _ONE_SCHEMA:
            yield from (((keyword, name), item) for name, item in value.items())


def normalize_numeric_keywords(schema: Any, *, draft4: bool | None = None) -> Any:
    """Rewrite every exclusive bound to the numeric form (Draft 6 and later).

    Draft 4 writes ``{"maximum": 10, "exclusiveMaximum": true}``; Draft 6 and later write
    ``{"exclusiveMaximum": 10}``. A boolean flag is read the Draft 4 way whatever the
    schema declares (as a number it would mean the bound 1 or 0, which no tap intends);
    a number is read the Draft 4 way (a flag) only when the schema declares Draft 4.

    Args:
        schema: A schema (not changed).
        draft4: The dialect, as :func:`declares_draft4` tells it; by default read from
            ``schema`` itself.

    Returns:
        The schema with the same structure and only numeric-form exclusive bounds.
    """
    if draft4 is None:
        draft4 = declares_draft4(schema)
    return _normalize(schema, draft4=bool(draft4))


def _normalize(node: Any, *, draft4: bool) -> Any:
    def numeric_form(result: dict[str, Any]) -> None:
        for bound, flag in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            if flag not in result:
                continue
            value = result[flag]
            if isinstance(value, bool) or draft4:
                del result[flag]
                if value and bound in result:
                    result[flag] = result.pop(bound)

    return _rewrite(node, numeric_form)


def draft4_flags(node: Any) -> Any:
    """The schema as Draft 4's meta-schema expects it: exclusive bounds as booleans."""

    def flags(result: dict[str, Any]) -> None:
        for flag in ("exclusiveMinimum", "exclusiveMaximum"):
            if flag in result and not isinstance(result[flag], bool):
                result[flag] = bool(result[flag])

    return _rewrite(node, flags)


def _rewrite(node: Any, change: Callable[[dict[str, Any]], None]) -> Any:
    """A copy of a schema with ``change`` applied to every (sub)schema, input untouched."""
    if not isinstance(node, dict):
        return node
    result = dict(node)
    change(result)
    for keyword in _ONE_SCHEMA:
        if isinstance(result.get(keyword), dict):
            result[keyword] = _rewrite(result[keyword], change)
    for keyword in _SCHEMA_LISTS:
        if isinstance(result.get(keyword), list):
            result[keyword] = [_rewrite(item, change) for item in result[keyword]]
    for keyword in (*_SCHEMA_MAPS, "dependencies"):
        if isinstance(result.get(keyword), dict):
            result[keyword] = {
                name: _rewrite(item, change) if isinstance(item, dict) else item
                for name, item in result[keyword].items()
            }
    return result


class UnusableSchemaError(InvalidJSONSchema):
    """A schema the target cannot use; the message names the property, never a value."""


def _pointer_target(schema: Any, pointer: str) -> bool:
    """Tell whether a JSON pointer (``/definitions/x``) names something in ``schema``."""
    node = schema
    for raw in pointer.split("/")[1:]:
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def unresolvable_reference(schema: Any) -> str | None:
    """Find the first ``$ref`` the target cannot resolve, and say where it is.

    Only references inside the schema itself (``#/...``) are resolved: the target never
    fetches schemas from the network or the file system.

    Args:
        schema: A stream's schema.

    Returns:
        A sentence naming the property and the reference, or None when every reference
        resolves.
    """
    pending: list[tuple[tuple[str, ...], Any]] = [((), schema)]
    while pending:
        path, node = pending.pop()
        if not isinstance(node, dict):
            continue
        ref = node.get("$ref")
        if isinstance(ref, str):
            local = ref.startswith("#")
            pointer = ref[1:]
            if not local or (
                pointer and pointer.startswith("/") and not _pointer_target(schema, pointer)
            ):
                where = _describe(path)
                kind = "is not inside the schema" if not local else "points at nothing"
                return f"{where} has a $ref ('{ref}') that {kind}; it cannot be resolved"
        pending.extend((path + sub_path, sub) for sub_path, sub in _subschemas(node))
    return None


def _describe(path: tuple[str, ...]) -> str:
    """Name the property a schema path belongs to: ``properties/a/items`` -> ``property 'a'``."""
    names: list[str] = []
    index = 0
    while index < len(path):
        keyword = path[index]
        if keyword in ("properties", "patternProperties") and index + 1 < len(path):
            names.append(path[index + 1])
            index += 2
            continue
        if keyword in ("definitions", "$defs") and index + 1 < len(path) and not names:
            return f"definition '{path[index + 1]}'"
        index += 1
    return f"property '{'.'.join(names)}'" if names else "the schema"


class NoRemoteSchemas(dict[str, Any]):  # scheme -> handler, for every scheme
    """fastjsonschema handlers: every scheme has one, and it refuses (no network, no files)."""

    def __contains__(self, scheme: object) -> bool:
        """Every scheme has a handler.

        Returns:
            True.
        """
        return True

    def __missing__(self, scheme: str) -> Callable[[str], Any]:
        """The handler of a scheme: refuse.

        Returns:
            A handler that raises for any URI.
        """

        def refuse(uri: str) -> Any:
            raise JsonSchemaDefinitionException(f"remote $ref not fetched: {uri}")

        return refuse
