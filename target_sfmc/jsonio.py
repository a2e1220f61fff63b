"""JSON encoding shared by requests, STATE lines and dead letters: exact numbers, no surprises."""

from __future__ import annotations

import decimal
from typing import Any

import msgspec


class PlainDecimal(decimal.Decimal):
    """A decimal that JSON carries in plain digits: ``0.0000001``, never ``1E-7``.

    SFMC's Number and Decimal columns want plain digits, while a Decimal writes small and
    large values with an exponent.
    """

    __slots__ = ()

    def __str__(self) -> str:
        """Plain digits.

        Returns:
            The value without an exponent.
        """
        return format(self, "f")


def _encode_other(value: Any) -> Any:
    if type(value) is PlainDecimal:
        return msgspec.Raw(format(value, "f").encode())
    return str(value)  # anything else unknown (a date that slipped through) becomes text


# Decimals keep their digits.
_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=_encode_other)


def encode_json(payload: Any) -> bytes:
    """Serialize a payload exactly (decimals keep their digits).

    Args:
        payload: JSON-compatible value; Decimals allowed.

    Returns:
        UTF-8 JSON bytes.
    """
    return _encoder.encode(payload)
