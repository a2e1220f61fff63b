"""One SFMC account's request budget and access token, shared by every process that uses it.

SFMC's allowance belongs to the account (client id + MID), not to a process. The processes
of one account meet in a *budget store*:

- by default a SQLite file in the user's cache directory, shared by the processes of this
  machine (no setup);
- with ``rate_limit_url: redis://host:port/db``, a Redis server, shared across machines.

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

import contextlib
import hashlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

LOGGER = logging.getLogger("target-sfmc.budget")

STORE_FILE_NAME = "budget.sqlite3"
REDIS_SCHEMES = frozenset({"redis", "rediss"})
SQLITE_SCHEME = "sqlite"
# A store answer slower than this counts as unreachable: pacing must not stall on it.
STORE_TIMEOUT_SECONDS = 2.0
# How long one process may hold the right to refresh the token before others take over.
TOKEN_LEASE_SECONDS = 60.0
_KEY_PREFIX = "target-sfmc"


class BudgetStoreError(Exception):
    """The budget store could not be used (unreachable, unwritable, broken)."""


def redact_url(url: str) -> str:
    """A store URL as it may be shown: without its password.

    Args:
        url: The configured ``rate_limit_url``.

    Returns:
        The URL with any password replaced by ``***``.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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


# --------------------------------------------------------------------------- cached tokens


@dataclass(frozen=True)
class CachedToken:
    """An access token as the store keeps it; times are epoch seconds (shared by processes)."""

    value: str = field(repr=False)
    rest_instance_url: str | None
    refresh_at: float
    expires_at: float
    soap_instance_url: str | None = None

    @property
    def usable_until(self) -> float:
        """Last moment to use it while another process refreshes it (half the margin left)."""
        return self.expires_at - max(0.0, self.expires_at - self.refresh_at) / 2


# --------------------------------------------------------------------------- stores


class BudgetStore(ABC):
    """Where the processes of one account meet: pacing state, token, refresh lease."""

    kind: str
    location: str

    @abstractmethod
    def reserve_start(self, key: str, spacing: float) -> Reservation:
        """Reserve the account's next free start (``spacing`` seconds after the previous one).

        Args:
            key: The account's schedule key.
            spacing: Seconds between two starts of the account.

        Returns:
            When to start, on this process's monotonic clock.
        """

    @abstractmethod
    def push_back(self, key: str, seconds: float) -> None:
        """Move the account's next free start later (a reserved start was taken late).

        Args:
            key: The account's schedule key.
            seconds: How late the start was taken.
        """

    @abstractmethod
    def load_token(self, key: str) -> CachedToken | None:
        """The cached token, or None when there is none (or it has expired)."""

    @abstractmethod
    def save_token(self, key: str, token: CachedToken) -> None:
        """Cache a token until it expires."""

    @abstractmethod
    def drop_token(self, key: str, value: str) -> None:
        """Forget the cached token if it is still ``value`` (SFMC refused it)."""

    @abstractmethod
    def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Take (or renew) the right to refresh the token; False when another holds it."""

    @abstractmethod
    def release_lease(self, key: str, holder: str) -> None:
        """Give the refresh right back (only if ``holder`` still has it)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


@dataclass(frozen=True)
class Reservation:
    """A reserved start, on this process's monotonic clock (``time.monotonic``).

    ``sleep_until`` is never before the reserved start; ``start`` is never after it (the two
    differ by the store's round trip when the store keeps another clock).
    """

    start: float
    sleep_until: float


# A schedule further ahead than this was written before a reboot (the monotonic clock restarted).
_SCHEDULE_HORIZON_SECONDS = 300.0


_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schedule (key TEXT PRIMARY KEY, next_start REAL NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS access_tokens (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
        "rest_instance_url TEXT, refresh_at REAL NOT NULL, expires_at REAL NOT NULL, "
        "soap_instance_url TEXT)"
    ),
    (
        "CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, holder TEXT NOT NULL, "
        "until REAL NOT NULL)"
    ),
)


