"""Request limiter: a ceiling on requests per second (per SFMC account) and in flight (per process).

With a budget store (the default), the requests-per-second ceiling is the account's, shared by
every process that uses the account (:mod:`target_sfmc.budget`). Without one, or once the store
fails, the process paces itself alone at its share.

How many requests may be in flight follows the latency SFMC shows. By Little's law, keeping
``rate`` requests a second going when each takes ``latency`` seconds needs ``rate * latency``
of them in flight: a fixed number either starves the budget when SFMC is slow or keeps
needless connections open when it is fast. ``max_concurrent_requests`` is the ceiling.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING

from target_sfmc.budget_store import BudgetStoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from target_sfmc.budget import AccountBudget, SharedPacer


# A 5% margin: a request thread that loses the CPU for a few tens of milliseconds between
# its scheduled start and the send must not squeeze N+1 arrivals into SFMC's second.
_MARGIN = 1.05
_WINDOW_SECONDS = _MARGIN
# Float sums of the spacing land a hair before the window's end: treat that as the end.
_CLOCK_SLACK = 1e-9
# In flight before any latency is known.
INITIAL_IN_FLIGHT = 4
# Above Little's law: latencies vary from request to request, and a few requests wait in the
# schedule for their start while holding their place.
_LATENCY_HEADROOM = 1.5
_WAITING_FOR_START = 2
# Weight of the newest latency in the running estimate: follows a change within a few dozen
# requests, while one slow answer moves it little.
_LATENCY_WEIGHT = 0.1


class InFlightLimit:
    """A ceiling on requests in flight that follows SFMC's latency (Little's law, with headroom).

    The working limit starts at :data:`INITIAL_IN_FLIGHT` and, after each request, becomes
    ``rate * latency * headroom`` plus the requests waiting for their start, never above the
    configured ceiling nor below one.
    """

    def __init__(self, requests_per_second: float, ceiling: int) -> None:
        """Create the limit.

        Args:
            requests_per_second: The rate the requests are paced at.
            ceiling: ``max_concurrent_requests``: never more in flight than this.
        """
        self.ceiling = ceiling
        self.requests_per_second = requests_per_second
        self.limit = min(ceiling, INITIAL_IN_FLIGHT)
        self.latency: float | None = None  # the running estimate, seconds
        self.peak = 0  # the most requests ever in flight at once
        self._in_flight = 0
        self._changed = threading.Condition()

    def acquire(self) -> None:
        """Wait until one more request may be in flight, and count it."""
        with self._changed:
            while self._in_flight >= self.limit:
                self._changed.wait()
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)

    def release(self, latency: float | None) -> None:
        """Count a request out, and learn from its latency.

        Args:
            latency: Seconds from its start to its answer; None when it failed without one
                (a timeout says nothing about SFMC's usual latency).
        """
        with self._changed:
            self._in_flight -= 1
            if latency is not None:
                self._learn(latency)
            # Waiters wake first come, first served: a request that waits long holds back the
            # job it belongs to, and reading waits for whole jobs.
            self._changed.notify(max(0, self.limit - self._in_flight))

    def set_rate(self, requests_per_second: float) -> None:
        """Pace at another rate from now on (the shared store failed: this process's share).

        Args:
            requests_per_second: The new rate.
        """
        with self._changed:
            self.requests_per_second = requests_per_second
            if self.latency is not None:
                self._learn(self.latency)
            self._changed.notify(max(0, self.limit - self._in_flight))

    def _learn(self, latency: float) -> None:
        estimate = self.latency
        estimate = (
            latency if estimate is None else estimate + _LATENCY_WEIGHT * (latency - estimate)
        )
        self.latency = estimate
        wanted = math.ceil(self.requests_per_second * estimate * _LATENCY_HEADROOM)
        self.limit = max(1, min(self.ceiling, wanted + _WAITING_FOR_START))


class RateLimiter:
    """Spaces request starts evenly and caps concurrency, shared by every stream and thread.

    Starts are spaced ``1 / requests_per_second`` apart rather than allowed in bursts, so
    that network jitter cannot push more than the ceiling into any one-second window at
    SFMC. Alone, the process keeps the schedule itself and checks a sliding one-second
    window as well; with an :class:`~target_sfmc.budget.AccountBudget`, the schedule is the
    account's, in the shared store. The in-flight limit (:class:`InFlightLimit`) is always this
    process's own.
    """

    def __init__(
        self,
        requests_per_second: float,
        max_concurrent_requests: int,
        *,
        budget: AccountBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a limiter.

        Args:
            requests_per_second: Ceiling on request starts per second.
            max_concurrent_requests: Ceiling on requests in flight; the working limit
                follows the latency below it.
            budget: The account's shared budget; None paces this process alone.
            clock: Monotonic clock (injectable for tests).
            sleep: Sleep function (injectable for tests).
        """
        if requests_per_second <= 0 or max_concurrent_requests <= 0:
            raise ValueError("requests_per_second and max_concurrent_requests must be positive")
        self._budget = budget
        self._shared: SharedPacer | None = None
        if budget is not None:
            self._shared = budget.pacer(_MARGIN, sleep)
            if self._shared is None:
                requests_per_second = budget.fallback_rps
        self.requests_per_second = requests_per_second
        self.spacing = _MARGIN / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self.in_flight = InFlightLimit(requests_per_second / _MARGIN, max_concurrent_requests)
        self._next_start = 0.0
        self._recent: deque[float] = deque()

    def _reserve_start(self) -> tuple[float, float]:
        """Reserve the next evenly spaced start; return it and how long to wait for it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self.spacing
            return start, start - now

    def _admit(self, start: float) -> None:
        """Admit a request at the time it really starts, keeping the sliding-window ceiling.

        A thread can wake after its reserved start (another thread held the interpreter):
        its request must not then land in the same second as the ones reserved after it, so
        the window counts real starts and a late start pushes the schedule back.

        Args:
            start: The reserved start (a clock that stands still never starts anything late).
        """
        while True:
            with self._lock:
                now = max(self._clock(), start)
                while self._recent and now + _CLOCK_SLACK >= self._recent[0] + _WINDOW_SECONDS:
                    self._recent.popleft()
                if len(self._recent) < self.requests_per_second:
                    self._recent.append(now)
                    self._next_start = max(self._next_start, now + self.spacing)
                    return
                wait = max(self._recent[0] + _WINDOW_SECONDS - now, _CLOCK_SLACK)
            self._sleep(wait)
            start = now + wait

    @property
    def shared(self) -> bool:
        """The schedule is the account's, kept in the shared store."""
        return self._shared is not None

    def _take_shared_turn(self) -> bool:
        """Wait for a start in the account's schedule; False when pacing alone.

        Returns:
            True when the shared store gave the start.
        """
        shared = self._shared
        if shared is None:
            return False
        try:
            shared.wait_turn()
        except BudgetStoreError as exc:
            with self._lock:
                if self._shared is shared and self._budget is not None:
                    self._shared = None
                    self.requests_per_second = self._budget.fallback_rps
                    self.spacing = _MARGIN / self.requests_per_second
                    self.in_flight.set_rate(self.requests_per_second / _MARGIN)
            if self._budget is not None:
                self._budget.lost(exc)
            return False
        return True

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight place for the duration of a request, started on schedule.

        Yields:
            Nothing; the request runs inside the block.
        """
        self.in_flight.acquire()
        latency: float | None = None
        try:
            if not self._take_shared_turn():
                start, wait = self._reserve_start()
                if wait > 0:
                    self._sleep(wait)
                self._admit(start)
            started = self._clock()
            yield
            latency = self._clock() - started
        finally:
            self.in_flight.release(latency)
