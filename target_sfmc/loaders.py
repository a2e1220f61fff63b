"""Loading strategies: sync rowsets, async jobs, contacts and Journey events (SPEC §5)."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from target_sfmc.errors import RetriesExhaustedError, SfmcApiError, TargetSfmcError
from target_sfmc.routing import DataExtensionRow
from target_sfmc.transport import encode_json

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient
    from target_sfmc.routing import JourneyEvent

LOGGER = logging.getLogger("target-sfmc.loader")

SYNC_ROWS_PER_REQUEST = 50
SYNC_BYTES_PER_REQUEST = 4_000_000
ASYNC_ROWS_PER_REQUEST = 32_000
ASYNC_BYTES_PER_REQUEST = 4_000_000
EVENTS_PER_BATCH_REQUEST = 100
DEADLOCK_MARKER = "Rerun the transaction."
NO_KNOWN_FIELD_MESSAGE = "At least one existing field is required"
MAX_POLL_INTERVAL_SECONDS = 2.0
MIN_POLL_INTERVAL_SECONDS = 0.05

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Rejection:
    """A row or event SFMC (or the mapping) refused, with SFMC's words."""

    item: DataExtensionRow | JourneyEvent
    message: str
    error_code: Any = None


@dataclass
class LoadResult:
    """What SFMC confirmed for one destination (counts only: confirmed rows are let go)."""

    written: int = 0
    merged: int = 0
    extra_written: int = 0  # second deliveries (a Segment track also sent as a Journey event)
    rejected: list[Rejection] = field(default_factory=list)

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
        """Add another result to this one."""
        self.written += other.written
        self.merged += other.merged
        self.extra_written += other.extra_written
        self.rejected.extend(other.rejected)


def wait_all(
    futures: Iterable[Future[R]], on_result: Callable[[R], object] | None = None
) -> list[R]:
    """Wait for every future, then re-raise the first failure.

    Args:
        futures: Submitted work.
        on_result: Told each successful result as it is collected (also when another fails).

    Returns:
        Results in submission order.
    """
    results: list[R] = []
    error: BaseException | None = None
    for future in futures:
        # Wait for every job so nothing is still writing when the batch reports back.
        try:
            results.append(future.result())
        except BaseException as exc:  # noqa: BLE001
            error = error or exc
        else:
            if on_result is not None:
                on_result(results[-1])
    if error is not None:
        raise error
    return results


