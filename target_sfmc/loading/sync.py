"""Loading through SFMC's synchronous rowset API: 50 rows a request, Contacts first.

SFMC does not say which row of a refused rowset was wrong, so a refused rowset is split in
halves and each half resent (upserts are idempotent) until every refused row stands alone
with SFMC's own message.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from target_sfmc.errors import SfmcApiError
from target_sfmc.jsonio import encode_json
from target_sfmc.loading.base import PendingRows, UpsertLoader, is_row_error
from target_sfmc.loading.concurrency import chunk_by_size, run_all
from target_sfmc.records import DataExtensionRow, LoadResult, SfmcRejection

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient
    from target_sfmc.loading.contacts import ContactRegistry

SYNC_ROWS_PER_REQUEST = 50
SYNC_BYTES_PER_REQUEST = 4_000_000
# Rows read before reading waits for SFMC to confirm the batch (the SDK's batch size).
SYNC_BATCH_ROWS = 10_000


class SyncRowLoader(UpsertLoader):
    """Upserts a Data Extension's rows through rowsets; creates their Contacts first."""

    def __init__(
        self,
        client: SfmcClient,
        executor: Executor,
        contacts: ContactRegistry,
        *,
        describe: Callable[[str], str],
        on_confirmed: Callable[[int], None],
    ) -> None:
        """Create the loader.

        Args:
            client: SFMC client.
            executor: Shared pool for requests sent side by side.
            contacts: The run's Contact registry.
            describe: Names a DE key for error messages (adds the stream).
            on_confirmed: Told how many rows SFMC confirmed, as each load finishes.
        """
        super().__init__(client, executor, describe=describe, on_confirmed=on_confirmed)
        self.contacts = contacts

    def records_per_batch(self, sdk_batch_size: int) -> int:
        """Records read before the batch is loaded: the SDK's own batch size.

        Args:
            sdk_batch_size: ``batch_size_rows``, or the sink's default.

        Returns:
            The batch size.
        """
        return sdk_batch_size

    def open_batch(self) -> SyncBatchLoad:
        """Start loading a batch (rows wait until the batch is full).

        Returns:
            The batch's load.
        """
        return SyncBatchLoad(self)

    def _upsert(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        encoded = [encode_json({"keys": row.keys, "values": row.values}) for row in rows]
        chunks = chunk_by_size(encoded, SYNC_ROWS_PER_REQUEST, SYNC_BYTES_PER_REQUEST)
        result = LoadResult()
        for part in run_all(
            self.executor, lambda r: self._send_rowset(key, rows, encoded, list(r)), chunks
        ):
            result.extend(part)
        return result

    def _send_rowset(
        self,
        key: str,
        rows: list[DataExtensionRow],
        encoded: list[bytes],
        indexes: list[int],
        *,
        whole: bool = True,
    ) -> LoadResult:
        body = b"[" + b",".join(encoded[i] for i in indexes) + b"]"
        try:
            # Halves of a refused rowset are not retried: its retries were spent already.
            retry_unsaved = whole or len(indexes) == 1
            self.client.upsert_rowset(key, body, retry_unsaved=retry_unsaved)
        except SfmcApiError as exc:
            if not is_row_error(exc):
                raise
            if len(indexes) == 1:
                return LoadResult(
                    rejected=[SfmcRejection(rows[indexes[0]], exc.message_for_row, exc.error_code)]
                )
            middle = len(indexes) // 2
            result = self._send_rowset(key, rows, encoded, indexes[:middle], whole=False)
            result.extend(self._send_rowset(key, rows, encoded, indexes[middle:], whole=False))
            return result
        return LoadResult().confirm_rows([rows[i] for i in indexes])

    def _before_upsert(self, rows: list[DataExtensionRow]) -> LoadResult:
        """Create the rows' Contacts; a refused Contact does not hold back its row."""
        wanted = {row.contact_key for row in rows if row.contact_key is not None}
        if not wanted:
            return LoadResult()
        failures = self.contacts.ensure(wanted)
        return LoadResult(
            contacts_refused=[
                SfmcRejection(
                    row,
                    f"contact not created: {failures[row.contact_key].message_for_row}",
                    failures[row.contact_key].error_code,
                )
                for row in rows
                if row.contact_key in failures
            ]
        )


class SyncBatchLoad:
    """A batch for the rowset API: nothing is sent before the batch is full."""

    # Never reached: rows wait for the end of the batch.
    send_at = sys.maxsize

    def __init__(self, loader: SyncRowLoader) -> None:
        """Start the batch.

        Args:
            loader: The sink's loader.
        """
        self._loader = loader

    def holds(self, key: str, primary_key: tuple[Any, ...]) -> bool:
        """Rowset batches send nothing before they are full.

        Args:
            key: Data Extension key.
            primary_key: A row's primary key.

        Returns:
            False: no row is sent and unconfirmed while reading.
        """
        del key, primary_key
        return False

    def send(self, key: str, rows: PendingRows) -> None:
        """Rowset batches never send while reading.

        Args:
            key: Data Extension key.
            rows: Its pending rows.

        Raises:
            AssertionError: Always: ``send_at`` is never reached.
        """
        raise AssertionError(f"rowset batches are loaded whole ({key}, {len(rows)} rows)")

    def finish(self, rounds: list[dict[str, PendingRows]], result: LoadResult) -> None:
        """Load every pending row, round by round, Data Extension by Data Extension.

        Args:
            rounds: Data Extension key -> its rows by primary key, per round.
            result: Where confirmations and refusals are added, part by part, so that a
                failure keeps what SFMC confirmed before it.
        """
        for pending in rounds:
            for key, rows_by_key in pending.items():
                result.extend(self._loader.load(key, list(rows_by_key.values())))
