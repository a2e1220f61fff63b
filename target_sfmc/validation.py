"""Record validation with the SDK's semantics, fast for the flat schemas taps usually send.

A precomputed type table accepts records whose top-level values have exactly the types the
schema allows; anything else (and every schema with richer keywords) goes to the compiled
fastjsonschema validator, which decides and words the error. So the fast path can only say
"valid" where the full validator would too.

Numbers arrive as ``decimal.Decimal`` (the SDK decodes JSON numbers without float rounding),
and taps write their numeric keywords in two dialects: Draft 4 (``exclusiveMaximum: true``
beside ``maximum``) and Draft 6 and later (``exclusiveMaximum`` is the bound itself). Both
validators therefore read a schema's numeric keywords through :func:`normalize_numeric_keywords`
and check them with exact decimal arithmetic (:func:`is_multiple_of` and the bound checks).
"""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

import fastjsonschema
import jsonschema
from fastjsonschema.draft2019 import CodeGeneratorDraft2019
from fastjsonschema.exceptions import JsonSchemaDefinitionException
from fastjsonschema.ref_resolver import RefResolver
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

from target_sfmc.schema_drafts import (
    NoRemoteSchemas,
    UnusableSchemaError,
    declares_draft4,
    draft4_flags,
    normalize_numeric_keywords,
    unresolvable_reference,
)
from target_sfmc.schema_numbers import NUMERIC_CHECKS, schema_number

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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
    if isinstance(definition, dict) and ("anyOf" in definition or "oneOf" in definition):
        return _union_types(definition)
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


def _union_types(definition: dict[str, Any]) -> frozenset[type] | None:
    """``anyOf``/``oneOf`` of plain types (a type or null, as taps write nullable columns).

    ``oneOf`` counts only when no value can match two branches (types that do not overlap).
    """
    keyword = "anyOf" if "anyOf" in definition else "oneOf"
    branches = definition[keyword]
    others = set(definition) - {keyword}
    if not isinstance(branches, list) or not branches or not others <= _ANNOTATIONS - {"type"}:
        return None
    parts = [allowed_types(branch) for branch in branches]
    if any(part is None for part in parts):
        return None
    union: frozenset[type] = frozenset().union(*parts)  # type: ignore[arg-type]
    if keyword == "oneOf" and sum(map(len, parts)) != len(union):  # type: ignore[arg-type]
        return None
    return union


def type_table(
    schema: dict[str, Any],
) -> tuple[dict[str, frozenset[type] | None], tuple[str, ...], bool] | None:
    """Per-property accepted types of a flat schema.

    Args:
        schema: A stream's schema.

    Returns:
        ``(property -> accepted types or None, required properties, closed)``, where closed
        means ``additionalProperties: false``; None when the schema is not a flat object
        schema.
    """
    if not set(schema) <= _TOP_LEVEL_KEYS:
        return None
    if schema.get("type", "object") not in ("object", ["object"]):
        return None
    additional = schema.get("additionalProperties", True)
    if additional not in (True, {}, False):
        return None
    properties = schema.get("properties")
    required = schema.get("required", [])
    if not isinstance(properties, dict) or not isinstance(required, list):
        return None
    types = {name: allowed_types(d) for name, d in properties.items()}
    return types, tuple(required), additional is False


# -- fastjsonschema -------------------------------------------------------------------------


_INT_OR_FINITE_DECIMAL = (
    "if type({variable}) is int or (type({variable}) is Decimal and {variable}.is_finite()):"
)
# What a value must be to satisfy a bound keyword.
_OPERATORS = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}


class _ExactNumbersCodeGenerator(CodeGeneratorDraft2019):
    """fastjsonschema's generator with numeric keywords checked on exact decimals.

    The stock generator divides the record's Decimal by the schema's float (a TypeError),
    reads ``Decimal(repr(Decimal(...)))`` (an InvalidOperation) and compares Decimals with
    binary floats. Here each keyword calls one of the checks above with its bound as an
    exact Decimal constant.
    """

    def __init__(self, definition: Any, **kwargs: Any) -> None:
        super().__init__(definition, **kwargs)
        self._extra_imports_objects.update(
            {f"_check_{keyword}": check for keyword, check in NUMERIC_CHECKS.items()}
        )

    def _constant(self, keyword: str) -> tuple[str, bool]:
        """Register the keyword's number; ``(name, integral)``.

        ``name`` holds an int when the number is integral (int against int compares
        fastest, and Decimal against int is exact), ``name_decimal`` the Decimal.
        """
        bound = schema_number(self._definition[keyword])
        if bound is None or (keyword == "multipleOf" and bound <= 0):
            raise JsonSchemaDefinitionException(f"{keyword} must be a number")
        name = f"_bound_{len(self._extra_imports_objects)}"
        integral = bound == bound.to_integral_value()
        self._extra_imports_objects[name] = int(bound) if integral else bound
        self._extra_imports_objects[f"{name}_decimal"] = bound
        return name, integral

    def _fail(self, keyword: str) -> None:
        self.exc(f"{{name}} does not satisfy {keyword}", rule=keyword)

    def _bound(self, keyword: str) -> None:
        """A bound: compared inline for ints and finite Decimals, by its check for floats."""
        name, _ = self._constant(keyword)
        operator = _OPERATORS[keyword]
        with self.l(_INT_OR_FINITE_DECIMAL), self.l(f"if not {{variable}} {operator} {name}:"):
            self._fail(keyword)
        check = f"_check_{keyword}({{variable}}, {name}_decimal)"
        with self.l(f"elif type({{variable}}) is float and not {check}:"):
            self._fail(keyword)

    def generate_multiple_of(self) -> None:
        """``multipleOf``, exactly (ints by an integral step inline)."""
        name, integral = self._constant("multipleOf")
        check = f"_check_multipleOf({{variable}}, {name}_decimal)"
        if integral:
            with self.l("if type({variable}) is int:"), self.l(f"if {{variable}} % {name}:"):
                self._fail("multipleOf")
            with self.l(f"elif type({{variable}}) in (Decimal, float) and not {check}:"):
                self._fail("multipleOf")
        else:
            with self.l(f"if type({{variable}}) in (int, Decimal, float) and not {check}:"):
                self._fail("multipleOf")

    def generate_minimum(self) -> None:
        """``minimum`` (always inclusive after normalization)."""
        self._bound("minimum")

    def generate_maximum(self) -> None:
        """``maximum`` (always inclusive after normalization)."""
        self._bound("maximum")

    def generate_exclusive_minimum(self) -> None:
        """``exclusiveMinimum`` in its numeric form."""
        self._bound("exclusiveMinimum")

    def generate_exclusive_maximum(self) -> None:
        """``exclusiveMaximum`` in its numeric form."""
        self._bound("exclusiveMaximum")


