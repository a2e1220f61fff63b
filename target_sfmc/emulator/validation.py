"""Field type rules and the SFMC error messages they produce.

Each rule is compiled once per column into a function `value -> reason | None`; the reason is the
tail of SFMC's message pattern ``"<Col>: The value for column [<Col>] <reason>"``.
Null handling (None, and the empty string for non-Text columns) is decided by `is_null`, not by
the compiled validators.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from target_sfmc.emulator.schema import Field

Validator = Callable[[Any], str | None]

REASON_TOO_LONG = "exceeds the column's maximum length."
REASON_EMAIL = "is not a valid email address. Parse error [InvalidEmailAddress]"
REASON_NUMBER = "is not a valid number."
REASON_DECIMAL = "is not a valid decimal."
REASON_BOOLEAN = "is not a valid boolean."
REASON_DATE = "is not a valid date."
REASON_PHONE = (
    "is not a valid phone number. Parse error [ExactTarget.Core.Validation.ValidationResult[]]"
)
REASON_LOCALE = "is not a valid locale."
REASON_NOT_NULL = "does not allow null value."
REASON_BAD_TYPE = "has a value of an unsupported type."

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
SQL_DATETIME_MIN_YEAR = 1753

BOOLEAN_STRINGS = frozenset({"true", "false", "1", "0", "yes", "no"})

_EMAIL_RE = re.compile(
    r"^(?![.])(?!.*[.]{2})[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+(?<![.])"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$"
)
_INT_RE = re.compile(r"^\s*[+-]?\d+\s*$")
_DECIMAL_RE = re.compile(r"^\s*[+-]?(\d*)(?:\.(\d*))?\s*$")
_DATE_RE = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-](?:0\d|1[0-4]):?[0-5]\d)?)?"
)
_PHONE_RE = re.compile(r"^\+?[0-9 ().-]+$")
_PHONE_MIN_DIGITS = 7
_PHONE_MAX_DIGITS = 15
_LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z]{2})?$")


def column_message(column: str, reason: str) -> str:
    """Return SFMC's message for a column problem.

    Args:
        column: Column name in its defined spelling.
        reason: One of the `REASON_*` constants.

    Returns:
        ``"<Col>: The value for column [<Col>] <reason>"``.
    """
    return f"{column}: The value for column [{column}] {reason}"


def is_null(field: Field, value: Any) -> bool:
    """Tell whether SFMC treats a value as null for a column.

    The empty string counts as null for every type except non-key Text columns.

    Args:
        field: The column.
        value: The received value.

    Returns:
        True when the value is null for SFMC.
    """
    if value is None:
        return True
    return value == "" and (field.type != "Text" or field.primary_key)


def _text_like(value: Any) -> str | None:
    """Return the text SFMC would store for a scalar, or None for objects/arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int | float):
        return str(value)
    return None


def _text_validator(length: int) -> Validator:
    def validate(value: Any) -> str | None:
        if type(value) is str:
            return None if len(value) <= length else REASON_TOO_LONG
        text = _text_like(value)
        if text is None:
            return REASON_BAD_TYPE
        return None if len(text) <= length else REASON_TOO_LONG

    return validate


def _email_validator(length: int) -> Validator:
    def validate(value: Any) -> str | None:
        if not isinstance(value, str):
            return REASON_EMAIL
        if len(value) > length:
            return REASON_TOO_LONG
        return None if _EMAIL_RE.match(value) else REASON_EMAIL

    return validate


def _number_validator(value: Any) -> str | None:
    if type(value) is int:
        return None if INT32_MIN <= value <= INT32_MAX else REASON_NUMBER
    if isinstance(value, str) and _INT_RE.match(value):
        return None if INT32_MIN <= int(value) <= INT32_MAX else REASON_NUMBER
    return REASON_NUMBER


