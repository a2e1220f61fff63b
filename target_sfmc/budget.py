"""One SFMC account's request budget and access token, shared by every process that uses it.

SFMC's allowance belongs to the account (client id + MID), not to a process. The processes
of one account meet in a *budget store*:

- by default a SQLite file in the user's cache directory, shared by the processes of this
  machine (no setup);
- with ``rate_limit_url: redis://host:port/db``, a Redis server, shared across machines.

This module opens the store a URL names (the stores are in ``budget_sqlite`` and
``budget_redis``, their interface in ``budget_store``), paces this process in the account's
schedule and gives a run its view of the store.

The store keeps the account's schedule (GCRA in its "virtual scheduling" form: one
theoretical arrival time per account; each request *reserves* the next free start, in one
atomic step: a transaction in SQLite, a Lua script in Redis) and, with ``token_cache``, the
account's access token (a 0600 file locally, a Redis hash that expires with the token), with
a short lease so that one process refreshes it while the others wait.

Reserving (rather than trying and retrying, as pyrate-limiter's buckets do) gives the starts
to the waiting processes in turn, so each gets a fair share however busy the machine is: with
try-and-retry every free start is a race that the process that wakes first wins (measured:
one of three processes got under half of another's share on a loaded 2-core machine).

A store that cannot be reached is said once; the process then paces itself alone at
``requests_per_second / expected_processes`` and keeps its token to itself. The load never
stops for it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from target_sfmc.budget_redis import RedisBudgetStore
from target_sfmc.budget_sqlite import SqliteBudgetStore
from target_sfmc.budget_store import BudgetStore, BudgetStoreError, redact_url

if TYPE_CHECKING:
    from collections.abc import Callable

LOGGER = logging.getLogger("target-sfmc.budget")

STORE_FILE_NAME = "budget.sqlite3"
REDIS_SCHEMES = frozenset({"redis", "rediss"})
SQLITE_SCHEME = "sqlite"
# How long one process may hold the right to refresh the token before others take over.
TOKEN_LEASE_SECONDS = 60.0


def url_problem(url: str) -> str | None:
    """Tell what is wrong with a ``rate_limit_url`` (never quoting it: it may hold a password).

    Args:
        url: The configured value.

    Returns:
        One sentence, or None when the URL can be used.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "Setting 'rate_limit_url' is not a valid URL."
    if parts.scheme in REDIS_SCHEMES:
        if not parts.hostname:
            return "Setting 'rate_limit_url' needs a host: redis://host:port/db."
        db = parts.path.strip("/")
        if db and not db.isdigit():
            return "Setting 'rate_limit_url' must end with a database number: redis://host:port/db."
        return None
    if parts.scheme == SQLITE_SCHEME:
        if not parts.path or not Path(unquote(parts.path)).is_absolute():
            return "Setting 'rate_limit_url' as sqlite:///path needs an absolute file path."
        return None
    return (
        "Setting 'rate_limit_url' must be redis://host:port/db (or rediss://…) to share the "
        "budget across machines, or sqlite:///path for a local store in another place."
    )


