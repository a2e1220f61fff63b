"""Record validation with the SDK's semantics, fast for the flat schemas taps usually send.

A precomputed type table accepts records whose top-level values have exactly the types the
schema allows; anything else (and every schema with richer keywords) goes to the compiled
fastjsonschema validator, which decides and words the error. So the fast path can only say
"valid" where the full validator would too.
"""

from __future__ import annotations

import decimal
from typing import Any

import fastjsonschema
import jsonschema
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

# Keywords that never reject a value (formats are not checked, as in the SDK).
_ANNOTATIONS = frozenset(
    {
        "type",
        "format",
        "description",
        "title",
        "default",
        "examples",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
    }
)
_EXACT_TYPES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float, decimal.Decimal}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
_TOP_LEVEL_KEYS = frozenset(
    {"type", "properties", "required", "additionalProperties", "$schema", "description", "title"}
)


def allowed_types(definition: Any) -> frozenset[type] | None:
    """Python types a property accepts, or None when its schema needs the full validator.

    Args:
        definition: A property's schema.

    Returns:
        The accepted types (as the SDK's decoder delivers JSON values), or None.
    """
    if not isinstance(definition, dict) or not set(definition) <= _ANNOTATIONS:
        return None
    kinds = definition.get("type")
    names = [kinds] if isinstance(kinds, str) else kinds
    if not isinstance(names, list) or not names:
        return None
    allowed: frozenset[type] = frozenset()
    for name in names:
        if name not in _EXACT_TYPES:
            return None
        allowed |= _EXACT_TYPES[name]
    return allowed


def type_table(
    schema: dict[str, Any],
) -> tuple[dict[str, frozenset[type] | None], tuple[str, ...]] | None:
    """Per-property accepted types of a flat schema.

    Args:
        schema: A stream's schema.

    Returns:
        ``(property -> accepted types or None, required properties)``, or None when the
        schema is not a flat object schema.
    """
    if not set(schema) <= _TOP_LEVEL_KEYS:
        return None
    if schema.get("type", "object") not in ("object", ["object"]):
        return None
    if schema.get("additionalProperties", True) not in (True, {}):
        return None
    properties = schema.get("properties")
    required = schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    return {name: allowed_types(d) for name, d in properties.items()}, tuple(required)


class FastJSONSchemaValidator(BaseJSONSchemaValidator):
    """JSON Schema validation with the SDK's semantics (no format checks, no defaults)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        """Compile the stream's schema once.

        Args:
            schema: The stream's JSON Schema.
        """
        super().__init__(schema)
        # fastjsonschema knows drafts 4-7 only; the keywords taps use are the same.
        compilable = {k: v for k, v in schema.items() if k != "$schema"}
        self._full = fastjsonschema.compile(compilable, use_formats=False, use_default=False)
        table = type_table(schema)
        self._types, self._required = table if table is not None else ({}, ())
        self._flat = table is not None

    def _accepts(self, record: dict[str, Any]) -> bool:
        types = self._types
        for name, value in record.items():
            allowed = types.get(name, _UNLISTED)
            if allowed is _UNLISTED:
                continue  # additional properties are allowed in a flat schema
            if allowed is None or type(value) not in allowed:
                return False
        return all(name in record for name in self._required)

    def validate(self, record: dict[str, Any]) -> None:
        """Validate one record; the error names the field, never its value.

        Args:
            record: The record.

        Raises:
            InvalidRecord: When the record does not match the schema.
        """
        if self._flat and type(record) is dict and self._accepts(record):
            return
        try:
            self._full(record)
        except fastjsonschema.JsonSchemaValueException as exc:
            field_name = str(exc.name).removeprefix("data").lstrip(".") or "the record"
            rule = f"the '{exc.rule}' rule" if exc.rule else "the rules"
            raise InvalidRecord(
                f"'{field_name}' does not satisfy {rule} of its schema", {}
            ) from None


_UNLISTED: Any = object()


class QuietJSONSchemaValidator(JSONSchemaValidator):
    """The SDK's jsonschema validator, for schemas fastjsonschema cannot compile, minus values.

    The SDK words its errors with jsonschema's messages, which quote the offending value.
    """

    def validate(self, record: dict[str, Any]) -> None:
        """Validate one record; the error names the field and the rule, never the value.

        Args:
            record: The record.

        Raises:
            InvalidRecord: When the record does not match the schema.
        """
        try:
            self.validator.validate(record)
        except jsonschema.ValidationError as exc:
            field_name = ".".join(str(part) for part in exc.absolute_path) or "the record"
            message = f"'{field_name}' does not satisfy the '{exc.validator}' rule of its schema"
            raise InvalidRecord(message, {}) from None
