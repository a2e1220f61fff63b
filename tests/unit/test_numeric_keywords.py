"""Numeric keywords (multipleOf, bounds) checked exactly on Decimal values, in both validators."""

from __future__ import annotations

import decimal
from decimal import Decimal
from fractions import Fraction

import pytest
from fastjsonschema.exceptions import JsonSchemaDefinitionException
from hypothesis import example, given, settings
from hypothesis import strategies as st
from singer_sdk.exceptions import InvalidRecord

from target_sfmc.schema_drafts import UnusableSchemaError, normalize_numeric_keywords
from target_sfmc.schema_numbers import is_multiple_of
from target_sfmc.validation import FastJSONSchemaValidator, QuietJSONSchemaValidator

DRAFT4 = "http://json-schema.org/draft-04/schema#"
DRAFT2020 = "https://json-schema.org/draft/2020-12/schema"
VALIDATORS = (FastJSONSchemaValidator, QuietJSONSchemaValidator)

# Steps real taps write: Postgres/MySQL numerics, Shopify prices, plain integers.
STEPS = [0.01, 1e-10, 0.1, 3, 0.0001, 1e-06, 1e-38, 0.5, 2.5, 7, Decimal("0.01"), Decimal("1E-10")]


def accepts(validator_class, schema, value) -> bool:
    return accepted_by(validator_class(schema), value)


def accepted_by(validator, value) -> bool:
    try:
        validator.validate({"x": value})
    except InvalidRecord:
        return False
    return True


def one_property(**keywords) -> dict:
    return {"type": "object", "properties": {"x": {"type": ["number", "null"], **keywords}}}


def is_exact_multiple(value, step) -> bool:
    """The reference: rational arithmetic on the step as written (``Decimal(str(step))``)."""
    return (Fraction(Decimal(value)) / Fraction(Decimal(str(step)))).denominator == 1


record_numbers = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.decimals(allow_nan=False, allow_infinity=False, places=10),
    st.integers(min_value=-(2**80), max_value=2**80),
)


@pytest.mark.parametrize("validator_class", VALIDATORS)
def test_a_decimal_multiple_of_a_float_step_is_accepted_not_a_crash(validator_class):
    schema = one_property(multipleOf=0.01)
    assert accepts(validator_class, schema, Decimal("12.34"))
    assert not accepts(validator_class, schema, Decimal("12.345"))


@settings(max_examples=120, deadline=None)
@given(values=st.lists(record_numbers, min_size=1, max_size=25), step=st.sampled_from(STEPS))
@example(
    values=[
        Decimal("19.01"),
        Decimal("1E-7"),
        Decimal("1E+21"),
        Decimal("0.3"),
        Decimal("1.0000000001"),
        2**70 + 1,
        Decimal("-7.5"),
    ],
    step=0.01,
)
@example(values=[Decimal("1E-7"), Decimal("1E+21"), Decimal("1.0000000001")], step=1e-10)
@example(values=[Decimal("0.3"), Decimal("0.30000000000000004")], step=0.1)
@example(values=[2**70 + 1, 2**70 + 2, Decimal("3.0"), Decimal("4.5")], step=3)
@example(values=[Decimal("-7.5"), Decimal("7.4")], step=2.5)
def test_multiple_of_is_decided_by_decimal_arithmetic(values, step):
    schema = one_property(multipleOf=step)
    validators = [validator_class(schema) for validator_class in VALIDATORS]
    for value in values:
        expected = is_exact_multiple(value, step)
        for validator in validators:
            assert accepted_by(validator, value) is expected, (type(validator).__name__, value)


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(record_numbers, min_size=1, max_size=25),
    bound=st.one_of(
        st.sampled_from([0, 0.1, -0.1, 100, 1e-10, 2**53 + 1, 9223372036854775807]),
        st.decimals(allow_nan=False, allow_infinity=False, places=3),
    ),
)
@example(values=[Decimal("0.1"), Decimal("0.10000000000000001"), Decimal("0.09")], bound=0.1)
@example(values=[2**53 + 1, 2**53, 2**53 + 2, Decimal(2**53 + 1)], bound=2**53 + 1)
def test_bounds_are_compared_exactly_in_every_dialect(values, bound):
    exact = Decimal(str(bound))
    forms = [
        # (schema keywords, $schema, holds(number))
        ({"minimum": bound}, None, lambda n: n >= exact),
        ({"maximum": bound}, None, lambda n: n <= exact),
        ({"minimum": bound, "exclusiveMinimum": True}, None, lambda n: n > exact),
        ({"maximum": bound, "exclusiveMaximum": True}, None, lambda n: n < exact),
        ({"minimum": bound, "exclusiveMinimum": True}, DRAFT4, lambda n: n > exact),
        ({"maximum": bound, "exclusiveMaximum": False}, DRAFT4, lambda n: n <= exact),
        ({"exclusiveMinimum": bound}, None, lambda n: n > exact),
        ({"exclusiveMaximum": bound}, None, lambda n: n < exact),
        ({"exclusiveMinimum": bound}, DRAFT2020, lambda n: n > exact),
        ({"exclusiveMaximum": bound}, DRAFT2020, lambda n: n < exact),
    ]
    for keywords, dialect, holds in forms:
        schema = one_property(**keywords)
        if dialect:
            schema["$schema"] = dialect
        validators = [validator_class(schema) for validator_class in VALIDATORS]
        for value in values:
            expected = holds(Decimal(value))
            for validator in validators:
                got = accepted_by(validator, value)
                assert got is expected, (type(validator).__name__, keywords, dialect, value)


