"""Which values fit a Data Extension column: a check per column, and when none is needed.

Nothing here does I/O. A check answers None for a value that fits, else the reason it does not
(never the value itself).
"""

from __future__ import annotations

import decimal
import re
from typing import TYPE_CHECKING, Any

from target_sfmc.de_columns import (
    BOOLEAN,
    DATE,
    DECIMAL,
    INT32_MAX,
    INT32_MIN,
    NUMBER,
    SIZED_TEXT,
    Column,
    decimal_scale,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_sfmc.de_columns import PropertyShape

_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")
BOOLEAN_TEXTS = frozenset({"true", "false", "1", "0", "yes", "no"})


def _text_check(length: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if type(value) is str:
            return None if len(value) <= length else "is too long"
        if isinstance(value, bool):
            text = "True" if value else "False"
        elif isinstance(value, decimal.Decimal):
            text = format(value, "f")
        else:
            text = str(value)
        return None if len(text) <= length else "is too long"

    return check


def _number_check(value: Any) -> str | None:
    if type(value) is int:
        number = value
    elif isinstance(value, bool):
        return "is a boolean, not a whole number"
    elif isinstance(value, int):
        number = int(value)
    elif isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        if not value.is_finite() or not isinstance(exponent, int) or exponent < 0:
            return "is not a whole number"
        number = int(value)
    elif isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            return "is text that is not a whole number"
        number = int(value)
    else:
        return "is not a whole number"
    if INT32_MIN <= number <= INT32_MAX:
        return None
    return f"is beyond the 32-bit range, {INT32_MIN} to {INT32_MAX}"


def _decimal_check(precision: int, scale: int) -> Callable[[Any], str | None]:
    whole_digits = precision - scale

    def check(value: Any) -> str | None:
        if isinstance(value, bool):
            return "is a boolean, not a number"
        if isinstance(value, int):
            digits = len(str(abs(value)).lstrip("0"))
            return None if digits <= whole_digits else "has too many digits before the point"
        if isinstance(value, decimal.Decimal):
            number = value
        else:
            try:
                number = decimal.Decimal(value.strip() if isinstance(value, str) else repr(value))
            except (decimal.InvalidOperation, ValueError, TypeError):
                return (
                    "is text that is not a number" if isinstance(value, str) else "is not a number"
                )
        if not number.is_finite():
            return "is not a finite number"
        text = format(abs(number), "f")
        whole, _, fraction = text.partition(".")
        if len(whole.lstrip("0")) > whole_digits:
            return "has too many digits before the point"
        if len(fraction.rstrip("0")) > scale:
            return "has too many digits after the point"
        return None

    return check


def _boolean_check(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().casefold() in BOOLEAN_TEXTS:
        return None
    return "is not a boolean"


def _date_check(value: Any) -> str | None:
    return None if isinstance(value, str) else "is not a date"


def value_check(column: Column) -> Callable[[Any], str | None] | None:
    """The check a value must pass to go into a column (None: every value goes).

    Args:
        column: The column.

    Returns:
        ``value -> reason`` (None when the value fits, else a few words such as ``is too
        long``; never the value), or None when the column takes any value the mapping sends.
    """
    if column.type in SIZED_TEXT and column.length:
        return _text_check(column.length)
    if column.type == NUMBER:
        return _number_check
    if column.type == DECIMAL:
        precision = column.length or 18
        return _decimal_check(precision, min(column.scale or 0, precision))
    if column.type == BOOLEAN:
        return _boolean_check
    if column.type == DATE:
        return _date_check
    return None


def always_fits(column: Column, shape: PropertyShape | None) -> bool:
    """Tell whether every value the schema allows fits the column (no check per value).

    Args:
        column: The column.
        shape: The property's shape, when the attribute comes from a declared property.

    Returns:
        True only when the schema guarantees it.
    """
    if shape is None:
        return False
    kinds, keywords = shape.kinds, shape.keywords
    if column.type == BOOLEAN:
        return kinds == {"boolean"}
    if column.type == DATE:
        return kinds == {"string"} and keywords.get("format") in {"date-time", "date"}
    if column.type in SIZED_TEXT:
        max_length = keywords.get("maxLength")
        return (
            kinds == {"string"}
            and column.length is not None
            and keywords.get("format") not in {"date-time", "date", "time"}
            and isinstance(max_length, int)
            and max_length <= column.length
        )
    if column.type == NUMBER:
        low, high = shape.bounds()
        return (
            kinds == {"integer"}
            and low is not None
            and high is not None
            and low >= INT32_MIN
            and high <= INT32_MAX
        )
    if column.type == DECIMAL:
        return _decimal_always_fits(column, shape)
    return False


def _decimal_always_fits(column: Column, shape: PropertyShape) -> bool:
    precision, scale = column.length or 18, column.scale or 0
    if not shape.kinds or not shape.kinds <= {"integer", "number"}:
        return False
    integers = shape.kinds == {"integer"}
    step_scale = 0 if integers else decimal_scale(shape.keywords.get("multipleOf"))
    if step_scale is None or step_scale > scale:
        return False
    low, high = shape.bounds()
    if low is None or high is None:
        return False
    limit = decimal.Decimal(10) ** (precision - scale)
    return -limit < low and high < limit


# -- the columns a stream sends ---------------------------------------------------------------
