"""Async DE requests: a queue of jobs going ``Pending`` → ``Executing`` → ``Complete``/``Error``.

A job becomes due ``delay`` seconds after submission. Due jobs are processed strictly in
submission order, exactly once, by the background worker, or by an inspection call
(`AsyncJobQueue.process_due`) that wants the data settled. Status and results calls look at a
job without processing anything (`AsyncJobQueue.peek`), as SFMC answers them at once; the old
behaviour, where such a call first processed the due jobs up to its own (`AsyncJobQueue.get`),
stays available as the ``async_status_blocks`` mode.

What a status call *reports* can lag behind the job (`StatusScript`): SFMC may answer without a
``status`` object before pickup, say ``Pending``/``Executing`` for a while, or report ``Error``
for a job that then turns ``Complete``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from target_sfmc.emulator.faults import JobFaults
    from target_sfmc.emulator.rows import CompiledDataExtension, RowWriter

logger = logging.getLogger(__name__)

PENDING = "Pending"
EXECUTING = "Executing"
COMPLETE = "Complete"
ERROR = "Error"
#: Reported state of a status answer without a ``status`` object.
MISSING = "missing"

_PROGRESS = {MISSING: 0, PENDING: 1, EXECUTING: 2, COMPLETE: 3, ERROR: 3}


def sfmc_timestamp(moment: datetime) -> str:
    """Format a timestamp the way the async API does (no zone, fractional seconds).

    Args:
        moment: An aware or naive datetime.

    Returns:
        For example ``2017-10-27T16:00:38.980``.
    """
    return moment.replace(tzinfo=None).isoformat(timespec="milliseconds")


@dataclass
class AsyncJob:
    """One submitted async insert/upsert request.

    Attributes:
        request_id: The id returned at submission.
        cde: Target DE.
        insert: True for insert (POST), False for upsert (PUT).
        faults: Fault decisions made at submission.
        seq: Submission number.
        due: `time.monotonic` time after which the job is processed.
        items: Submitted rows (released after processing).
        count: Number of submitted rows.
        clean: The rows were mapped and checked at submission.
        call_time: Submission time (UTC).
        status: ``Pending``, ``Executing``, ``Complete`` or ``Error``.
        pickup_time: When processing started.
        completion_time: When processing ended.
        results: One result item per submitted row after processing.
        has_errors: Whether any row (or the job) failed.
        polls: Status calls answered for the job.
        transient_errors: ``Error`` answers given for the job although it completed.
    """

    request_id: str
    cde: CompiledDataExtension
    insert: bool
    faults: JobFaults
    seq: int
    due: float
    items: list[dict[str, Any]] | None
    count: int
    clean: bool = False
    call_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    status: str = PENDING
    pickup_time: datetime | None = None
    completion_time: datetime | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    has_errors: bool = False
    polls: int = 0
    transient_errors: int = 0

    @property
    def finished(self) -> bool:
        """Whether the job reached ``Complete`` or ``Error``."""
        return self.status in {COMPLETE, ERROR}


@dataclass(frozen=True)
class StatusScript:
    """How far a job's reported status lags behind the job, counted in status calls.

    The first ``missing`` calls answer without a ``status`` object, the next ``pending`` report
    ``Pending`` and the next ``executing`` report ``Executing`` — never a state beyond the job's
    own. Then the first ``transient_error`` calls that would report ``Complete`` report
    ``Error`` instead.

    Attributes:
        missing: Calls answered without a ``status`` object.
        pending: Calls then reporting ``Pending``.
        executing: Calls then reporting ``Executing``.
        transient_error: Calls reporting ``Error`` for a job that completed.
    """

    missing: int = 0
    pending: int = 0
    executing: int = 0
    transient_error: int = 0


class AsyncJobQueue:
    """Holds async jobs and processes them when due.

    Args:
        writer: Applies rows.
        delay_s: Seconds between submission and processing.
    """

    def __init__(self, writer: RowWriter, delay_s: float) -> None:
        """Create an empty queue (the worker starts with `start`)."""
        self.writer = writer
        self.delay_s = delay_s
        self._jobs: dict[str, AsyncJob] = {}
        self._pending: deque[AsyncJob] = deque()
        self._seq = 0
        self._cond = threading.Condition()
        self._process_lock = threading.Lock()
        self._stopping = False
        self._worker: threading.Thread | None = None

    def submit(
        self,
        cde: CompiledDataExtension,
        items: list[dict[str, Any]],
        *,
        insert: bool,
        faults: JobFaults,
        clean: bool = False,
    ) -> AsyncJob:
        """Queue a job.

        Args:
            cde: Target DE.
            items: Flat rows.
            insert: Insert (True) or upsert (False).
            faults: The job's fault decisions.
            clean: The rows are already mapped and checked (see `RowWriter.apply_async`).

        Returns:
            The pending job.
        """
        with self._cond:
            self._seq += 1
            job = AsyncJob(
                request_id=str(uuid.uuid4()),
                cde=cde,
                insert=insert,
                faults=faults,
                seq=self._seq,
                due=time.monotonic() + self.delay_s,
                items=items,
                count=len(items),
                clean=clean,
            )
            self._jobs[job.request_id] = job
            self._pending.append(job)
            self._cond.notify_all()
        return job

    def peek(self, request_id: str) -> AsyncJob | None:
        """Return a job as it is now, processing nothing.

        Args:
            request_id: Id from submission.

        Returns:
            The job, or None if unknown.
        """
        with self._cond:
            return self._jobs.get(request_id)

    def report(self, job: AsyncJob, script: StatusScript) -> str:
        """Count one status call for a job and decide the state it reports.

        Args:
            job: The job asked about.
            script: How the reported state lags (`StatusScript`).

        Returns:
            `MISSING`, `PENDING`, `EXECUTING`, `COMPLETE` or `ERROR`.
        """
        with self._cond:
            job.polls += 1
            poll = job.polls
            actual = job.status
            scripted: str | None = None
            for state, upto in (
                (MISSING, script.missing),
                (PENDING, script.missing + script.pending),
                (EXECUTING, script.missing + script.pending + script.executing),
            ):
                if poll <= upto:
                    scripted = state
                    break
            if scripted is not None and _PROGRESS[scripted] < _PROGRESS[actual]:
                return scripted
            if actual == COMPLETE and job.transient_errors < script.transient_error:
                job.transient_errors += 1
                return ERROR
            return actual

    def get(self, request_id: str) -> AsyncJob | None:
        """Return a job after processing the due jobs up to and including it.

        Jobs run in submission order; later jobs are left to the worker, so a status call
        answers as soon as its own job is done.

        Args:
            request_id: Id from submission.

        Returns:
            The job, or None if unknown.
        """
        self.process_due(until=request_id)
        with self._cond:
            return self._jobs.get(request_id)

    def process_due(self, now: float | None = None, until: str | None = None) -> int:
        """Process due jobs in submission order.

        Args:
            now: `time.monotonic` time; defaults to the current time.
            until: Stop once the job with this request id has been processed.

        Returns:
            How many jobs were processed by this call.
        """
        done = 0
        with self._process_lock:
            at = time.monotonic() if now is None else now
            while True:
                with self._cond:
                    wanted = self._jobs.get(until) if until is not None else None
                    if wanted is not None and wanted.finished:
                        return done
                    if not self._pending or self._pending[0].due > at:
                        return done
                    job = self._pending.popleft()
                self._run(job)
                done += 1

    def _run(self, job: AsyncJob) -> None:
        job.pickup_time = datetime.now(UTC)
        job.status = EXECUTING
        items = job.items or []
        try:
            results, has_errors = self.writer.apply_async(
                job.cde, items, insert=job.insert, faults=job.faults, clean=job.clean
            )
        except Exception:
            logger.exception("Async job %s failed inside the emulator", job.request_id)
            results, has_errors, final = [], True, ERROR
        else:
            final = ERROR if job.faults.error else COMPLETE
        job.results = results
        job.has_errors = has_errors
        job.items = None
        job.completion_time = datetime.now(UTC)
        job.status = final  # last: a reader that sees the final state sees its results

    def start(self) -> None:
        """Start the background worker (idempotent)."""
        with self._cond:
            if self._worker is not None:
                return
            self._stopping = False
            self._worker = threading.Thread(
                target=self._work, name="sfmc-emulator-async", daemon=True
            )
            self._worker.start()

    def stop(self) -> None:
        """Stop the background worker; pending jobs stay queued."""
        with self._cond:
            worker = self._worker
            self._stopping = True
            self._cond.notify_all()
        if worker is not None:
            worker.join(timeout=5)
        with self._cond:
            self._worker = None

    def _work(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                if not self._pending:
                    self._cond.wait()
                    continue
                wait = self._pending[0].due - time.monotonic()
                if wait > 0:
                    self._cond.wait(timeout=wait)
                    continue
            self.process_due()
