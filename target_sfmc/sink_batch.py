"""A sink's batch: what one batch of a stream has read, until SFMC answered for it.

Rows wait per Data Extension and primary key, in rounds (a record that changes a pending row's
values goes into a later round); entry events, exits, refusals and skips wait beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from target_sfmc.loading.base import BatchLoad, PendingRows
    from target_sfmc.records import JourneyEvent, JourneyExit, MappingRefusal, Skipped


@dataclass(repr=False)
class Batch:
    """What one batch of a stream has read, until SFMC answered for it."""

    load: BatchLoad
    # Data Extension key -> its first round of rows; later rounds only where records changed
    # values of a row already pending.
    rows: dict[str, PendingRows] = field(default_factory=dict)
    later: dict[str, list[PendingRows]] = field(default_factory=dict)
    events: dict[str, list[JourneyEvent]] = field(default_factory=dict)
    # Entry events and exits of streams that do both, in input order.
    journey: list[JourneyEvent | JourneyExit] = field(default_factory=list)
    refused: list[MappingRefusal] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def send(self, key: str) -> None:
        """Send a Data Extension's first round now; its next round moves up.

        Args:
            key: Data Extension key.
        """
        self.load.send(key, self.rows.pop(key))
        later = self.later.get(key)
        if later:
            self.rows[key] = later.pop(0)
            if not later:
                del self.later[key]

    def holds(self, key: str, primary_key: tuple[Any, ...]) -> bool:
        """Tell whether a row for this key is pending or unconfirmed in this batch.

        Args:
            key: Data Extension key.
            primary_key: The row's primary key.

        Returns:
            True when a later row for the key must wait for this batch.
        """
        pending = self.rows.get(key)
        if pending is not None and primary_key in pending:
            return True
        return any(primary_key in rows for rows in self.later.get(key, ())) or (
            self.load.holds(key, primary_key)
        )

    def rounds(self) -> list[dict[str, PendingRows]]:
        """The pending rows, round by round, each round to be loaded after the one before.

        Returns:
            The rounds (the first holds every Data Extension's first round).
        """
        depth = max((len(later) for later in self.later.values()), default=0)
        return [
            self.rows,
            *(
                {key: later[index] for key, later in self.later.items() if index < len(later)}
                for index in range(depth)
            ),
        ]

    def __repr__(self) -> str:
        """Counts only: the SDK logs the batch context at DEBUG, never show row values."""
        rows = sum(len(by_key) for by_key in self.rows.values())
        return f"<batch: {rows} rows pending>"
