"""Pure mapping rules behind defects found in review (CLI side: tests/e2e/test_defects.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from target_sfmc.jsonio import encode_json
from target_sfmc.mapping import contact_key, to_sfmc_value


@pytest.mark.parametrize(
    ("number", "digits"),
    [
        ("0.0000001", b"0.0000001"),
        ("-0.0000001", b"-0.0000001"),
        ("1E-10", b"0.0000000001"),
        ("0.00000012345", b"0.00000012345"),
    ],
)
def test_small_decimals_are_sent_as_plain_digits(number, digits):
    encoded = encode_json({"Amount": to_sfmc_value(Decimal(number))})
    assert b"E" not in encoded.upper(), encoded
    assert digits in encoded, encoded


@pytest.mark.parametrize("number", ["1E+3", "1e3", "1000.0", "1000.00"])
def test_a_numeric_user_id_has_one_contact_key(number):
    assert contact_key(Decimal(number), None) == "1000"
