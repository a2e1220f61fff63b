"""The fast validator accepts exactly what the compiled (SDK-equivalent) validator accepts."""

from __future__ import annotations

import decimal

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from singer_sdk.exceptions import InvalidRecord

from target_sfmc.jsonio import encode_json
from target_sfmc.mapping import to_sfmc_value
from target_sfmc.validation import FastJSONSchemaValidator, QuietJSONSchemaValidator

FLAT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": ["string", "null"]},
        "score": {"type": ["number", "null"]},
        "active": {"type": "boolean"},
        "at": {"type": "string", "format": "date-time"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "meta": {"type": ["object", "null"]},
        "choice": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["id"],
}

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
records = st.dictionaries(st.sampled_from([*FLAT["properties"], "extra"]), values, max_size=9)


@settings(max_examples=400)
@given(records)
def test_fast_path_agrees_with_the_full_validator(record):
    full = fastjsonschema.compile(FLAT, use_formats=False, use_default=False)
    try:
        full(record)
        expected = True
    except fastjsonschema.JsonSchemaValueException:
        expected = False
    validator = FastJSONSchemaValidator(FLAT)
    try:
        validator.validate(record)
        accepted = True
    except InvalidRecord:
        accepted = False
    assert accepted == expected


def test_errors_name_the_field_but_never_the_value():
    validator = FastJSONSchemaValidator(FLAT)
    with pytest.raises(InvalidRecord) as caught:
        validator.validate({"id": "secret-value-123"})
    assert "id" in str(caught.value)
    assert "secret-value-123" not in str(caught.value)


def test_missing_required_and_bool_as_integer_are_rejected():
    validator = FastJSONSchemaValidator(FLAT)
    with pytest.raises(InvalidRecord):
        validator.validate({"name": "x"})
    with pytest.raises(InvalidRecord):
        validator.validate({"id": True})
    validator.validate(
        {"id": 1, "score": decimal.Decimal("1.50"), "at": "not checked: formats are off"}
    )


def test_closed_schema_uses_the_full_validator():
    validator = FastJSONSchemaValidator({**FLAT, "additionalProperties": False})
    with pytest.raises(InvalidRecord):
        validator.validate({"id": 1, "extra": 1})


def test_fallback_validator_hides_values():
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[A-Z]+$"}}}
    validator = QuietJSONSchemaValidator(schema)
    validator.validate({"code": "ABC"})
    with pytest.raises(InvalidRecord) as caught:
        validator.validate({"code": "secret-lowercase-value"})
    assert "code" in str(caught.value)
    assert "pattern" in str(caught.value)
    assert "secret-lowercase-value" not in str(caught.value)


def test_exponent_decimals_are_sent_as_plain_digits():
    assert encode_json([to_sfmc_value(decimal.Decimal("1E+2"))]) == b"[100]"
    assert encode_json([to_sfmc_value(decimal.Decimal("12.50"))]) == b"[12.50]"