def _digest(*parts: str | None) -> str:
    text = "\x1f".join(part or "" for part in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def default_store_path() -> Path:
    """The embedded store: ``budget.sqlite3`` in the user's cache directory.

    Returns:
        The file path (created on first use).
    """
    import platformdirs  # noqa: PLC0415 - only the embedded store needs it

    return platformdirs.user_cache_path("target-sfmc", appauthor=False) / STORE_FILE_NAME


def open_store(url: str | None) -> BudgetStore:
    """Open the budget store a ``rate_limit_url`` names (the embedded one by default).

    Args:
        url: ``redis://…``, ``sqlite:///path`` or None.

    Returns:
        The store.

    Raises:
        BudgetStoreError: When it cannot be reached or created.
    """
    if not url:
        try:
            path = default_store_path()
        except Exception as exc:  # noqa: BLE001 - any failure to find a home means no store
            raise BudgetStoreError(f"no cache directory ({type(exc).__name__})") from None
        return SqliteBudgetStore(path)
    parts = urlsplit(url)
    if parts.scheme == SQLITE_SCHEME:
        return SqliteBudgetStore(Path(unquote(parts.path)))
    return RedisBudgetStore(url)


# --------------------------------------------------------------------------- one account


class SharedPacer:
    """Waits for this process's turn in the account's schedule.

    Starts are spaced ``margin / requests_per_second`` apart across every process of the
    account, so that no one-second window at SFMC ever holds more than the budget. One thread
    per process holds a reservation at a time, so the processes that want requests take the
    starts in turn. A start taken late (the thread woke up late on a busy machine) moves the
    account's next free start back by as much: it must not crowd the second of the starts
    reserved after it.
    """

    # Lateness the margin absorbs without moving the schedule (a wake-up, a store round trip).
    TOLERATED_LATENESS_SECONDS = 0.005

    def __init__(
        self,
        store: BudgetStore,
        key: str,
        requests_per_second: float,
        margin: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create the pacer.

        Args:
            store: The budget store.
            key: The account's schedule key.
            requests_per_second: The account's budget.
            margin: Spacing factor (> 1) that absorbs scheduling and network jitter.
            clock: This process's monotonic clock (injectable for tests).
            sleep: Sleep function (injectable for tests).
        """
        self.spacing = margin / requests_per_second
        self._store = store
        self._key = key
        self._clock = clock
        self._sleep = sleep
        self._turn = threading.Lock()
        self.pushed_back = 0  # starts this process took late

    def wait_turn(self) -> None:
        """Block until this process may start one request.

        Raises:
            BudgetStoreError: When the store fails (the caller paces alone from then on).
        """
        with self._turn:
            reserved = self._store.reserve_start(self._key, self.spacing)
            wait = reserved.sleep_until - self._clock()
            if wait > 0:
                self._sleep(wait)
            late = self._clock() - reserved.start
            if late > self.TOLERATED_LATENESS_SECONDS:
                self._store.push_back(self._key, late)
                self.pushed_back += 1


class AccountBudget:
    """What a run uses of the budget store: the account's keys, and one warning on failure."""

    def __init__(
        self,
        *,
        store: BudgetStore | None,
        unavailable: str | None,
        rate_key: str,
        token_key: str,
        requests_per_second: float,
        expected_processes: int,
        token_cache: bool,
        configured_url: str | None,
    ) -> None:
        """Create the run's view of the store (use :meth:`open`)."""
        self.store = store
        self.unavailable = unavailable
        self.rate_key = rate_key
        self.token_key = token_key
        self.requests_per_second = requests_per_second
        self.expected_processes = max(1, expected_processes)
        self.token_cache = token_cache
        self.configured_url = redact_url(configured_url) if configured_url else None
        self.kind = store.kind if store is not None else "none"
        self.location = store.location if store is not None else (self.configured_url or "")
        self._lock = threading.Lock()
        self._lost = False
        if store is None:
            self._warn(unavailable or "unknown")

    @classmethod
    def open(
        cls,
        *,
        rate_limit_url: str | None,
        client_id: str,
        client_secret: str,
        account_id: str | None,
        auth_base_url: str,
        legacy_auth: bool,
        requests_per_second: float,
        expected_processes: int,
        token_cache: bool,
    ) -> AccountBudget:
        """Open the store for one account (never raises: a missing store is a fallback).

        Args:
            rate_limit_url: ``rate_limit_url`` (None: the embedded local store).
            client_id: Installed-package client id.
            client_secret: Its secret (only a digest of it, in the token's key).
            account_id: MID, if any.
            auth_base_url: Auth host (a token belongs to the server that issued it).
            legacy_auth: Legacy v1 tokens.
            requests_per_second: The account's budget.
            expected_processes: Share to use without the store.
            token_cache: Share the access token through the store.

        Returns:
            The run's budget.
        """
        try:
            store: BudgetStore | None = open_store(rate_limit_url)
            unavailable = None
        except BudgetStoreError as exc:
            store, unavailable = None, str(exc)
        return cls(
            store=store,
            unavailable=unavailable,
            rate_key=_digest("rate", client_id, account_id),
            # The secret is part of the token's key (through a one-way digest, never stored):
            # a wrong or rotated secret never gets a token cached under the right one.
            token_key=_digest(
                "token", auth_base_url, client_id, account_id, str(legacy_auth), client_secret
            ),
            requests_per_second=requests_per_second,
            expected_processes=expected_processes,
            token_cache=token_cache,
            configured_url=rate_limit_url,
        )

    @property
    def fallback_rps(self) -> float:
        """This process's share when it paces alone."""
        return self.requests_per_second / self.expected_processes

    @property
    def shared(self) -> bool:
        """The store is in use."""
        with self._lock:
            return self.store is not None and not self._lost

    def pacer(
        self, margin: float, sleep: Callable[[float], None] = time.sleep
    ) -> SharedPacer | None:
        """The shared pacer, or None when the store is not in use.

        Args:
            margin: Spacing factor.
            sleep: Sleep function.

        Returns:
            The pacer.
        """
        store = self.store
        if store is None or not self.shared:
            return None
        return SharedPacer(store, self.rate_key, self.requests_per_second, margin, sleep=sleep)

    def token_store(self) -> BudgetStore | None:
        """The store for tokens, or None when tokens stay in this process.

        Returns:
            The store.
        """
        if not self.token_cache or not self.shared:
            return None
        return self.store

    def lost(self, exc: BaseException) -> None:
        """The store failed during the run: say so once; this process goes on alone.

        Args:
            exc: The store error.
        """
        with self._lock:
            if self._lost:
                return
            self._lost = True
        self._warn(str(exc))

    def _warn(self, reason: str) -> None:
        where = self.configured_url or "the local budget store"
        LOGGER.warning(
            "The shared budget store (%s) cannot be used (%s): this process paces itself "
            "alone at %.4g requests/s (requests_per_second %g / expected_processes %d)%s. "
            "The load goes on.",
            where,
            reason,
            self.fallback_rps,
            self.requests_per_second,
            self.expected_processes,
            " and keeps its access token to itself" if self.token_cache else "",
        )

    def describe_limiter(self) -> str:
        """One sentence on how requests are paced.

        Returns:
            The sentence (a URL without its password).
        """
        if self.shared:
            where = (
                f"the local store {self.location}"
                if self.kind == "local"
                else f"Redis {self.location}"
            )
            return (
                f"{self.requests_per_second:g} requests/s shared by every process of this SFMC "
                f"account (client id + MID) through {where}"
            )
        return (
            f"{self.fallback_rps:.4g} requests/s for this process alone (the shared store is "
            f"unavailable; requests_per_second / expected_processes)"
        )

    def describe_token_cache(self) -> str:
        """One sentence on where the access token is kept.

        Returns:
            The sentence.
        """
        if not self.token_cache:
            return "off (token_cache is false): this process keeps its own token"
        if self.shared:
            where = "the local store (file mode 0600)" if self.kind == "local" else "Redis"
            return f"shared through {where} with the runs and processes of this account"
        return "this process only (the shared store is unavailable)"

    def summary(self) -> str:
        """``limiter=… token_cache=…`` for the summary line.

        Returns:
            The two fields.
        """
        limiter = f"shared:{self.kind}" if self.shared else f"process:{self.fallback_rps:.4g}/s"
        if not self.token_cache:
            cache = "off"
        elif self.shared:
            cache = f"shared:{self.kind}"
        else:
            cache = "process"
        return f"limiter={limiter} token_cache={cache}"

    def close(self) -> None:
        """Close the store."""
        if self.store is not None:
            self.store.close()


def new_holder() -> str:
    """An id for this process's token-refresh lease.

    Returns:
        The id.
    """
    return f"{os.getpid()}-{uuid.uuid4().hex}"