def _decimal_text(value: Any) -> str | None:
    """Return the digits of a Decimal candidate as text, or None if it is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        try:
            return format(Decimal(repr(value)), "f")
        except (InvalidOperation, ValueError):
            return None
    return value if isinstance(value, str) else None


def _decimal_validator(precision: int, scale: int) -> Validator:
    max_int_digits = precision - scale

    def validate(value: Any) -> str | None:
        if type(value) is float:  # the common case: plain digits compared without a regex
            digits = repr(value)
            if "e" not in digits and "n" not in digits:
                int_part, _, frac_part = digits.lstrip("-").partition(".")
                fits = len(int_part.lstrip("0")) <= max_int_digits
                return None if fits and len(frac_part.rstrip("0")) <= scale else REASON_DECIMAL
        text = _decimal_text(value)
        match = _DECIMAL_RE.match(text) if text is not None else None
        if match is None:
            return REASON_DECIMAL
        int_part, frac_part = match.group(1), match.group(2) or ""
        if not int_part and not frac_part:
            return REASON_DECIMAL
        if len(int_part.lstrip("0")) > max_int_digits or len(frac_part.rstrip("0")) > scale:
            return REASON_DECIMAL
        return None

    return validate


def _boolean_validator(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lower() in BOOLEAN_STRINGS:
        return None
    return REASON_BOOLEAN


def parse_date(value: str) -> datetime | None:
    """Parse the ISO-8601 forms the emulator accepts for Date columns.

    Args:
        value: A date (``YYYY-MM-DD``) or date-time (``T`` or space separator, optional seconds,
            fractional seconds, ``Z`` or ``±hh:mm`` offset).

    Returns:
        The parsed value (aware when an offset was given), or None if invalid or before 1753
        (SQL Server ``datetime`` range).
    """
    if _DATE_RE.fullmatch(value) is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.year >= SQL_DATETIME_MIN_YEAR else None


#: SFMC's system time: UTC-6 all year (no daylight saving).
SYSTEM_TIME = timezone(timedelta(hours=-6))


def to_system_time(value: Any) -> Any:
    """Return a (valid) Date value as SFMC's ``datetime`` column stores and reads it back.

    A value with an offset is converted to the system time (`SYSTEM_TIME`); one without is
    taken as system time. The fraction is truncated (never rounded) to milliseconds and the
    result has no offset: ``2020-05-30T13:30:00.123456+00:00`` -> ``2020-05-30T07:30:00.123``.

    Args:
        value: A value that passed the Date check.

    Returns:
        The stored form; anything that is not a parseable date comes back unchanged.
    """
    parsed = parse_date(value.strip()) if isinstance(value, str) else None
    if parsed is None:
        return value
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(SYSTEM_TIME).replace(tzinfo=None)
    truncated = parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
    return truncated.isoformat(timespec="milliseconds")


def _date_validator(value: Any) -> str | None:
    if isinstance(value, str) and parse_date(value.strip()) is not None:
        return None
    return REASON_DATE


def _phone_validator(length: int) -> Validator:
    def validate(value: Any) -> str | None:
        if type(value) is int and value >= 0:
            value = str(value)
        if not isinstance(value, str):
            return REASON_PHONE
        if len(value) > length:
            return REASON_TOO_LONG
        if not _PHONE_RE.match(value):
            return REASON_PHONE
        digits = sum(ch.isdigit() for ch in value)
        return None if _PHONE_MIN_DIGITS <= digits <= _PHONE_MAX_DIGITS else REASON_PHONE

    return validate


def _locale_validator(value: Any) -> str | None:
    if isinstance(value, str) and _LOCALE_RE.match(value):
        return None
    return REASON_LOCALE


def compile_validator(field: Field) -> Validator:
    """Build the type/length check for a column.

    Args:
        field: The column definition.

    Returns:
        A function returning None for an acceptable non-null value, else a `REASON_*` string.
    """
    if field.type == "Text":
        return _text_validator(field.length or 0)
    if field.type == "EmailAddress":
        return _email_validator(field.length or 0)
    if field.type == "Number":
        return _number_validator
    if field.type == "Decimal":
        return _decimal_validator(field.precision or 0, field.scale or 0)
    if field.type == "Boolean":
        return _boolean_validator
    if field.type == "Date":
        return _date_validator
    if field.type == "Phone":
        return _phone_validator(field.length or 0)
    return _locale_validator


def normalize_key_value(field: Field, value: Any) -> str:
    """Return the comparison form of a (valid, non-null) primary-key value.

    Text-like keys compare case-insensitively (like SQL Server's default collation) and ignore
    trailing spaces; numbers, decimals, booleans and dates compare by value.

    Args:
        field: The primary-key column.
        value: A value that passed the column's validator.

    Returns:
        A string that is equal for values SFMC would treat as the same key.
    """
    if field.type == "Number":
        return str(int(value))
    if field.type == "Decimal":
        return format(Decimal(str(value).strip()).normalize(), "f")
    if field.type == "Boolean":
        if isinstance(value, bool):
            return "1" if value else "0"
        return "1" if value.strip().lower() in {"true", "1", "yes"} else "0"
    if field.type == "Date":
        parsed = parse_date(str(value).strip())
        return parsed.isoformat() if parsed is not None else str(value)
    text = _text_like(value)
    return (text if text is not None else str(value)).rstrip(" ").casefold()
