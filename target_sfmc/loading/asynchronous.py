"""Loading through SFMC's asynchronous Data Extension API ("batching").

Rows are sent while the batch is still being read (:mod:`target_sfmc.loading.streaming`):
a request goes out as soon as a Data Extension has enough pending rows, and SFMC works on it
while more records are read. A request is a ``PUT`` of ``{"items": [...]}`` within SFMC's
row and size limits; its outcome is read by polling the request's status and, when it has
errors, its per-row results.

- A request that ends in ``Error``, and rows SFMC reports as deadlocked ("Rerun the
  transaction.") or gives no result for, are sent again with backoff: upserts are idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_sfmc.errors import TargetSfmcError
from target_sfmc.jsonio import encode_json
from target_sfmc.loading.base import UpsertLoader
from target_sfmc.loading.concurrency import run_all
from target_sfmc.loading.streaming import StreamingBatchLoad
from target_sfmc.records import DataExtensionRow, LoadResult, SfmcRejection

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Executor

    from backoff.types import Details

    from target_sfmc.client import SfmcClient

LOGGER = logging.getLogger("target-sfmc.loader")

ASYNC_ROWS_PER_REQUEST = 32_000
ASYNC_BYTES_PER_REQUEST = 4_000_000
# Rows are sent while reading, so a large batch costs no memory; it only moves the point
# where reading waits for every confirmation (and STATE can be emitted).
ASYNC_BATCH_ROWS = 500_000
# A small first request gets SFMC working early and measures the row size.
FIRST_REQUEST_ROWS = 2_000
DEADLOCK_MARKER = "Rerun the transaction."
# SFMC's default results page: a request this small has all its results in one page.
RESULTS_PAGE_ROWS = 50
# An Error status has turned Complete on a later poll: look again before resending.
ERROR_RECHECK_SECONDS = (0.5, 1.0, 2.0)
FINISHED_STATES = frozenset({"Complete", "Completed", "Error"})
MAX_POLL_INTERVAL_SECONDS = 2.0
MIN_POLL_INTERVAL_SECONDS = 0.05


class AsyncRowLoader(UpsertLoader):
    """Upserts a Data Extension's rows through async requests and reads back every outcome."""

    def __init__(
        self,
        client: SfmcClient,
        executor: Executor,
        pipeline: Executor,
        *,
        rows_per_request: int | None,
        timeout_seconds: float,
        describe: Callable[[str], str],
        on_confirmed: Callable[[int], None],
    ) -> None:
        """Create the loader.

        Args:
            client: SFMC client.
            executor: Shared pool for requests sent side by side.
            pipeline: Pool that runs whole requests (submit, poll, results); its jobs wait
                on request jobs, which never wait on them.
            rows_per_request: Most rows per request (``batch_size_rows``), or None for
                SFMC's limits.
            timeout_seconds: Longest wait for one request to finish.
            describe: Names a DE key for error messages (adds the stream).
            on_confirmed: Told how many rows SFMC confirmed, as each request finishes.
        """
        super().__init__(client, executor, describe=describe, on_confirmed=on_confirmed)
        self.pipeline = pipeline
        self.request_rows_cap = rows_per_request or ASYNC_ROWS_PER_REQUEST
        self.timeout_seconds = timeout_seconds
        self._bytes_per_row = 0.0
        self._seconds_per_row = 0.0  # how long SFMC took per row on the last request

    def records_per_batch(self, batch_size_rows: int | None) -> int:
        """Records read before reading waits for every confirmation: large, see above.

        Args:
            batch_size_rows: The setting (which here sizes requests), if set.

        Returns:
            The batch size.
        """
        return max(ASYNC_BATCH_ROWS, batch_size_rows or 0)

    def open_batch(self) -> StreamingBatchLoad:
        """Start a batch whose rows are sent while it is read.

        The first request is small: SFMC starts early and the row size gets measured.

        Returns:
            The batch's load.
        """
        return StreamingBatchLoad(self, send_at=min(FIRST_REQUEST_ROWS, self.request_rows_cap))

    def rows_per_job(self) -> int:
        """Pending rows sent as one request while reading.

        Returns:
            :meth:`rows_per_request`.
        """
        return self.rows_per_request()

    def jobs_wanted(self) -> int:
        """Requests kept unfinished: one per request the limiter lets be in flight.

        Returns:
            The limiter's working in-flight limit.
        """
        return self.client.transport.limiter.in_flight.limit

    def rows_per_request(self) -> int:
        """How many rows fit one request, judged from the rows sent so far.

        Returns:
            At most the request cap; fewer when ~4 MB fills first.
        """
        if not self._bytes_per_row:
            return self.request_rows_cap
        fitting = int(ASYNC_BYTES_PER_REQUEST * 0.95 / self._bytes_per_row)
        return max(1, min(self.request_rows_cap, fitting))

    def _upsert(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        result = LoadResult()
        requests = self._requests(rows, list(range(len(rows))))
        for part in run_all(
            self.executor, lambda request: self._run_request(key, rows, *request), requests
        ):
            result.extend(part)
        return result

    def _requests(
        self, rows: list[DataExtensionRow], indexes: list[int]
    ) -> list[tuple[list[int], bytes]]:
        """Encode rows as ``{"items": [...]}`` bodies within SFMC's row and size limits.

        The rows are encoded in one call (routing puts the key columns in the values, so a
        row's values are its flat item); a body over the limits is split in halves.
        """
        body = encode_json({"items": [rows[i].values for i in indexes]})
        self._bytes_per_row = max(self._bytes_per_row, len(body) / len(indexes))
        fits = len(body) <= ASYNC_BYTES_PER_REQUEST and len(indexes) <= ASYNC_ROWS_PER_REQUEST
        if fits or len(indexes) == 1:
            return [(indexes, body)]
        middle = len(indexes) // 2
        return self._requests(rows, indexes[:middle]) + self._requests(rows, indexes[middle:])

    def _run_request(
        self, key: str, rows: list[DataExtensionRow], indexes: list[int], body: bytes | None
    ) -> LoadResult:
        """Send one request, then resend (with backoff) the rows SFMC did not settle."""
        result = LoadResult()
        request = _Resend(indexes, body)
        retry = self.client.transport.retry

        def on_retry(details: Details) -> None:
            self.client.stats.count_retry()
            LOGGER.warning(
                "%d rows of an async request for %s must be resent (the job ended in Error, "
                "deadlocked or gave no result); attempt %d of %d in %.1f s.",
                len(request.indexes),
                self.describe(key),
                details["tries"] + 1,
                retry.max_attempts,
                details["wait"],
            )

        @retry.retrying(bool, on_retry)
        def attempt() -> list[int]:
            unsettled = self._attempt(key, rows, request, result)
            request.indexes = unsettled
            request.body = None
            return unsettled

        if attempt():
            raise TargetSfmcError(
                f"SFMC did not accept {len(request.indexes)} rows for {self.describe(key)} after "
                f"{retry.max_attempts} async attempts (jobs ended in Error or deadlocked); "
                "rerun from the last state: upserts are idempotent."
            )
        return result

    def _attempt(
        self, key: str, rows: list[DataExtensionRow], request: _Resend, result: LoadResult
    ) -> list[int]:
        """One round: submit, wait, read outcomes; return the rows to send again."""
        pending = request.indexes
        body = request.body or encode_json({"items": [rows[i].values for i in pending]})
        request_id = self.client.submit_async_upsert(key, body)
        status = self._wait(key, request_id, len(pending))
        if str(status.get("requestStatus", "")) == "Error":
            return pending
        has_errors = bool(status.get("hasErrors")) or status.get("resultStatus") == "Has Errors"
        if not has_errors:
            result.confirm_rows([rows[i] for i in pending])
            return []
        items = self.client.async_results(request_id, len(pending))
        unsettled: list[int] = []
        for index, item in zip(pending, items, strict=False):
            if DEADLOCK_MARKER in str(item.get("message", "")):
                unsettled.append(index)  # deadlocked: resending an upsert is safe
            elif str(item.get("status", "")).upper() == "OK":
                result.confirm((rows[index],))
            else:
                result.rejected.append(
                    SfmcRejection(rows[index], _item_message(item), item.get("errorCode"))
                )
        unknown = pending[len(items) :]
        if unknown and len(pending) > RESULTS_PAGE_ROWS:
            # Results past the first page could not be read with certainty: send those rows
            # again in requests whose results fit in one page, whatever SFMC's paging does.
            LOGGER.warning(
                "The results of %d rows of an async request for %s could not be read with "
                "certainty; sending them again in requests of %d rows.",
                len(unknown),
                self.describe(key),
                RESULTS_PAGE_ROWS,
            )
            chunks = [
                unknown[i : i + RESULTS_PAGE_ROWS]
                for i in range(0, len(unknown), RESULTS_PAGE_ROWS)
            ]
            for part in run_all(
                self.executor, lambda chunk: self._run_request(key, rows, chunk, None), chunks
            ):
                result.extend(part)
            return unsettled
        return unsettled + unknown  # outcome unknown: resent with backoff

    def _wait(self, key: str, request_id: str, rows: int) -> dict[str, Any]:
        """Poll until the request finished; return its status.

        Polls when earlier requests suggest this one is about done, then at a growing
        interval: few status calls, and no long idle wait after SFMC finished. The estimate
        is SFMC's own working time: time measured here would include polling lag, and each
        late poll would then make the next one later.
        """
        started = time.monotonic()
        deadline = started + self.timeout_seconds
        expected = self._seconds_per_row * rows
        delay = max(MIN_POLL_INTERVAL_SECONDS, 0.9 * expected)
        step = max(MIN_POLL_INTERVAL_SECONDS, 0.1 * expected)
        while True:
            envelope = self.client.async_status(request_id)
            status = envelope.get("status")
            if isinstance(status, dict) and status.get("requestStatus") in FINISHED_STATES:
                status = self._confirm_error(request_id, status)
                worked = _working_seconds(status)
                if worked is None:
                    worked = time.monotonic() - started
                self._seconds_per_row = worked / max(rows, 1)
                return status
            if time.monotonic() + delay > deadline:
                raise TargetSfmcError(
                    f"Async request {request_id} for {self.describe(key)} did not finish within "
                    f"{self.timeout_seconds:.0f} s (async_timeout_seconds); its rows are "
                    "unconfirmed, so no state was emitted for them."
                )
            time.sleep(delay)
            delay, step = step, min(step * 1.5, MAX_POLL_INTERVAL_SECONDS)

    def _confirm_error(self, request_id: str, status: dict[str, Any]) -> dict[str, Any]:
        """Poll an ``Error`` again a few times: SFMC has reported Error, then Complete."""
        for pause in ERROR_RECHECK_SECONDS:
            if status.get("requestStatus") != "Error":
                return status
            time.sleep(pause)
            later = self.client.async_status(request_id).get("status")
            if isinstance(later, dict) and later.get("requestStatus") in FINISHED_STATES:
                status = later
        return status


@dataclass
class _Resend:
    """The rows of one request still to be settled, and their encoded body if still valid."""

    indexes: list[int]
    body: bytes | None


def _working_seconds(status: dict[str, Any]) -> float | None:
    """How long SFMC worked on a finished request (pickup to completion), if it says."""
    try:
        picked = dt.datetime.fromisoformat(status["pickupDateTime"])
        completed = dt.datetime.fromisoformat(status["completionDateTime"])
        seconds = (completed - picked).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _item_message(item: dict[str, Any]) -> str:
    details = [
        str(error.get("errorMessage"))
        for error in item.get("errors") or []
        if isinstance(error, dict) and error.get("errorMessage")
    ]
    message = str(item.get("message") or "rejected by SFMC")
    return f"{message} ({'; '.join(details)})" if details else message
