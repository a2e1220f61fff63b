"""What every way of loading rows shares: the interface a sink drives, and SFMC's row errors.

A sink picks one :class:`RowLoader` when it starts (the rowset API, or the async API), opens
a :class:`BatchLoad` per batch, hands it a Data Extension's pending rows whenever they reach
``send_at`` (sent while reading), and calls ``finish`` when the batch is full: ``finish``
returns only once SFMC confirmed or refused every row.
"""

from __future__ import annotations

import abc
import contextlib
from typing import TYPE_CHECKING, Any, Protocol

from target_sfmc.errors import RetriesExhaustedError, SfmcApiError
from target_sfmc.records import DataExtensionRow, LoadResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient

# A Data Extension's rows waiting in a batch, by primary key (one row per key).
PendingRows = dict[tuple[Any, ...], DataExtensionRow]

_BAD_REQUEST = 400
# The one row problem SFMC reports without additionalErrors: no column the DE knows.
NO_KNOWN_FIELD_MESSAGE = "At least one existing field is required"
UNSAVED_ROWS_CODE = 10006
UNSAVED_ROWS = "Unable to save rows"


class BatchLoad(Protocol):
    """One batch's rows on their way to SFMC."""

    send_at: int  # a DE's pending rows are sent (while reading) once they are this many

    def send(self, key: str, rows: PendingRows) -> None:
        """Send a Data Extension's pending rows now; reading goes on."""

    def holds(self, key: str, primary_key: tuple[Any, ...]) -> bool:
        """Tell whether a row for the key was sent and is not confirmed yet."""

    def finish(self, rounds: list[dict[str, PendingRows]], result: LoadResult) -> None:
        """Load the pending rounds in order; wait until SFMC answered for every row."""


class RowLoader(Protocol):
    """A way of loading rows (rowsets or async requests), chosen once per sink."""

    def records_per_batch(self, batch_size_rows: int | None) -> int:
        """Records read before reading waits for the whole batch to be confirmed."""

    def open_batch(self) -> BatchLoad:
        """Start a batch."""


class UpsertLoader(abc.ABC):
    """What both row loaders share: one load of a Data Extension's rows, start to finish."""

    def __init__(
        self,
        client: SfmcClient,
        executor: Executor,
        *,
        describe: Callable[[str], str],
        on_confirmed: Callable[[int], None],
    ) -> None:
        """Create the loader.

        Args:
            client: SFMC client.
            executor: Shared pool for requests sent side by side.
            describe: Names a DE key for error messages (adds the stream).
            on_confirmed: Told how many rows SFMC confirmed, as each load finishes.
        """
        self.client = client
        self.executor = executor
        self.describe = describe
        self.on_confirmed = on_confirmed

    def load(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        """Upsert rows and return only when SFMC confirmed (or refused) every one.

        Args:
            key: Data Extension external key.
            rows: Rows, at most one per primary key.

        Returns:
            What SFMC confirmed and refused.
        """
        result = self._before_upsert(rows)
        if rows:
            with loading_errors_named(self.describe(key)):
                result.extend(self._upsert(key, rows))
                settle_merged_rejections(result, lambda row: self._upsert(key, [row]))
        self.on_confirmed(result.written)
        return result

    def _before_upsert(self, rows: list[DataExtensionRow]) -> LoadResult:  # noqa: ARG002
        """What must happen before the rows go (nothing, unless a loader says otherwise)."""
        return LoadResult()

    @abc.abstractmethod
    def _upsert(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        """Send the rows and read back each one's outcome."""


def is_row_error(error: SfmcApiError) -> bool:
    """Tell a problem with the rows sent from a problem with the request or the DE.

    Decided by structure, never by words that could come from a user's DE key: SFMC lists
    row problems in ``additionalErrors``; the row problems it reports bare are a row with no
    column the DE knows, and "Unable to save rows" (code 10006) when it does not go away.

    Args:
        error: SFMC's answer.

    Returns:
        True when SFMC complained about row contents (types, lengths, keys, fields).
    """
    if error.status != _BAD_REQUEST:
        return False
    return (
        bool(error.additional_errors)
        or error.sfmc_message.startswith(NO_KNOWN_FIELD_MESSAGE)
        # A bare "Unable to save rows" still there after the retries: a row SFMC will not take.
        or (error.error_code == UNSAVED_ROWS_CODE and error.sfmc_message.startswith(UNSAVED_ROWS))
    )


def settle_merged_rejections(
    result: LoadResult, upsert_alone: Callable[[DataExtensionRow], LoadResult]
) -> LoadResult:
    """Send the records of a merged row SFMC refused one by one, in input order.

    SFMC refuses a row as a whole: which of the merged records was wrong, it does not say.
    Sent on their own, the good records land and only the bad ones are refused, as if every
    record had been upserted on its own.

    Args:
        result: A load's result; its refused merged rows are replaced by their records' own
            outcomes.
        upsert_alone: Upserts one row and returns its outcome.

    Returns:
        ``result``.
    """
    merged = [
        rejection
        for rejection in result.rejected
        if isinstance(rejection.item, DataExtensionRow) and rejection.item.parts
    ]
    if not merged:
        return result
    settled = {id(rejection) for rejection in merged}
    result.rejected = [rejection for rejection in result.rejected if id(rejection) not in settled]
    for rejection in merged:
        for row in rejection.item.split():  # type: ignore[union-attr] # rows, checked above
            result.extend(upsert_alone(row))
    return result


@contextlib.contextmanager
def loading_errors_named(destination: str) -> Iterator[None]:
    """Name the Data Extension and stream in an error that stops the load.

    Args:
        destination: For example ``data extension 'IDENTIFY' (stream 'users')``.

    Yields:
        Nothing; the load runs inside the block.

    Raises:
        SfmcApiError: SFMC's refusal, naming the destination.
        RetriesExhaustedError: Transient failures that never ended, naming the destination.
    """
    try:
        yield
    except SfmcApiError as exc:
        raise exc.with_context(destination) from None
    except RetriesExhaustedError as exc:
        raise RetriesExhaustedError(f"{exc} Loading {destination}.") from None
