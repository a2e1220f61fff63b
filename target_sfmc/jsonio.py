"""JSON encoding shared by requests, STATE lines and dead letters: exact numbers, no surprises."""

from __future__ import annotations

from typing import Any

import msgspec

# Decimals keep their digits; any other unknown type (a date that slipped through) becomes text.
_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=str)


def encode_json(payload: Any) -> bytes:
    """Serialize a payload exactly (decimals keep their digits).

    Args:
        payload: JSON-compatible value; Decimals allowed.

    Returns:
        UTF-8 JSON bytes.
    """
    return _encoder.encode(payload)
