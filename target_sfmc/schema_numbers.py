"""Numeric schema keywords checked exactly: ``multipleOf`` and the bounds, on Decimal values.

Records carry numbers as ``decimal.Decimal`` (JSON numbers decoded without float rounding),
and schemas write steps such as ``0.01`` that no binary float holds exactly. Every check here
is exact decimal or integer arithmetic. Non-finite values (NaN, infinity: not JSON numbers)
pass these checks; the mapping refuses them as a row error.
"""

from __future__ import annotations

import decimal
import functools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

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
NUMERIC_CHECKS: dict[str, Callable[[Any, decimal.Decimal], bool]] = {
    "multipleOf": is_multiple_of,
    "minimum": at_least,
    "maximum": at_most,
    "exclusiveMinimum": above,
    "exclusiveMaximum": below,
}
