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
import functools
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import fastjsonschema
import jsonschema
from fastjsonschema.draft2019 import CodeGeneratorDraft2019
from fastjsonschema.exceptions import JsonSchemaDefinitionException
from fastjsonschema.ref_resolver import RefResolver
from singer_sdk.exceptions import InvalidJSONSchema, InvalidRecord
from singer_sdk.sinks.core import BaseJSONSchemaValidator, JSONSchemaValidator

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


# -- numbers, exactly ----------------------------------------------------------------------

_NUMBER_TYPES = (int, float, decimal.Decimal)


def schema_number(value: Any) -> decimal.Decimal | None:
    """The exact decimal a schema keyword's number stands for.

    A float is read back from its shortest text (``0.01`` means one hundredth, not the
    binary float nearest to it), as ``Decimal(str(step))``.

    Args:
        value: A keyword value from a schema.

    Returns:
        The number as a Decimal, or None when the value is not a finite number.
    """
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        return None
    number = value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    return number if number.is_finite() else None


def _exact(value: Any) -> int | decimal.Decimal | None:
    """A record's number in a form that compares exactly; None when it is not finite."""
    kind = type(value)
    if kind is int:
        return value
    if kind is decimal.Decimal:
        return value if value.is_finite() else None
    if isinstance(value, float):
        # Floats only come from hand-made records; read them as the text JSON would carry.
        return decimal.Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, int):
        return int(value)
    return value if isinstance(value, decimal.Decimal) and value.is_finite() else None


def _mantissa_exponent(number: decimal.Decimal) -> tuple[int, int]:
    sign, digits, exponent = number.as_tuple()
    mantissa = int("".join(map(str, digits)) or "0")
    return (-mantissa if sign else mantissa), int(exponent)


# Beyond this many decimal places either way, rational arithmetic would build huge integers.
_RATIO_EXPONENT_LIMIT = 400


@functools.lru_cache(maxsize=256)
def _step_ratio(step: decimal.Decimal) -> tuple[int, int]:
    return step.as_integer_ratio()


def is_multiple_of(value: Any, step: decimal.Decimal) -> bool:
    """Tell whether a record's number is an exact multiple of a schema's ``multipleOf``.

    Integer arithmetic on the decimal digits: no float rounding, no Decimal context limits,
    and no huge powers of ten for numbers with extreme exponents. Non-finite values
    (NaN, infinity: not JSON numbers) are left to the mapping, which refuses them as a row
    error.

    Args:
        value: The record's number (int, Decimal or float).
        step: The ``multipleOf`` value (positive, finite).

    Returns:
        True when ``value / step`` is an integer.
    """
    number = _exact(value)
    if number is None:
        return True
    if isinstance(number, int):
        number = decimal.Decimal(number)
    if number.is_zero():
        return True
    if abs(number.adjusted()) < _RATIO_EXPONENT_LIMIT:
        numerator, denominator = number.as_integer_ratio()
        step_numerator, step_denominator = _step_ratio(step)
        return numerator * step_denominator % (denominator * step_numerator) == 0
    value_digits, value_exponent = _mantissa_exponent(number)
    step_digits, step_exponent = _mantissa_exponent(step)
    step_digits = abs(step_digits)
    shift = value_exponent - step_exponent
    if shift >= 0:
        return value_digits * pow(10, shift, step_digits) % step_digits == 0
    # value = v * 10^e with e below the step's exponent: v must end in -shift zeros at least.
    if -shift > len(str(abs(value_digits))):
        return False
    return value_digits % (step_digits * 10**-shift) == 0


def at_least(value: Any, bound: decimal.Decimal) -> bool:
    """``minimum``: the value is not below the bound (non-finite values pass, see above).

    Args:
        value: The record's number.
        bound: The bound.

    Returns:
        True when the value satisfies the keyword.
    """
    number = _exact(value)
    return number is None or number >= bound


def at_most(value: Any, bound: decimal.Decimal) -> bool:
    """``maximum``: the value is not above the bound.

    Args:
        value: The record's number.
        bound: The bound.

    Returns:
        True when the value satisfies the keyword.
    """
    number = _exact(value)
    return number is None or number <= bound


def above(value: Any, bound: decimal.Decimal) -> bool:
    """``exclusiveMinimum`` (numeric form): the value is above the bound.

    Args:
        value: The record's number.
        bound: The bound.

    Returns:
        True when the value satisfies the keyword.
    """
    number = _exact(value)
    return number is None or number > bound


def below(value: Any, bound: decimal.Decimal) -> bool:
    """``exclusiveMaximum`` (numeric form): the value is below the bound.

    Args:
        value: The record's number.
        bound: The bound.

    Returns:
        True when the value satisfies the keyword.
    """
    number = _exact(value)
    return number is None or number < bound


# keyword -> (check, what the bound must be)
_NUMERIC_CHECKS: dict[str, Callable[[Any, decimal.Decimal], bool]] = {
    "multipleOf": is_multiple_of,
    "minimum": at_least,
    "maximum": at_most,
    "exclusiveMinimum": above,
    "exclusiveMaximum": below,
}


# -- drafts ---------------------------------------------------------------------------------


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


def _draft4_flags(node: Any) -> Any:
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


# -- references -----------------------------------------------------------------------------


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


class _NoRemoteSchemas(dict[str, Any]):  # scheme -> handler, for every scheme
    """fastjsonschema handlers: every scheme has one, and it refuses (no network, no files)."""

    def __contains__(self, scheme: object) -> bool:
        return True

    def __missing__(self, scheme: str) -> Callable[[str], Any]:
        def refuse(uri: str) -> Any:
            raise JsonSchemaDefinitionException(f"remote $ref not fetched: {uri}")

        return refuse


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
            {f"_check_{keyword}": check for keyword, check in _NUMERIC_CHECKS.items()}
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
    resolver = RefResolver.from_schema(compilable, handlers=_NoRemoteSchemas(), store={})
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


# -- jsonschema (the fallback) --------------------------------------------------------------


def _jsonschema_keyword(keyword: str) -> Callable[..., Iterator[jsonschema.ValidationError]]:
    check = _NUMERIC_CHECKS[keyword]

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


_EXACT_KEYWORDS = {keyword: _jsonschema_keyword(keyword) for keyword in _NUMERIC_CHECKS}


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
            base.check_schema(_draft4_flags(schema) if draft4 else normalized)
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
