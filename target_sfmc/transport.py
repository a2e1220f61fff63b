"""HTTP transport: one shared session, the shared limiter, and retries of transient failures.

Retries are expressed with the ``backoff`` library. A failed attempt is retried when it is
transient: HTTP 429, any 5xx, a timeout, a dropped or refused connection, or an answer the
caller marks as transient (SFMC's bare "Unable to save rows"). The wait before a retry is
SFMC's ``Retry-After`` (header, else ``retryAfter`` in the body) for 429 and 503, otherwise
exponential backoff with full jitter, capped. ``backoff`` sleeps with :func:`time.sleep`.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import backoff
import requests
from requests.adapters import HTTPAdapter

from target_sfmc.errors import RetriesExhaustedError

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    from backoff.types import Details

    from target_sfmc.limiter import RateLimiter

LOGGER = logging.getLogger("target-sfmc.http")

# Longest wait honoured from a Retry-After: a nonsensical one must not stall the run.
MAX_RETRY_AFTER_SECONDS = 120.0
RETRY_CAP_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 10.0
_THROTTLED = 429
_SERVER_ERROR = 500
_RETRY_AFTER_STATUSES = frozenset({429, 503})


@dataclass
class ApiStats:
    """Counters for the end-of-run summary; updated from many threads."""

    calls: int = 0
    retries: int = 0
    throttled: int = 0
    by_endpoint: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_call(self, endpoint: str) -> None:
        """Count one request sent.

        Args:
            endpoint: Short endpoint name.
        """
        with self.lock:
            self.calls += 1
            self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1

    def count_retry(self, *, throttled: bool = False) -> None:
        """Count one retry (and whether SFMC throttled us).

        Args:
            throttled: SFMC answered 429.
        """
        with self.lock:
            self.retries += 1
            if throttled:
                self.throttled += 1


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, as a ``backoff`` wait generator."""

    max_attempts: int
    base_seconds: float
    cap_seconds: float = RETRY_CAP_SECONDS

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), with full jitter.

        Args:
            attempt: The retry's number.

        Returns:
            A random wait up to the capped exponential step.
        """
        step = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        return random.uniform(0, step)  # noqa: S311 - jitter, not secrecy

    def waits(self) -> Generator[float, Any, None]:
        """Wait generator for ``backoff``: SFMC's own wait when the failure names one.

        ``backoff`` sends each failed attempt's value (an :class:`AttemptOutcome` or an
        exception) into the generator; one with a ``retry_after`` is waited for exactly.

        Yields:
            Seconds to wait before the next attempt.
        """
        failed = yield 0.0  # primes the generator; backoff ignores this value
        attempt = 1
        while True:
            told = getattr(failed, "retry_after", None)
            failed = yield told if told is not None else self.delay(attempt)
            attempt += 1

    def retrying(
        self,
        predicate: Callable[[Any], bool],
        on_retry: Callable[[Details], None],
    ) -> Callable[[Callable[[], Any]], Callable[[], Any]]:
        """A ``backoff`` decorator that repeats a call while ``predicate`` holds of its value.

        Args:
            predicate: True when the value means "failed, try again".
            on_retry: Told ``backoff``'s details (``tries``, ``wait``, ``value``) per retry.

        Returns:
            The decorator; the decorated call returns the last value (failed or not).
        """
        return backoff.on_predicate(
            self.waits,
            predicate=predicate,
            max_tries=self.max_attempts,
            jitter=None,  # jitter is in the waits: Retry-After must not be jittered
            on_backoff=on_retry,
            logger=None,
        )


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
    if not math.isfinite(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class AttemptOutcome:
    """One attempt at a request: SFMC's answer, or the network problem that replaced it."""

    response: requests.Response | None
    problem: str = ""
    transient: bool = False
    retry_after: float | None = None

    @property
    def throttled(self) -> bool:
        """SFMC answered 429."""
        return self.response is not None and self.response.status_code == _THROTTLED

    @property
    def server_side(self) -> bool:
        """A failure of SFMC's (429, 5xx) or of the network, not one the caller marked."""
        return self.response is None or self.throttled or self.response.status_code >= _SERVER_ERROR


class Transport:
    """Sends requests under the shared limiter and retries transient failures."""

    def __init__(
        self,
        limiter: RateLimiter,
        retry: RetryPolicy,
        *,
        timeout_seconds: float,
        user_agent: str,
    ) -> None:
        """Create the transport.

        Args:
            limiter: The process-wide limiter.
            retry: Retry policy.
            timeout_seconds: Read timeout per request.
            user_agent: User-Agent header.
        """
        self.limiter = limiter
        self.retry = retry
        self.timeout = (CONNECT_TIMEOUT_SECONDS, timeout_seconds)
        self.stats = ApiStats()
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

        def on_retry(details: Details) -> None:
            failed: AttemptOutcome = details["value"]
            self.stats.count_retry(throttled=failed.throttled)
            LOGGER.warning(
                "%s request failed transiently (%s); retry %d of %d in %.1f s.",
                endpoint,
                failed.problem,
                details["tries"],
                self.retry.max_attempts - 1,
                details["wait"],
            )

        @self.retry.retrying(lambda outcome: outcome.transient, on_retry)
        def attempt() -> AttemptOutcome:
            # Resolved outside the limiter slot: it may fetch a token, which needs a slot.
            target_url, target_headers = url() if callable(url) else (url, headers)
            return self._attempt(method, target_url, target_headers, endpoint, body, retry_on)

        outcome: AttemptOutcome = attempt()
        if outcome.response is not None and outcome.transient and not outcome.server_side:
            return outcome.response  # the caller's own transient answer, still there: it decides
        if outcome.response is None or outcome.transient:
            raise RetriesExhaustedError(
                f"The {endpoint} request kept failing after {self.retry.max_attempts} attempts "
                f"(last: {outcome.problem})."
            )
        return outcome.response

    def _attempt(
        self,
        method: str,
        url: str,
        headers: dict[str, str] | None,
        endpoint: str,
        body: bytes | None,
        retry_on: Callable[[requests.Response], bool] | None,
    ) -> AttemptOutcome:
        try:
            with self.limiter.slot():
                self.stats.count_call(endpoint)
                response = self.session.request(
                    method, url, data=body, headers=headers, timeout=self.timeout
                )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,  # connection dropped mid-answer
            requests.exceptions.ContentDecodingError,
        ) as exc:
            return AttemptOutcome(None, problem=type(exc).__name__, transient=True)
        status = response.status_code
        transient = (
            status == _THROTTLED
            or status >= _SERVER_ERROR
            or (retry_on is not None and retry_on(response))
        )
        if not transient:
            return AttemptOutcome(response)
        wait = retry_after_seconds(response) if status in _RETRY_AFTER_STATUSES else None
        return AttemptOutcome(response, problem=f"HTTP {status}", transient=True, retry_after=wait)
