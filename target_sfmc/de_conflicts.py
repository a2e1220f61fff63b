"""Where an existing Data Extension and a stream disagree: primary keys, column types, sizes.

Used when a stream's SCHEMA meets its Data Extension (a warning per disagreement) and by
``--plan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from target_sfmc.de_columns import CONTEXT_FOLDED, MAX_DECIMAL_PRECISION, decimal_scale
from target_sfmc.de_values import always_fits

if TYPE_CHECKING:
    from target_sfmc.data_extensions import DataExtension
    from target_sfmc.de_columns import Column, PropertyShape
    from target_sfmc.de_tables import TableSpec


def mismatches(de: DataExtension, spec: TableSpec) -> list[str]:
    """Where an existing Data Extension and a stream disagree: primary keys and types.

    Args:
        de: The Data Extension.
        spec: The columns the stream sends.

    Returns:
        One sentence per disagreement.
    """
    problems: list[str] = []
    expected = {name.casefold() for name in spec.primary_keys}
    actual = {name.casefold() for name in de.primary_keys}
    if expected != actual:
        problems.append(
            f"data extension '{de.key}' has primary key {_names(de.primary_keys)} but the "
            f"stream's rows are keyed by {_names(spec.primary_keys)}; SFMC will refuse them."
        )
    for existing, column, conflict in conflicts(de, spec):
        problems.append(
            f"column '{existing.name}' of data extension '{de.key}' is "
            f"{existing.short()} but the stream sends {column.short()}: {conflict.reason}."
        )
    return problems


def conflicts(de: DataExtension, spec: TableSpec) -> list[tuple[Column, Column, Conflict]]:
    """The columns whose type may refuse values the stream sends.

    Args:
        de: The Data Extension.
        spec: The columns the stream sends.

    Returns:
        ``(existing column, the stream's column, conflict)`` per conflict.
    """
    found = []
    for folded, column in spec.columns.items():
        existing = de.columns.get(folded)
        if existing is None or folded in CONTEXT_FOLDED:
            continue
        conflict = type_conflict(existing, column, spec.shapes.get(folded))
        if conflict is not None:
            found.append((existing, column, conflict))
    return found


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(f"'{n}'" for n in names) if names else "none"


_TEXT_LIKE = frozenset({"Text", "EmailAddress", "Phone", "Locale"})
_NUMERIC = frozenset({"Number", "Decimal"})
_INT32_DIGITS = 10


@dataclass(frozen=True)
class Conflict:
    """Why values a stream sends may not fit an existing column."""

    reason: str
    every_value: bool  # every value is refused, not only some


def type_conflict(
    existing: Column, wanted: Column, shape: PropertyShape | None = None
) -> Conflict | None:
    """Tell whether values of the type the schema gives fit an existing column.

    Sizes count only where the schema declares them (``maxLength``, ``multipleOf``, bounds):
    the default sizes of created columns are a guess, and every value is checked anyway.

    Args:
        existing: The Data Extension's column.
        wanted: The column the stream's schema gives.
        shape: The property's schema, when the column comes from one.

    Returns:
        The conflict, or None when the values fit (or may: SFMC converts text).
    """
    if existing.type == wanted.type or (existing.type == "Text" and wanted.type in _TEXT_LIKE):
        return _size_conflict(existing, wanted, shape)
    if existing.type == "Text":
        return None  # numbers, booleans and dates are written as text
    if existing.type == "Decimal" and wanted.type == "Number":
        whole = (existing.length or 18) - (existing.scale or 0)
        if whole >= _INT32_DIGITS:
            return None
        return Conflict("values with more digits are rejected", every_value=False)
    if existing.type == "Number" and wanted.type == "Decimal":
        return Conflict("values with a fraction or beyond 32 bits are rejected", every_value=False)
    if wanted.type == "Text":
        return Conflict(f"text that is not a valid {existing.type} is rejected", every_value=False)
    return Conflict(f"{wanted.type} values are rejected", every_value=True)


def _size_conflict(
    existing: Column, wanted: Column, shape: PropertyShape | None
) -> Conflict | None:
    keywords = shape.keywords if shape is not None else {}
    if existing.type in _TEXT_LIKE:
        declared = keywords.get("maxLength")
        if isinstance(declared, int) and existing.length and declared > existing.length:
            return Conflict(
                f"values longer than {existing.length} characters are rejected", every_value=False
            )
        return None
    if existing.type == "Decimal":
        scale = decimal_scale(keywords.get("multipleOf"))
        if scale is not None and scale > (existing.scale or 0):
            return Conflict(
                f"values with more than {existing.scale or 0} digits after the point are rejected",
                every_value=False,
            )
        if wanted.scale == 0 and wanted.length == MAX_DECIMAL_PRECISION:
            return _whole_digits_conflict(existing, shape)
    return None


def _whole_digits_conflict(existing: Column, shape: PropertyShape | None) -> Conflict | None:
    if shape is None or always_fits(existing, shape):
        return None
    return Conflict("values with more digits are rejected", every_value=False)