class SqliteBudgetStore(BudgetStore):
    """The embedded store: one SQLite file (mode 0600, in a 0700 directory) per user."""

    kind = "local"

    def __init__(self, path: Path) -> None:
        """Open (and create) the store.

        Args:
            path: The SQLite file.

        Raises:
            BudgetStoreError: When the file cannot be created or opened.
        """
        self.path = path
        self.location = str(path)
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Created 0600 before SQLite opens it: it holds access tokens. SQLite gives its
            # -wal and -shm files the database file's permissions.
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            os.close(fd)
            with contextlib.suppress(OSError):
                path.chmod(0o600)
            self._conn = sqlite3.connect(
                path,
                timeout=STORE_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self.transaction() as conn:
                for statement in _SQLITE_SCHEMA:
                    conn.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise BudgetStoreError(f"{type(exc).__name__}: {exc}") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, serialised with every other process of the machine.

        Yields:
            The connection, inside ``BEGIN IMMEDIATE``.

        Raises:
            BudgetStoreError: When SQLite fails (locked too long, disk full, broken file).
        """
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise BudgetStoreError(f"{type(exc).__name__}: {exc}") from None
            try:
                yield self._conn
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise BudgetStoreError(f"{type(exc).__name__}: {exc}") from None
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise BudgetStoreError(f"{type(exc).__name__}: {exc}") from None

    def reserve_start(self, key: str, spacing: float) -> Reservation:
        """Reserve the next start in one transaction, on the machine's monotonic clock.

        Returns:
            The reservation.
        """
        with self.transaction() as conn:
            now = time.monotonic()  # read inside the lock: never a stale "now"
            row = conn.execute("SELECT next_start FROM schedule WHERE key = ?", (key,)).fetchone()
            free = float(row[0]) if row is not None else now
            if free > now + _SCHEDULE_HORIZON_SECONDS:
                free = now
            start = max(free, now)
            conn.execute(
                "INSERT INTO schedule (key, next_start) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET next_start = excluded.next_start",
                (key, start + spacing),
            )
        return Reservation(start=start, sleep_until=start)

    def push_back(self, key: str, seconds: float) -> None:
        """Move the next free start later."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE schedule SET next_start = next_start + ? WHERE key = ?", (seconds, key)
            )

    def load_token(self, key: str) -> CachedToken | None:
        """The cached token, if one is still valid.

        Returns:
            The token or None.
        """
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT value, rest_instance_url, refresh_at, expires_at, soap_instance_url "
                "FROM access_tokens WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None or time.time() >= float(row[3]):
            return None
        return CachedToken(str(row[0]), row[1], float(row[2]), float(row[3]), row[4])

    def save_token(self, key: str, token: CachedToken) -> None:
        """Cache a token."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO access_tokens (key, value, rest_instance_url, refresh_at, expires_at, "
                "soap_instance_url) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                "value = excluded.value, rest_instance_url = excluded.rest_instance_url, "
                "refresh_at = excluded.refresh_at, expires_at = excluded.expires_at, "
                "soap_instance_url = excluded.soap_instance_url",
                (
                    key,
                    token.value,
                    token.rest_instance_url,
                    token.refresh_at,
                    token.expires_at,
                    token.soap_instance_url,
                ),
            )
            conn.execute("DELETE FROM access_tokens WHERE expires_at < ?", (time.time(),))

    def drop_token(self, key: str, value: str) -> None:
        """Forget the token SFMC refused."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM access_tokens WHERE key = ? AND value = ?", (key, value))

    def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Take the refresh right unless another live holder has it.

        Returns:
            True when ``holder`` now holds it.
        """
        now = time.time()
        with self.transaction() as conn:
            row = conn.execute("SELECT holder, until FROM leases WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] != holder and float(row[1]) > now:
                return False
            conn.execute(
                "INSERT INTO leases (key, holder, until) VALUES (?, ?, ?) ON CONFLICT(key) "
                "DO UPDATE SET holder = excluded.holder, until = excluded.until",
                (key, holder, now + seconds),
            )
            return True

    def release_lease(self, key: str, holder: str) -> None:
        """Give the refresh right back."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM leases WHERE key = ? AND holder = ?", (key, holder))

    def close(self) -> None:
        """Close the connection."""
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._conn.close()


_DROP_IF_SAME = """
if redis.call('HGET', KEYS[1], 'value') == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
# Reserve the next start on Redis' clock (one time base for every machine): answer the wait.
_RESERVE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local spacing = tonumber(ARGV[1])
local free = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if free > now + tonumber(ARGV[2]) then
    free = now
end
local start = math.max(free, now)
local ttl = math.floor((start + spacing - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', start + spacing), 'PX', ttl)
return start - now
"""
_PUSH_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('INCRBY', KEYS[1], ARGV[1])
    redis.call('PEXPIRE', KEYS[1], redis.call('PTTL', KEYS[1]) + math.ceil(ARGV[1] / 1000))