def compile_validator(schema: dict[str, Any]) -> Callable[[Any], Any]:
    """Compile a schema with exact numeric keywords and no remote references.

    Args:
        schema: A stream's schema (any draft).

    Returns:
        fastjsonschema's validation function.
    """
    normalized = normalize_numeric_keywords(schema)
    # fastjsonschema knows drafts 4-2019 only; after normalization the keywords taps use
    # mean the same in all of them.
    compilable = {k: v for k, v in normalized.items() if k != "$schema"}
    resolver = RefResolver.from_schema(compilable, handlers=NoRemoteSchemas(), store={})
    generator = _ExactNumbersCodeGenerator(
        compilable, resolver=resolver, use_default=False, use_formats=False
    )
    global_state = generator.global_state
    exec(generator.func_code, global_state)  # noqa: S102 - fastjsonschema's own compile step
    validate: Callable[[Any], Any] = global_state[resolver.get_scope_name()]
    return validate


class FastJSONSchemaValidator(BaseJSONSchemaValidator):
    """JSON Schema validation with the SDK's semantics (no format checks, no defaults)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        """Compile the stream's schema once.

        Args:
            schema: The stream's JSON Schema.
        """
        super().__init__(schema)
        self._full = compile_validator(schema)
        table = type_table(schema)
        self._types, self._required, self._closed = table if table is not None else ({}, (), True)
        self._flat = table is not None

    def _accepts(self, record: dict[str, Any]) -> bool:
        types = self._types
        for name, value in record.items():
            allowed = types.get(name, _UNLISTED)
            if allowed is _UNLISTED:
                if self._closed:
                    return False
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


# -- jsonschema (the fallback) --------------------------------------------------------------


def _jsonschema_keyword(keyword: str) -> Callable[..., Iterator[jsonschema.ValidationError]]:
    check = NUMERIC_CHECKS[keyword]

    def validate(
        validator: Any, value: Any, instance: Any, _schema: dict[str, Any]
    ) -> Iterator[jsonschema.ValidationError]:
        if not validator.is_type(instance, "number"):
            return
        bound = schema_number(value)
        if bound is None:
            return  # check_schema has refused it already
        if not check(instance, bound):
            yield jsonschema.ValidationError(f"the value does not satisfy {keyword}")

    return validate


_EXACT_KEYWORDS = {keyword: _jsonschema_keyword(keyword) for keyword in NUMERIC_CHECKS}


class QuietJSONSchemaValidator(JSONSchemaValidator):
    """The SDK's jsonschema validator, for schemas fastjsonschema cannot compile, minus values.

    The SDK words its errors with jsonschema's messages, which quote the offending value.
    The validator class follows the schema's ``$schema`` (Draft 2020-12 without one), its
    numeric keywords are exact (see :func:`normalize_numeric_keywords`), and a reference it
    cannot resolve is refused here, naming its property, rather than at the first record.
    """

    def __init__(
        self,
        schema: dict[str, Any],
        *,
        validate_formats: bool = False,
        format_checker: jsonschema.FormatChecker | None = None,
    ) -> None:
        """Check the schema and build the validator.

        Args:
            schema: The stream's schema.
            validate_formats: Whether string formats (e.g. ``date-time``) are checked.
            format_checker: A format checker to use instead of the draft's.

        Raises:
            InvalidJSONSchema: When the schema is not valid for its draft.
            UnusableSchemaError: When a reference cannot be resolved.
        """
        BaseJSONSchemaValidator.__init__(self, schema)
        draft4 = declares_draft4(schema)
        base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        normalized = normalize_numeric_keywords(schema, draft4=draft4)
        # A Draft 4 schema is checked against its own meta-schema (a numeric flag is read
        # as Draft 4 reads it: true when not zero); otherwise the numeric form is checked.
        try:
            base.check_schema(draft4_flags(schema) if draft4 else normalized)
        except jsonschema.SchemaError as exc:
            where = ".".join(str(part) for part in exc.absolute_path) or "the schema"
            message = f"Schema Validation Error at '{where}' ({exc.validator})"
            raise InvalidJSONSchema(message) from None
        problem = unresolvable_reference(normalized)
        if problem is not None:
            raise UnusableSchemaError(problem)
        if not validate_formats:
            format_checker = jsonschema.FormatChecker(formats=())
        elif format_checker is None:
            format_checker = base.FORMAT_CHECKER
        # Draft 4 has no numeric exclusive keywords of its own: these add them.
        exact = jsonschema.validators.extend(base, _EXACT_KEYWORDS)
        self.validator = exact(normalized, format_checker=format_checker)

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
