"""What a record becomes on its way to SFMC, and what SFMC made of it.

A record is routed to one or more *outcomes*: a Data Extension row (to upsert, or to delete),
a Journey entry event, a Journey exit, a skip (not sent, with a reason) or a mapping refusal
(cannot be turned into a row). Rows, events and exits that SFMC refuses come back as
:class:`SfmcRejection`; a :class:`LoadResult` counts what SFMC confirmed. Nothing here does
I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from target_sfmc.fastpath.rows import AttributeRow

    # A mapped row: Title Case name -> value (a dict, or a fast-path row that reads like one).
    Attributes = dict[str, Any] | AttributeRow

# Why a record was skipped (each is a counter in the summary and a dead-letter reason).
MISSING_IDENTIFIER = "missing_identifier"
UNMAPPED_EVENT = "unmapped_event"
UNSUPPORTED_TYPE = "unsupported_type"
UNCONFIGURED_STREAM = "unconfigured_stream"
FILTERED = "filtered"  # dropped by a stream map
# Dead-letter reason of a row that SFMC or the mapping refused.
REJECTED = "rejected"
# Dead-letter reason of a Contact SFMC would not create (its row was loaded).
CONTACT_REFUSED = "contact_refused"
_ABSENT: Any = object()


class DataExtensionRow(msgspec.Struct, gc=False):
    """One row to upsert into a Data Extension; ``values`` always include the key columns.

    With ``delete``, the row with these keys is deleted instead (its values are its keys).
    A Struct: rows are made by the hundred thousand, and one is built and freed in a call.
    """

    data_extension_key: str
    keys: dict[str, Any]
    values: Attributes
    contact_key: str | None = None  # set when a Contact must exist before the row
    records: int = 1  # source records merged into this row
    # The merged records' own values, in input order (None while the row is one record's).
    parts: list[Attributes] | None = None
    delete: bool = False
    # The primary key, when the row's maker computed it already (see :attr:`primary_key`).
    known_primary_key: tuple[Any, ...] | None = None

    @property
    def primary_key(self) -> tuple[Any, ...]:
        """The row's identity within its Data Extension (text compared as SFMC does: any case)."""
        if self.known_primary_key is not None:
            return self.known_primary_key
        keys = self.keys
        if len(keys) == 1:  # the common case, without a generator
            (value,) = keys.values()
            return (key_value_folded(value),)
        return tuple([key_value_folded(value) for value in keys.values()])

    def merge(self, later: DataExtensionRow) -> bool:
        """Merge a later record's row for the same key, when that keeps every value checked.

        The later row may add columns and repeat values, but not change one: the merged row
        then holds every value of every record, so SFMC checks each of them, and storing it
        equals upserting the records one after the other.

        Args:
            later: The later row (same Data Extension and primary key).

        Returns:
            True when merged; False when the later row changes a value, or deletes what this
            one upserts (or the reverse), and must be sent after this one.
        """
        if later.delete is not self.delete:
            return False
        get = self.values.get
        for name, value in later.values.items():
            current = get(name, _ABSENT)
            if current is not _ABSENT and current != value:
                return False
        if self.parts is None:
            self.parts = [self.values]
        self.parts.append(later.values)
        self.values = {**self.values, **later.values}
        self.records += 1
        return True

    def split(self) -> list[DataExtensionRow]:
        """The rows of the records merged into this one, in input order.

        Returns:
            One row per record (this row itself when it is one record's).
        """
        if self.parts is None:
            return [self]
        return [
            DataExtensionRow(
                self.data_extension_key,
                self.keys,
                values,
                self.contact_key,
                delete=self.delete,
                known_primary_key=self.known_primary_key,
            )
            for values in self.parts
        ]


