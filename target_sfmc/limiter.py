"""Process-wide request limiter: a ceiling on requests per second and on requests in flight."""

from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


# A 5% margin: a request thread that loses the CPU for a few tens of milliseconds between
# its scheduled start and the send must not squeeze N+1 arrivals into SFMC's second.
_MARGIN = 1.05
_WINDOW_SECONDS = _MARGIN


class RateLimiter:
    """Spaces request starts evenly and caps concurrency, shared by every stream and thread.

    Starts are spaced ``1 / requests_per_second`` apart rather than allowed in bursts, so
    that network jitter cannot push more than the ceiling into any one-second window at
    SFMC; a sliding one-second window is checked as well.
    """

    def __init__(
        self,
        requests_per_second: float,
        max_concurrent_requests: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create a limiter.

        Args:
            requests_per_second: Ceiling on request starts per second.
            max_concurrent_requests: Ceiling on requests in flight.
            clock: Monotonic clock (injectable for tests).
            sleep: Sleep function (injectable for tests).
        """
        if requests_per_second <= 0 or max_concurrent_requests <= 0:
            raise ValueError("requests_per_second and max_concurrent_requests must be positive")
        self.requests_per_second = requests_per_second
        self.spacing = _MARGIN / requests_per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent_requests)
        self._next_start = 0.0
        self._recent: deque[float] = deque()

    def _reserve_start(self) -> float:
        """Reserve the next start time and return how long to wait for it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            while self._recent and start - self._recent[0] >= _WINDOW_SECONDS:
                self._recent.popleft()
            if len(self._recent) >= self.requests_per_second:
                start = max(start, self._recent[0] + _WINDOW_SECONDS)
            self._recent.append(start)
            self._next_start = start + self.spacing
            return start - now

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one in-flight slot for the duration of a request, started on schedule.

        Yields:
            Nothing; the request runs inside the block.
        """
        with self._slots:
            wait = self._reserve_start()
            if wait > 0:
                self._sleep(wait)
            yield