def run_all(executor: Executor, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Run ``function`` over ``items`` concurrently and re-raise the first failure.

    The first item runs in the calling thread, which waits for all of them anyway: an async
    job that polls SFMC then holds no pool thread that another job's upload is waiting for.

    Args:
        executor: Shared thread pool.
        function: Work for one item.
        items: Inputs.

    Returns:
        Results in input order.
    """
    pending = list(items)
    if not pending:
        return []
    others = [executor.submit(function, item) for item in pending[1:]]
    here: Future[R] = Future()
    try:
        here.set_result(function(pending[0]))
    except BaseException as exc:  # noqa: BLE001 - re-raised by wait_all, after the others
        here.set_exception(exc)
    return wait_all([here, *others])


def chunk_by_size(encoded: Sequence[bytes], max_items: int, max_bytes: int) -> list[range]:
    """Split encoded items into consecutive ranges within item and byte limits.

    Args:
        encoded: Encoded items.
        max_items: Most items per chunk.
        max_bytes: Most bytes per chunk (an item larger than this gets a chunk alone).

    Returns:
        Index ranges, in order, covering every item once.
    """
    chunks: list[range] = []
    start = 0
    size = 0
    for index, item in enumerate(encoded):
        item_size = len(item) + 1
        if index > start and (index - start >= max_items or size + item_size > max_bytes):
            chunks.append(range(start, index))
            start, size = index, 0
        size += item_size
    if start < len(encoded):
        chunks.append(range(start, len(encoded)))
    return chunks


def is_row_error(error: SfmcApiError) -> bool:
    """Tell a problem with the rows sent from a problem with the request or the DE.

    Args:
        error: SFMC's answer.

    Returns:
        True when SFMC complained about row contents (types, lengths, keys, fields).
    """
    if error.status != 400:  # noqa: PLR2004
        return False
    # Decided by structure, never by words that could come from a user's DE key: SFMC lists
    # row problems in additionalErrors; the one row problem it reports bare is a row with
    # no column the DE knows.
    return bool(error.additional_errors) or error.sfmc_message.startswith(NO_KNOWN_FIELD_MESSAGE)


class DataExtensionLoader:
    """Upserts rows into one Data Extension and reports each row's outcome."""

    def __init__(
        self,
        client: SfmcClient,
        executor: Executor,
        *,
        use_async_api: bool,
        async_timeout_seconds: float,
        describe: Callable[[str], str],
        on_confirmed: Callable[[int], None] = lambda _rows: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create the loader.

        Args:
            client: SFMC client.
            executor: Shared thread pool for concurrent requests.
            use_async_api: Use the async API instead of sync rowsets.
            async_timeout_seconds: Longest wait for one async request.
            describe: Names a DE key for error messages (adds the stream).
            on_confirmed: Told how many rows SFMC confirmed, as each load finishes.
            sleep: Sleep function (injectable for tests).
        """
        self.client = client
        self.executor = executor
        self.use_async_api = use_async_api
        self.async_timeout_seconds = async_timeout_seconds
        self.describe = describe
        self.on_confirmed = on_confirmed
        self._sleep = sleep
        self._bytes_per_row = 0.0
        self._seconds_per_row = 0.0  # how long SFMC took per row on the last async job

    def load(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        """Upsert rows and return only when SFMC confirmed (or refused) every one.

        Args:
            key: Data Extension external key.
            rows: Rows, at most one per primary key.

        Returns:
            Written and rejected rows.
        """
        if not rows:
            return LoadResult()
        try:
            result = (
                self._load_async(key, rows) if self.use_async_api else self._load_sync(key, rows)
            )
        except SfmcApiError as exc:
            raise exc.with_context(self.describe(key)) from None
        except RetriesExhaustedError as exc:
            raise RetriesExhaustedError(f"{exc} Loading {self.describe(key)}.") from None
        self.on_confirmed(result.written)
        return result

    # Sync rowsets
    def _load_sync(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        encoded = [encode_json({"keys": row.keys, "values": row.values}) for row in rows]
        chunks = chunk_by_size(encoded, SYNC_ROWS_PER_REQUEST, SYNC_BYTES_PER_REQUEST)
        result = LoadResult()
        for part in run_all(
            self.executor, lambda r: self._send_rowset(key, rows, encoded, list(r)), chunks
        ):
            result.extend(part)
        return result

    def _send_rowset(
        self, key: str, rows: list[DataExtensionRow], encoded: list[bytes], indexes: list[int]
    ) -> LoadResult:
        body = b"[" + b",".join(encoded[i] for i in indexes) + b"]"
        try:
            self.client.upsert_rowset(key, body)
        except SfmcApiError as exc:
            if not is_row_error(exc):
                raise
            if len(indexes) == 1:
                return LoadResult(
                    rejected=[Rejection(rows[indexes[0]], exc.message_for_row, exc.error_code)]
                )
            # SFMC does not say which row failed: resend halves (upserts are idempotent).
            middle = len(indexes) // 2
            result = self._send_rowset(key, rows, encoded, indexes[:middle])
            result.extend(self._send_rowset(key, rows, encoded, indexes[middle:]))
            return result
        return LoadResult().confirm_rows([rows[i] for i in indexes])

    # Async jobs
    def rows_per_async_request(self) -> int:
        """How many rows fit one async request, judged from the rows sent so far.

        Returns:
            At most 32,000; fewer when ~4 MB fills first.
        """
        if not self._bytes_per_row:
            return ASYNC_ROWS_PER_REQUEST
        fitting = int(ASYNC_BYTES_PER_REQUEST * 0.95 / self._bytes_per_row)
        return max(1, min(ASYNC_ROWS_PER_REQUEST, fitting))

    def _load_async(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        requests = self._async_requests(rows, list(range(len(rows))))
        result = LoadResult()
        for part in run_all(
            self.executor, lambda request: self._run_async_job(key, rows, *request), requests
        ):
            result.extend(part)
        return result

    def _async_requests(
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
        return self._async_requests(rows, indexes[:middle]) + self._async_requests(
            rows, indexes[middle:]
        )

    def _run_async_job(
        self, key: str, rows: list[DataExtensionRow], indexes: list[int], body: bytes
    ) -> LoadResult:
        result = LoadResult()
        pending = indexes
        rounds = self.client.transport.retry.max_attempts
        for attempt in range(1, rounds + 1):
            if attempt > 1:
                self._sleep(self.client.transport.retry.delay(attempt - 1))
                body = encode_json({"items": [rows[i].values for i in pending]})
            request_id = self.client.submit_async_upsert(key, body)
            status = self._wait_for_job(key, request_id, len(pending))
            state = str(status.get("requestStatus", ""))
            if state == "Error":
                LOGGER.warning(
                    "Async request %s for %s ended in Error (attempt %d of %d); resending %d rows.",
                    request_id,
                    self.describe(key),
                    attempt,
                    rounds,
                    len(pending),
                )
                continue
            has_errors = bool(status.get("hasErrors")) or status.get("resultStatus") == "Has Errors"
            if not has_errors:
                return result.confirm_rows([rows[i] for i in pending])
            items = self.client.async_results(request_id)
            retry: list[int] = []
            for position, index in enumerate(pending):
                item = items[position] if position < len(items) else None
                if item is None:
                    retry.append(index)  # outcome unknown: resending an upsert is safe
                elif str(item.get("status", "")).upper() == "OK":
                    result.confirm((rows[index],))
                elif DEADLOCK_MARKER in str(item.get("message", "")):
                    retry.append(index)
                else:
                    result.rejected.append(
                        Rejection(rows[index], _async_item_message(item), item.get("errorCode"))
                    )
            if not retry:
                return result
            LOGGER.warning(
                "%d rows of async request %s for %s must be resent (deadlock or no result).",
                len(retry),
                request_id,
                self.describe(key),
            )
            pending = retry
        raise TargetSfmcError(
            f"SFMC did not accept {len(pending)} rows for {self.describe(key)} after "
            f"{rounds} async attempts (jobs ended in Error or deadlocked); "
            "rerun from the last state: upserts are idempotent."
        )

    def _wait_for_job(self, key: str, request_id: str, rows: int) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + self.async_timeout_seconds
        # Poll when earlier jobs suggest this one is about done, then at a growing interval:
        # few status calls, and no long idle wait after SFMC finished. The estimate is SFMC's
        # own working time: time measured here would include polling lag and queueing, and
        # each late poll would then make the next one later.
        expected = self._seconds_per_row * rows
        delay = max(MIN_POLL_INTERVAL_SECONDS, 0.9 * expected)
        step = max(MIN_POLL_INTERVAL_SECONDS, 0.1 * expected)
        while True:
            envelope = self.client.async_status(request_id)
            status = envelope.get("status")
            if isinstance(status, dict) and status.get("requestStatus") in {
                "Complete",
                "Completed",
                "Error",
            }:
                worked = _working_seconds(status)
                if worked is None:
                    worked = time.monotonic() - started
                self._seconds_per_row = worked / max(rows, 1)
                return status
            if time.monotonic() + delay > deadline:
                raise TargetSfmcError(
                    f"Async request {request_id} for {self.describe(key)} did not finish within "
                    f"{self.async_timeout_seconds:.0f} s (async_timeout_seconds); its rows are "
                    "unconfirmed, so no state was emitted for them."
                )
            self._sleep(delay)
            delay, step = step, min(step * 1.5, MAX_POLL_INTERVAL_SECONDS)


def _working_seconds(status: dict[str, Any]) -> float | None:
    """How long SFMC worked on a finished async request (pickup to completion), if it says."""
    try:
        picked = dt.datetime.fromisoformat(status["pickupDateTime"])
        completed = dt.datetime.fromisoformat(status["completionDateTime"])
        seconds = (completed - picked).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _async_item_message(item: dict[str, Any]) -> str:
    details = [
        str(error.get("errorMessage"))
        for error in item.get("errors") or []
        if isinstance(error, dict) and error.get("errorMessage")
    ]
    message = str(item.get("message") or "rejected by SFMC")
    return f"{message} ({'; '.join(details)})" if details else message


@dataclass
class ContactRegistry:
    """Creates each Contact once per run, before its Identify rows (SPEC §5.3)."""

    client: SfmcClient
    executor: Executor
    _created: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure(self, contact_keys: Iterable[str]) -> dict[str, SfmcApiError]:
        """Create the contacts not created yet in this run.

        Args:
            contact_keys: Contact Keys the batch needs.

        Returns:
            Contact Key -> SFMC's refusal, for contacts SFMC would not create.
        """
        with self._lock:
            missing = sorted(set(contact_keys) - self._created)
        failures: dict[str, SfmcApiError] = {}

        def create(contact_key: str) -> None:
            try:
                self.client.create_contact(contact_key)
            except SfmcApiError as exc:
                if exc.status != 400:  # noqa: PLR2004
                    raise
                failures[contact_key] = exc
                return
            with self._lock:
                self._created.add(contact_key)

        run_all(self.executor, create, missing)
        return failures


@dataclass
class JourneyEventLoader:
    """Sends Journey entry events: the batch endpoint for several, the single one otherwise."""

    client: SfmcClient
    executor: Executor

    def load(self, definition_key: str, events: list[JourneyEvent]) -> LoadResult:
        """Send events for one definition and report each one's outcome.

        Args:
            definition_key: Event definition key.
            events: Events to send.

        Returns:
            Written and rejected events.
        """
        if len(events) == 1:
            return self._send_one(events[0])
        chunks = [
            events[i : i + EVENTS_PER_BATCH_REQUEST]
            for i in range(0, len(events), EVENTS_PER_BATCH_REQUEST)
        ]
        result = LoadResult()
        for part in run_all(self.executor, lambda c: self._send_batch(definition_key, c), chunks):
            result.extend(part)
        return result

    def _send_one(self, event: JourneyEvent) -> LoadResult:
        try:
            self.client.fire_event(event.contact_key, event.event_definition_key, event.data)
        except SfmcApiError as exc:
            if exc.status != 400:  # noqa: PLR2004
                raise
            return LoadResult(rejected=[Rejection(event, exc.message_for_row, exc.error_code)])
        return LoadResult().confirm((event,))

    def _send_batch(self, definition_key: str, events: list[JourneyEvent]) -> LoadResult:
        members = [{"contactKey": e.contact_key, "data": e.data} for e in events]
        try:
            answers = self.client.fire_events_batch(definition_key, members)
        except SfmcApiError as exc:
            if exc.status != 400:  # noqa: PLR2004
                raise
            return LoadResult(
                rejected=[Rejection(e, exc.message_for_row, exc.error_code) for e in events]
            )
        result = LoadResult()
        for position, event in enumerate(events):
            answer = answers[position] if position < len(answers) else {}
            if answer.get("eventInstanceId"):
                result.confirm((event,))
            else:
                result.rejected.append(
                    Rejection(
                        event,
                        str(answer.get("message") or "SFMC did not queue the event"),
                        answer.get("errorcode"),
                    )
                )
        return result
