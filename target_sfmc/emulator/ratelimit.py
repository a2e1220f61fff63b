"""Sliding-window request rate limiter (requests per rolling second)."""

from __future__ import annotations

import threading
import time
from collections import deque


class SlidingWindowLimiter:
    """Admit at most ``rate`` requests in any window of ``window`` seconds.

    Only admitted requests count toward the window; rejected ones do not.

    Args:
        rate: Requests allowed per window; None disables limiting.
        window: Window length in seconds.
    """

    def __init__(self, rate: float | None, window: float = 1.0) -> None:
        """Create a limiter with an empty window."""
        if rate is not None and rate <= 0:
            raise ValueError(f"rate_limit must be positive, got {rate!r}.")
        self.rate = rate
        self.window = window
        self._lock = threading.Lock()
        self._admitted: deque[float] = deque()

    def allow(self, now: float | None = None) -> bool:
        """Decide whether a request arriving at ``now`` is admitted (and count it if so).

        Args:
            now: Arrival time on the `time.monotonic` clock; defaults to the current time.

        Returns:
            True if the request is within the limit.
        """
        if self.rate is None:
            return True
        at = time.monotonic() if now is None else now
        with self._lock:
            horizon = at - self.window
            admitted = self._admitted
            while admitted and admitted[0] <= horizon:
                admitted.popleft()
            if len(admitted) + 1 > self.rate:
                return False
            admitted.append(at)
            return True
