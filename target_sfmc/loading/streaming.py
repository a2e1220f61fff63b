"""Sending a batch's rows while it is still being read, and waiting for them at its end.

A Data Extension's pending rows go out as one job (a whole load: rowsets or an async request)
as soon as there are enough of them, while more records are read; the batch ends when every
job has answered, so STATE never runs ahead of an unconfirmed row.

- Jobs for one Data Extension run side by side, except that a job sharing a primary key with
  an unfinished one waits for it, so the later row for a key still wins.
- Unconfirmed rows are held in memory only up to a cap (jobs and rows); past it, reading waits
  for the oldest job. The job cap follows the limiter's working in-flight limit, so a slow SFMC
  still has enough work queued to keep the request budget busy.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from target_sfmc.loading.concurrency import wait_all

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from target_sfmc.loading.base import PendingRows
    from target_sfmc.records import DataExtensionRow, LoadResult

# Sent but unconfirmed rows kept in memory.
MAX_UNFINISHED_ROWS = 64_000
# Unfinished jobs at least; more while SFMC's latency asks for more requests in flight.
MIN_UNFINISHED_JOBS = 16


class StreamingLoader(Protocol):
    """What a streaming batch needs of its loader."""

    pipeline: Executor

    def load(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        """Load rows and return once SFMC answered for every one."""

    def rows_per_job(self) -> int:
        """How many of a Data Extension's pending rows make one job."""

    def jobs_wanted(self) -> int:
        """How many unfinished jobs keep the request budget busy now."""


@dataclass
class InFlightRequest:
    """A job sent while reading and not yet confirmed."""

    job: Future[LoadResult]
    data_extension_key: str
    primary_keys: set[tuple[Any, ...]]


@dataclass
class StreamingBatchLoad:
    """A batch whose rows go to SFMC while it is read."""

    loader: StreamingLoader
    send_at: int
    jobs: list[Future[LoadResult]] = field(default_factory=list)
    in_flight: list[InFlightRequest] = field(default_factory=list)

    def send(self, key: str, rows: PendingRows) -> None:
        """Send a Data Extension's pending rows as one job; reading goes on.

        Args:
            key: Data Extension key.
            rows: Its pending rows by primary key.
        """
        keys = set(rows)
        self.in_flight = [request for request in self.in_flight if not request.job.done()]
        earlier = [
            request.job
            for request in self.in_flight
            if request.data_extension_key == key and not keys.isdisjoint(request.primary_keys)
        ]
        self.send_at = self.loader.rows_per_job()
        job = self.loader.pipeline.submit(self._load_after, earlier, key, list(rows.values()))
        self.jobs.append(job)
        self.in_flight.append(InFlightRequest(job, key, keys))
        most_jobs = max(MIN_UNFINISHED_JOBS, self.loader.jobs_wanted())
        while (
            len(self.in_flight) > most_jobs
            or sum(len(request.primary_keys) for request in self.in_flight) > MAX_UNFINISHED_ROWS
        ):
            # Bounds memory. Any job that ends frees room: waiting for the oldest one instead
            # would let the others finish meanwhile and leave the budget idle.
            done, _ = wait([request.job for request in self.in_flight], return_when=FIRST_COMPLETED)
            for job in done:
                job.result()  # raises early if a job failed
            self.in_flight = [request for request in self.in_flight if request.job not in done]

    def holds(self, key: str, primary_key: tuple[Any, ...]) -> bool:
        """Tell whether a job with a row for the key is sent and not confirmed yet.

        Args:
            key: Data Extension key.
            primary_key: A row's primary key.

        Returns:
            True when a row for the key is in flight.
        """
        return any(
            request.data_extension_key == key
            and primary_key in request.primary_keys
            and not request.job.done()
            for request in self.in_flight
        )

    def _load_after(
        self, earlier: list[Future[LoadResult]], key: str, rows: list[DataExtensionRow]
    ) -> LoadResult:
        for job in earlier:
            job.result()
        return self.loader.load(key, rows)

    def finish(self, rounds: list[dict[str, PendingRows]], result: LoadResult) -> None:
        """Send what is pending, round after round, then wait for every job of the batch.

        A job waits for earlier ones that share a key with it, so rounds keep their order.

        Args:
            rounds: Data Extension key -> its rows by primary key, per round.
            result: Where each job's outcome is added as it is collected, so that a failure
                keeps what SFMC confirmed before it.
        """
        for pending in rounds:
            for key, rows in pending.items():
                self.send(key, rows)
        wait_all(self.jobs, on_result=result.extend)
