"""Loading through SFMC's synchronous rowset API: 50 rows a request, Contacts first.

A Data Extension's rows go out while the batch is read (:mod:`target_sfmc.loading.streaming`),
a few rowsets at a time, so that the requests in flight never run dry while the next records
are read; the batch ends when SFMC answered for all of them.

SFMC does not say which row of a refused rowset was wrong, so a refused rowset is split in
halves and each half resent (upserts are idempotent) until every refused row stands alone
with SFMC's own message.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from target_sfmc.errors import SfmcApiError
from target_sfmc.jsonio import encode_json
from target_sfmc.loading.base import UpsertLoader, is_row_error
from target_sfmc.loading.concurrency import chunk_by_size, run_all
from target_sfmc.loading.streaming import StreamingBatchLoad
from target_sfmc.records import DataExtensionRow, LoadResult, SfmcRejection

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient
    from target_sfmc.loading.contacts import ContactRegistry

SYNC_ROWS_PER_REQUEST = 50
SYNC_BYTES_PER_REQUEST = 4_000_000
# Rows read before reading waits for SFMC to confirm the batch (the SDK's batch size).
# Rows read before reading waits for SFMC to confirm the whole batch (and STATE may be emitted),
# unless batch_size_rows says otherwise. While the last rows of a batch are answered no new
# request starts, so a larger batch keeps the request budget busier when SFMC is slow.
SYNC_BATCH_ROWS = 100_000
# A Data Extension's pending rows sent as one job while reading: a few rowsets.
SYNC_ROWS_PER_JOB = 10 * SYNC_ROWS_PER_REQUEST


class SyncRowLoader(UpsertLoader):
    """Upserts a Data Extension's rows through rowsets; creates their Contacts first."""

    def __init__(
        self,
        client: SfmcClient,
        executor: Executor,
        pipeline: Executor,
        contacts: ContactRegistry,
        *,
        describe: Callable[[str], str],
        on_confirmed: Callable[[int], None],
    ) -> None:
        """Create the loader.

        Args:
            client: SFMC client.
            executor: Shared pool for requests sent side by side.
            pipeline: Pool that runs the jobs sent while reading; they wait on request jobs,
                which never wait on them.
            contacts: The run's Contact registry.
            describe: Names a DE key for error messages (adds the stream).
            on_confirmed: Told how many rows SFMC confirmed, as each load finishes.
        """
        super().__init__(client, executor, describe=describe, on_confirmed=on_confirmed)
        self.pipeline = pipeline
        self.contacts = contacts

    def records_per_batch(self, batch_size_rows: int | None) -> int:
        """Records read before reading waits for every confirmation.

        Args:
            batch_size_rows: The setting, if set.

        Returns:
            The batch size.
        """
        return batch_size_rows or SYNC_BATCH_ROWS

    def open_batch(self) -> StreamingBatchLoad:
        """Start a batch whose rows are sent, a few rowsets at a time, while it is read.

        Returns:
            The batch's load.
        """
        return StreamingBatchLoad(self, send_at=SYNC_ROWS_PER_JOB)

    def rows_per_job(self) -> int:
        """Pending rows of a Data Extension sent as one job while reading.

        Returns:
            A few rowsets' worth.
        """
        return SYNC_ROWS_PER_JOB

    def jobs_wanted(self) -> int:
        """Jobs kept unfinished: enough rowsets for the limiter's working in-flight limit.

        Returns:
            How many jobs.
        """
        rowsets_per_job = SYNC_ROWS_PER_JOB // SYNC_ROWS_PER_REQUEST
        return math.ceil(self.client.transport.limiter.in_flight.limit / rowsets_per_job) + 1

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
