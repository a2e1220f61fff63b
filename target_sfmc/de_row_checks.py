"""Generated checks: one compiled function per row shape for its values, one for projections.

Nothing here does I/O. The compiled row check calls a column's full check (see
:mod:`target_sfmc.de_values`) only for a value that does not surely fit at once; the compiled
projection keeps only the columns a Data Extension has.
"""

from __future__ import annotations

import decimal
from typing import TYPE_CHECKING, Any

from msgspec import UNSET
from msgspec.structs import astuple

from target_sfmc.de_columns import (
    BOOLEAN,
    DATE,
    DECIMAL,
    INT32_MAX,
    INT32_MIN,
    NUMBER,
    SIZED_TEXT,
    Column,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def fits_at_once(column: Column, value: str = "v") -> str:
    """A Python expression on ``value`` that is true when it surely fits (no call needed).

    Only integers taken from the column are written into it; any other value goes to the
    column's full check. A Decimal column's expression assigns ``text``: that name is taken.

    Args:
        column: The column.
        value: The name of the variable holding the value (not ``text``).

    Returns:
        The expression.
    """
    v = value
    if column.type in SIZED_TEXT and column.length:
        return f"type({v}) is str and len({v}) <= {int(column.length)}"
    if column.type == NUMBER:
        return f"type({v}) is int and {INT32_MIN} <= {v} <= {INT32_MAX}"
    if column.type == BOOLEAN:
        return f"{v} is True or {v} is False"
    if column.type == DATE:
        return f"type({v}) is str"
    if column.type == DECIMAL:
        precision = int(column.length or 18)
        scale = min(int(column.scale or 0), precision)
        whole = precision - scale
        # A Decimal's adjusted() is the position of its first digit; its text (never in
        # exponent form here) shows the digits after the point.
        return (
            f"(type({v}) is int and -{10**whole} < {v} < {10**whole}) or (type({v}) is Decimal "
            f"and {v}.adjusted() < {whole} and 'E' not in (text := str({v})) and "
            f"('.' not in text or len(text) - text.find('.') <= {scale + 1}))"
        )
    return "False"


def compile_row_check(
    checks: list[tuple[str, Column, Callable[[Any], str | None]]],
    positions: Mapping[str, int] | None,
) -> Callable[[Any], tuple[int, str] | None]:
    """One function checking every checked column of a row, with the common cases inline.

    Rows pass by the hundred thousand: a loop calling one check per column costs more than
    mapping the row. The generated function tests each value inline (a string's length, an
    integer's range) and calls the column's full check only when that test fails.

    Args:
        checks: ``(attribute name, column, full check)`` per checked column.
        positions: For rows of one fast-path row type, each name's position in the row's
            tuple; None for rows that are dicts (looked up by name).

    Returns:
        ``row -> (index into checks, reason)`` for the first value that does not fit, or None.
    """
    lines = ["def run(row):"]
    lines.append("    row_values = astuple(row)" if positions is not None else "    get = row.get")
    for index, (name, column, _check) in enumerate(checks):
        if positions is not None:
            if name not in positions:
                continue
            lines.append(f"    v = row_values[{int(positions[name])}]")
            present = "v is not None and v is not UNSET"
        else:
            lines.append(f"    v = get(NAMES[{index}])")
            present = "v is not None"
        lines.append(f"    if {present} and not ({fits_at_once(column)}):")
        lines.append(f"        reason = CHECKS[{index}](v)")
        lines.append("        if reason is not None:")
        lines.append(f"            return {index}, reason")
    lines.append("    return None")
    namespace: dict[str, Any] = {
        "astuple": astuple,
        "UNSET": UNSET,
        "Decimal": decimal.Decimal,
        "NAMES": tuple(name for name, _column, _check in checks),
        "CHECKS": tuple(check for _name, _column, check in checks),
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - code built above from integers only
    return namespace["run"]


def compile_projection(kept: list[tuple[str, int]]) -> Callable[[Any], dict[str, Any]]:
    """One function turning a fast-path row into a dict of only the kept attributes.

    Args:
        kept: ``(name, position in the row's tuple)`` of each attribute to keep.

    Returns:
        ``row -> {name: value}`` without the other attributes, nulls and missing values.
    """
    lines = ["def project(row):", "    row_values = astuple(row)", "    out = {}"]
    for index, (_name, position) in enumerate(kept):
        lines.append(f"    v = row_values[{int(position)}]")
        lines.append("    if v is not None and v is not UNSET:")
        lines.append(f"        out[NAMES[{index}]] = v")
    lines.append("    return out")
    namespace: dict[str, Any] = {
        "astuple": astuple,
        "UNSET": UNSET,
        "NAMES": tuple(name for name, _position in kept),
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - code built above from integers only
    return namespace["project"]