end
return 0
"""
_RELEASE_IF_HOLDER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisBudgetStore(BudgetStore):
    """Several machines: pacing state and token in one Redis database."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        """Connect and check that the server answers.

        Args:
            url: ``redis://[:password@]host:port/db`` (or ``rediss://``).

        Raises:
            BudgetStoreError: When Redis cannot be reached.
        """
        import redis  # noqa: PLC0415 - only a Redis store needs it

        self.location = redact_url(url)
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        try:
            self._redis = redis.Redis.from_url(
                url,
                socket_timeout=STORE_TIMEOUT_SECONDS,
                socket_connect_timeout=STORE_TIMEOUT_SECONDS,
                decode_responses=True,
            )
            self._redis.ping()
            self._drop = self._redis.register_script(_DROP_IF_SAME)
            self._reserve = self._redis.register_script(_RESERVE)
            self._push_back = self._redis.register_script(_PUSH_BACK)
            self._release = self._redis.register_script(_RELEASE_IF_HOLDER)
        except self._errors as exc:
            raise BudgetStoreError(_redis_reason(exc)) from None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise BudgetStoreError(_redis_reason(exc)) from None

    def reserve_start(self, key: str, spacing: float) -> Reservation:
        """Reserve the next start on Redis' clock, in one script.

        Returns:
            The reservation, moved to this process's clock: the round trip is added to the
            sleep (never early) and left out of the start (lateness is never underrated).
        """
        asked = time.monotonic()
        with self._guard():
            wait_us = int(
                self._reserve(
                    keys=[f"{_KEY_PREFIX}:schedule:{key}"],
                    args=[round(spacing * 1_000_000), round(_SCHEDULE_HORIZON_SECONDS * 1_000_000)],
                )
            )
        answered = time.monotonic()
        wait = max(0, wait_us) / 1_000_000
        return Reservation(start=asked + wait, sleep_until=answered + wait)

    def push_back(self, key: str, seconds: float) -> None:
        """Move the next free start later."""
        with self._guard():
            self._push_back(
                keys=[f"{_KEY_PREFIX}:schedule:{key}"], args=[max(1, round(seconds * 1_000_000))]
            )

    def load_token(self, key: str) -> CachedToken | None:
        """The cached token, if any.

        Returns:
            The token or None.
        """
        with self._guard():
            found = self._redis.hgetall(f"{_KEY_PREFIX}:token:{key}")
        if not found or "value" not in found:
            return None
        try:
            token = CachedToken(
                str(found["value"]),
                str(found.get("rest_instance_url") or "") or None,
                float(found["refresh_at"]),
                float(found["expires_at"]),
                str(found.get("soap_instance_url") or "") or None,
            )
        except (KeyError, ValueError):
            return None
        return token if time.time() < token.expires_at else None

    def save_token(self, key: str, token: CachedToken) -> None:
        """Cache a token; Redis forgets it when it expires."""
        name = f"{_KEY_PREFIX}:token:{key}"
        with self._guard():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(name)
            pipe.hset(
                name,
                mapping={
                    "value": token.value,
                    "rest_instance_url": token.rest_instance_url or "",
                    "refresh_at": repr(token.refresh_at),
                    "expires_at": repr(token.expires_at),
                    "soap_instance_url": token.soap_instance_url or "",
                },
            )
            pipe.pexpireat(name, int(token.expires_at * 1000))
            pipe.execute()

    def drop_token(self, key: str, value: str) -> None:
        """Forget the token SFMC refused (if no one replaced it)."""
        with self._guard():
            self._drop(keys=[f"{_KEY_PREFIX}:token:{key}"], args=[value])

    def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Take the refresh right unless another holder has it.

        Returns:
            True when ``holder`` now holds it.
        """
        name = f"{_KEY_PREFIX}:token-lease:{key}"
        with self._guard():
            if self._redis.set(name, holder, nx=True, px=int(seconds * 1000)):
                return True
            return self._redis.get(name) == holder

    def release_lease(self, key: str, holder: str) -> None:
        """Give the refresh right back."""
        with self._guard():
            self._release(keys=[f"{_KEY_PREFIX}:token-lease:{key}"], args=[holder])

    def close(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(*self._errors):
            self._redis.close()


def _redis_reason(exc: BaseException) -> str:
    # redis-py's messages name host and port, never the password.
    return f"{type(exc).__name__}: {exc}"


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
