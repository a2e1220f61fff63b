"""Emulator: field validators (property-based) and primary-key identity."""

from __future__ import annotations

import string
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from target_sfmc.emulator.schema import parse_field
from target_sfmc.emulator.validation import (
    INT32_MAX,
    INT32_MIN,
    REASON_DECIMAL,
    REASON_NUMBER,
    compile_validator,
    normalize_key_value,
)

NUMBER = compile_validator(parse_field({"name": "N", "type": "Number"}))
DECIMAL = compile_validator(
    parse_field({"name": "D", "type": "Decimal", "precision": 8, "scale": 3})
)
TEXT_KEY = parse_field({"name": "K", "type": "Text", "primary_key": True})


@given(st.integers())
def test_number_accepts_exactly_int32(value):
    expected = None if INT32_MIN <= value <= INT32_MAX else REASON_NUMBER
    assert NUMBER(value) == expected
    assert NUMBER(str(value)) == expected


@given(
    st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-99999, max_value=99999)
)
def test_decimal_within_precision_and_scale_is_accepted(value):
    assert DECIMAL(str(value)) is None
    assert DECIMAL(format(value, "f")) is None


@given(st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-1, max_value=1))
def test_decimal_with_too_many_scale_digits_is_not_rounded(value):
    text = format(value, "f")
    significant = text.split(".")[1].rstrip("0") if "." in text else ""
    expected = REASON_DECIMAL if len(significant) > 3 else None
    assert DECIMAL(text) == expected


@given(st.text(alphabet=string.ascii_letters + string.digits + " -_@.", min_size=1, max_size=20))
def test_text_keys_compare_case_insensitively(value):
    normalized = normalize_key_value(TEXT_KEY, value)
    assert normalized == normalize_key_value(TEXT_KEY, value.upper())
    assert normalized == normalize_key_value(TEXT_KEY, value.lower() + "  ")


def test_decimal_key_identity_by_value():
    key = parse_field({"name": "D", "type": "Decimal", "primary_key": True})
    assert normalize_key_value(key, "1.50") == normalize_key_value(key, 1.5)
    assert normalize_key_value(key, Decimal(2)) == normalize_key_value(key, "2.00")