def folded_expression(variable: str) -> str:
    """A Python expression: a key value as SFMC compares keys (text in any case).

    Text is case-folded; ASCII text without capitals (lower case, or digits only) is its
    own case fold, so it is not copied (rows are made by the hundred thousand, and each copy
    is memory to allocate and free). Anything else is compared as it is. Generated row
    builders inline it; :func:`key_value_folded` is the same expression as a function.

    Args:
        variable: The name of the variable holding the value.

    Returns:
        The expression.
    """
    v = variable
    return (
        f"(({v} if {v}.isascii() and ({v}.islower() or {v}.isdigit()) else {v}.casefold()) "
        f"if type({v}) is str else {v})"
    )


def _folding_function() -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {}
    exec(f"def key_value_folded(value):\n    return {folded_expression('value')}", namespace)  # noqa: S102
    return namespace["key_value_folded"]


# A key value as SFMC compares keys (see folded_expression).
key_value_folded = _folding_function()


@dataclass(slots=True)
class JourneyEvent:
    """One Journey Builder entry event."""

    event_definition_key: str
    contact_key: str
    data: dict[str, Any]
    secondary: bool = False  # a second delivery of a record already counted elsewhere


@dataclass(slots=True)
class JourneyExit:
    """Take a contact out of a journey (``journey_key`` is the journey's key)."""

    journey_key: str
    contact_key: str
    secondary: bool = False  # a second delivery of a record already counted elsewhere


@dataclass(slots=True)
class Skipped:
    """A record that is not sent, with the reason (never an error)."""

    reason: str
    row: Attributes = field(default_factory=dict)
    destination: str | None = None
    secondary: bool = False  # a second delivery of a record already counted elsewhere


@dataclass(slots=True)
class MappingRefusal:
    """A record the mapping cannot turn into a row; handled by ``row_error_policy``."""

    message: str
    row: Attributes = field(default_factory=dict)
    destination: str | None = None
    secondary: bool = False  # a second delivery of a record already counted elsewhere


Outcome = DataExtensionRow | JourneyEvent | JourneyExit | Skipped | MappingRefusal


@dataclass
class SfmcRejection:
    """A row, event or exit that SFMC refused (or that could not be sent), with SFMC's words."""

    item: DataExtensionRow | JourneyEvent | JourneyExit
    message: str
    error_code: Any = None


@dataclass
class LoadResult:
    """What SFMC confirmed for one destination (counts only: confirmed rows are let go)."""

    written: int = 0
    merged: int = 0
    deleted: int = 0  # rows deleted, contacts taken out of a journey for a deleted record
    extra_written: int = 0  # second deliveries (a Segment track also sent as a Journey event)
    rejected: list[SfmcRejection] = field(default_factory=list)
    # Contacts SFMC would not create; their rows were loaded all the same.
    contacts_refused: list[SfmcRejection] = field(default_factory=list)

    def confirm_rows(self, rows: list[DataExtensionRow]) -> LoadResult:
        """Count confirmed rows (the fast path for whole requests).

        Args:
            rows: Confirmed rows.

        Returns:
            This result.
        """
        self.written += len(rows)
        self.merged += sum(row.records for row in rows) - len(rows)
        return self

    def confirm(self, items: Iterable[DataExtensionRow | JourneyEvent | JourneyExit]) -> LoadResult:
        """Count items SFMC confirmed; a row merged from n records also counts n-1 merges.

        Args:
            items: Confirmed rows, events or exits (a first-delivery exit is a deletion).

        Returns:
            This result.
        """
        for item in items:
            if isinstance(item, DataExtensionRow):
                if item.delete:
                    self.deleted += 1
                else:
                    self.written += 1
                self.merged += item.records - 1
            elif item.secondary:
                self.extra_written += 1
            elif isinstance(item, JourneyExit):
                self.deleted += 1
            else:
                self.written += 1
        return self

    def extend(self, other: LoadResult) -> None:
        """Add another result to this one.

        Args:
            other: The result to add.
        """
        self.written += other.written
        self.merged += other.merged
        self.deleted += other.deleted
        self.extra_written += other.extra_written
        self.rejected.extend(other.rejected)
        self.contacts_refused.extend(other.contacts_refused)