@pytest.mark.parametrize("validator_class", VALIDATORS)
def test_a_draft4_postgres_numeric_column_takes_values_above_one(validator_class):
    # singer-io/tap-postgres numeric(10,6): Draft 4 flags, no $schema.
    schema = one_property(
        exclusiveMaximum=True,
        maximum=10000,
        multipleOf=1e-06,
        exclusiveMinimum=True,
        minimum=-10000,
    )
    assert accepts(validator_class, schema, Decimal(5))
    assert accepts(validator_class, schema, Decimal("9999.999999"))
    assert not accepts(validator_class, schema, Decimal(10000))
    assert not accepts(validator_class, schema, Decimal(-10000))
    assert not accepts(validator_class, schema, Decimal("1.0000001"))


@pytest.mark.parametrize("validator_class", VALIDATORS)
def test_a_numeric_exclusive_bound_under_draft4_is_a_flag(validator_class):
    schema = {**one_property(maximum=10, exclusiveMaximum=1), "$schema": DRAFT4}
    assert accepts(validator_class, schema, Decimal("9.5"))
    assert not accepts(validator_class, schema, Decimal(10))


@pytest.mark.parametrize("validator_class", VALIDATORS)
def test_schema_numbers_decoded_as_decimal_work_too(validator_class):
    # The target's reader decodes the SCHEMA message with Decimal floats.
    schema = one_property(
        multipleOf=Decimal("1E-38"),
        maximum=10**62,
        exclusiveMaximum=True,
        minimum=Decimal("-1E+62"),
    )
    assert accepts(validator_class, schema, Decimal("123456789.123456789"))
    assert not accepts(validator_class, schema, 10**62)


@pytest.mark.parametrize("validator_class", VALIDATORS)
@pytest.mark.parametrize(
    "value", [Decimal("NaN"), Decimal("Infinity"), float("nan"), float("-inf")], ids=repr
)
def test_non_finite_numbers_are_left_to_the_mapping(validator_class, value):
    schema = one_property(multipleOf=0.01, minimum=0, maximum=10)
    assert accepts(validator_class, schema, value)


def test_extreme_exponents_are_decided_without_huge_numbers():
    assert not is_multiple_of(Decimal("1E-100000000"), Decimal("0.01"))
    assert is_multiple_of(Decimal("1E+100000000"), Decimal("1E-10"))
    assert is_multiple_of(Decimal("0E-100000000"), Decimal(3))
    assert not is_multiple_of(Decimal("1E+100000000"), Decimal(3))


def test_normalization_keeps_enum_values_and_property_names_alone():
    schema = {
        "properties": {
            "maximum": {"type": "integer", "maximum": 5, "exclusiveMaximum": True},
            "level": {"enum": [{"exclusiveMaximum": True}]},
        }
    }
    normalized = normalize_numeric_keywords(schema)
    assert normalized["properties"]["maximum"] == {"type": "integer", "exclusiveMaximum": 5}
    assert normalized["properties"]["level"] == {"enum": [{"exclusiveMaximum": True}]}
    assert schema["properties"]["maximum"]["maximum"] == 5  # the input is not changed


@pytest.mark.parametrize("validator_class", VALIDATORS)
def test_bounds_inside_nested_objects_arrays_and_anyof_are_exact(validator_class):
    schema = {
        "type": "object",
        "properties": {
            "x": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "price": {"type": "number", "multipleOf": 0.01, "minimum": 0.1}
                            },
                        },
                    },
                ]
            }
        },
    }
    assert accepts(
        validator_class, schema, [{"price": Decimal("0.1")}, {"price": Decimal("19.01")}]
    )
    assert not accepts(validator_class, schema, [{"price": Decimal("0.09")}])
    assert not accepts(validator_class, schema, [{"price": Decimal("19.011")}])


def test_remote_references_are_never_fetched():
    schema = {"properties": {"x": {"$ref": "http://127.0.0.1:9/never.json"}}}
    with pytest.raises(JsonSchemaDefinitionException, match="not fetched"):
        FastJSONSchemaValidator(schema)
    with pytest.raises(UnusableSchemaError, match="property 'x'") as caught:
        QuietJSONSchemaValidator(schema)
    assert "http://127.0.0.1:9/never.json" in str(caught.value)


def test_an_unresolvable_local_reference_names_its_property():
    schema = {
        "definitions": {"ok": {"type": "string"}},
        "properties": {
            "fine": {"$ref": "#/definitions/ok"},
            "tags": {"type": "array", "items": {"$ref": "#/definitions/missing"}},
        },
    }
    with pytest.raises(UnusableSchemaError, match="property 'tags'"):
        QuietJSONSchemaValidator(schema)


@pytest.mark.parametrize("validator_class", VALIDATORS)
def test_recursive_definitions_of_tap_postgres_arrays_validate(validator_class):
    schema = {
        "type": "object",
        "properties": {
            "tags": {
                "type": ["null", "array"],
                "items": {"$ref": "#/definitions/sdc_recursive_integer_array"},
            }
        },
        "definitions": {
            "sdc_recursive_integer_array": {
                "type": ["null", "integer", "array"],
                "items": {"$ref": "#/definitions/sdc_recursive_integer_array"},
            }
        },
    }
    validator = validator_class(schema)
    validator.validate({"tags": [1, [2, [3, None]]]})
    with pytest.raises(InvalidRecord):
        validator.validate({"tags": [1, ["x"]]})


def test_decimal_context_precision_does_not_matter():
    with decimal.localcontext() as context:
        context.prec = 3
        assert is_multiple_of(Decimal("123456789.123456789"), Decimal("1E-9"))
        assert not is_multiple_of(Decimal("123456789.1234567891"), Decimal("1E-9"))
