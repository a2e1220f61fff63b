"""What a record becomes on its way to SFMC, and what SFMC made of it.

A record is routed to one or more *outcomes*: a Data Extension row, a Journey entry event, a
skip (not sent, with a reason) or a mapping refusal (cannot be turned into a row). Rows and
events that SFMC refuses come back as :class:`SfmcRejection`; a :class:`LoadResult` counts
what SFMC confirmed. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from target_sfmc.fastpath.rows import AttributeRow

    # A mapped row: Title Case name -> value (a dict, or a fast-path row that reads like one).
    Attributes = dict[str, Any] | AttributeRow

# Why a record was skipped (each is a counter in the summary and a dead-letter reason).
MISSING_IDENTIFIER = "missing_identifier"
UNMAPPED_EVENT = "unmapped_event"
UNSUPPORTED_TYPE = "unsupported_type"
UNCONFIGURED_STREAM = "unconfigured_stream"
# Dead-letter reason of a row that SFMC or the mapping refused.
REJECTED = "rejected"


@dataclass(slots=True)
class DataExtensionRow:
    """One row to upsert into a Data Extension; ``values`` always include the key columns."""

    data_extension_key: str
    keys: dict[str, Any]
    values: Attributes
    contact_key: str | None = None  # set when a Contact must exist before the row
    records: int = 1  # source records merged into this row

    @property
    def primary_key(self) -> tuple[Any, ...]:
        """The row's identity within its Data Extension (text compared as SFMC does: any case)."""
        keys = self.keys
        if len(keys) == 1:  # the common case, without a generator
            (value,) = keys.values()
            return (value.casefold(),) if type(value) is str else (value,)
        return tuple(v.casefold() if type(v) is str else v for v in keys.values())


@dataclass(slots=True)
class JourneyEvent:
    """One Journey Builder entry event."""

    event_definition_key: str
    contact_key: str
    data: dict[str, Any]
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


Outcome = DataExtensionRow | JourneyEvent | Skipped | MappingRefusal


@dataclass
class SfmcRejection:
    """A row or event that SFMC refused (or that could not be sent), with SFMC's words."""

    item: DataExtensionRow | JourneyEvent
    message: str
    error_code: Any = None


@dataclass
class LoadResult:
    """What SFMC confirmed for one destination (counts only: confirmed rows are let go)."""

    written: int = 0
    merged: int = 0
    extra_written: int = 0  # second deliveries (a Segment track also sent as a Journey event)
    rejected: list[SfmcRejection] = field(default_factory=list)

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

    def confirm(self, items: Iterable[DataExtensionRow | JourneyEvent]) -> LoadResult:
        """Count items SFMC confirmed; a row merged from n records also counts n-1 merges.

        Args:
            items: Confirmed rows or events.

        Returns:
            This result.
        """
        for item in items:
            if isinstance(item, DataExtensionRow):
                self.written += 1
                self.merged += item.records - 1
            elif item.secondary:
                self.extra_written += 1
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
        self.extra_written += other.extra_written
        self.rejected.extend(other.rejected)
