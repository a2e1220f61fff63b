"""HTTP transport: one shared session, the shared limiter and transient retries (SPEC §5.4)."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import requests
from requests.adapters import HTTPAdapter

from target_sfmc.errors import RetriesExhaustedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_sfmc.limiter import RateLimiter

LOGGER = logging.getLogger("target-sfmc.http")

_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=str)


def encode_json(payload: Any) -> bytes:
    """Serialize a payload exactly (decimals keep their digits).

    Args:
        payload: JSON-compatible value; Decimals allowed.

    Returns:
        UTF-8 JSON bytes.
    """
    return _encoder.encode(payload)


@dataclass
class ApiStats:
    """Counters for the end-of-run summary; updated from many threads."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_call(self, endpoint: str) -> None:
        """Count one request sent."""
        with self.lock:
            self.calls += 1
            self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1

    def count_retry(self, *, throttled: bool) -> None:
        """Count one retry (and whether SFMC throttled us)."""
        with self.lock:
            self.retries += 1
            if throttled:
                self.throttled += 1


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter."""

    max_attempts: int = 8
    base_seconds: float = 0.5
    cap_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return random.uniform(0, min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1)))  # noqa: S311


MAX_RETRY_AFTER_SECONDS = 120.0


def retry_after_seconds(response: requests.Response) -> float | None:
    """Read ``Retry-After`` from the header, else ``retryAfter`` from the body.

    Args:
        response: A 429 or 503 response.

    Returns:
        Seconds to wait, or None when SFMC did not say.
    """
    header = response.headers.get("Retry-After")
    if header:
        try:
            return _bounded_wait(float(header))
        except ValueError:
            pass
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("retryAfter"), (int, float)):
        return _bounded_wait(float(body["retryAfter"]))
    return None


def _bounded_wait(seconds: float) -> float | None:
    # A nonsensical Retry-After (negative, inf, a day) must not stall or crash the run.
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


class Transport:
    """Sends requests under the shared limiter and retries transient failures."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 120.0,
        user_agent: str = "target-sfmc",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create the transport.

        Args:
            limiter: The process-wide limiter.
            retry: Retry policy.
            timeout_seconds: Read timeout per request.
            user_agent: User-Agent header.
            sleep: Sleep function (injectable for tests).
        """
        self.limiter = limiter
        self.retry = retry or RetryPolicy()
        self.timeout = (10.0, timeout_seconds)
        self.stats = ApiStats()
        self._sleep = sleep
        self.session = requests.Session()
        pool = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
        self.session.mount("https://", pool)
        self.session.mount("http://", pool)
        self.session.headers["User-Agent"] = user_agent

    def send(
        self,
        method: str,
        url: str | Callable[[], tuple[str, dict[str, str]]],
        *,
        endpoint: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        retry_on: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        """Send one request, retrying 429/5xx, timeouts and dropped connections.

        Args:
            method: HTTP method.
            url: Full URL, or a function giving URL and headers for each attempt (so that
                a retry after a long wait carries a token that is still valid).
            endpoint: Short endpoint name for logs and stats.
            body: Encoded body.
            headers: Extra headers (may carry the bearer token: never logged).
            retry_on: Extra test telling whether a non-2xx response is transient.

        Returns:
            The final response (2xx or a non-transient error for the caller to read).

        Raises:
            RetriesExhaustedError: When every attempt failed transiently.
        """
        last_problem = ""
        for attempt in range(1, self.retry.max_attempts + 1):
            wait: float | None = None
            throttled = False
            # Resolved outside the limiter slot: it may fetch a token, which needs a slot.
            target_url, target_headers = url() if callable(url) else (url, headers)
            try:
                with self.limiter.slot():
                    self.stats.count_call(endpoint)
                    response = self.session.request(
                        method, target_url, data=body, headers=target_headers, timeout=self.timeout
                    )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,  # connection dropped mid-answer
                requests.exceptions.ContentDecodingError,
            ) as exc:
                last_problem = f"{type(exc).__name__}"
            else:
                transient = (
                    response.status_code == 429  # noqa: PLR2004
                    or response.status_code >= 500  # noqa: PLR2004
                    or (retry_on is not None and retry_on(response))
                )
                if not transient:
                    return response
                throttled = response.status_code == 429  # noqa: PLR2004
                if response.status_code in {429, 503}:
                    wait = retry_after_seconds(response)
                last_problem = f"HTTP {response.status_code}"
            if attempt == self.retry.max_attempts:
                break
            delay = wait if wait is not None else self.retry.delay(attempt)
            self.stats.count_retry(throttled=throttled)
            LOGGER.warning(
                "%s request failed transiently (%s); retry %d of %d in %.1f s.",
                endpoint,
                last_problem,
                attempt,
                self.retry.max_attempts - 1,
                delay,
            )
            self._sleep(delay)
        raise RetriesExhaustedError(
            f"The {endpoint} request kept failing after {self.retry.max_attempts} attempts "
            f"(last: {last_problem})."
        )
