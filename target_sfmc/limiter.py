"""Request limiter: a ceiling on requests per second (per SFMC account) and in flight (per process).

With a budget store (the default), the requests-per-second ceiling is the account's, shared by
every process that uses the account (:mod:`target_sfmc.budget`). Without one, or once the store
fails, the process paces itself alone at its share.
"""

from __future__ import annotations

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


class RateLimiter:
    """Spaces request starts evenly and caps concurrency, shared by every stream and thread.

    Starts are spaced ``1 / requests_per_second`` apart rather than allowed in bursts, so
    that network jitter cannot push more than the ceiling into any one-second window at
    SFMC. Alone, the process keeps the schedule itself and checks a sliding one-second
    window as well; with an :class:`~target_sfmc.budget.AccountBudget`, the schedule is the
    account's, in the shared store. The in-flight cap is always this process's own.
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
            max_concurrent_requests: Ceiling on requests in flight.
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
        self._slots = threading.BoundedSemaphore(max_concurrent_requests)
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
            if self._budget is not None:
                self._budget.lost(exc)
            return False
        return True

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot for the duration of a request, started on schedule.

        Yields:
            Nothing; the request runs inside the block.
        """
        with self._slots:
            if not self._take_shared_turn():
                start, wait = self._reserve_start()
                if wait > 0:
                    self._sleep(wait)
                self._admit(start)
            yield
