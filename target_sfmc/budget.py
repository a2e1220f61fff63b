"""One SFMC account's request budget and access token, shared by every process that uses it.

SFMC's allowance belongs to the account (client id + MID), not to a process. The processes
of one account meet in a *budget store*:

- by default a SQLite file in the user's cache directory, shared by the processes of this
  machine (no setup);
- with ``rate_limit_url: redis://host:port/db``, a Redis server, shared across machines.

The store keeps the account's pacing state (pyrate-limiter's GCRA: one theoretical arrival
time per account, updated atomically: a transaction in SQLite, pyrate-limiter's Lua script
in Redis) and, with ``token_cache``, the account's access token (a 0600 file locally, a
Redis hash that expires with the token), with a short lease so that one process refreshes
it while the others wait.

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
from math import ceil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pyrate_limiter import GCRA, AbstractClock, Rate, StateStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pyrate_limiter.abstracts.algorithm import Decision, State, StateAlgorithm

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
    def rate_store(self, key: str) -> StateStore:
        """The pyrate-limiter state store holding one account's pacing state."""

    @abstractmethod
    def clock(self) -> AbstractClock:
        """The clock (milliseconds) every process of the account paces by."""

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


def _gcra_limit_us(rates: list[Rate]) -> int:
    """How far ahead of now a GCRA state can legitimately be (one full burst), in µs."""
    return max(ceil(rate.interval * 1000 / rate.limit) * rate.burst for rate in rates)


def _monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class _MonotonicMsClock(AbstractClock):
    """Milliseconds of the machine's monotonic clock: shared by its processes, never steps."""

    def now(self) -> int:
        return _monotonic_ms()


_SELECT_STATE = "SELECT state FROM rate_state WHERE key = ?"


class SqliteStateStore(StateStore):
    """pyrate-limiter's constant-state store in a SQLite file, safe across processes.

    Each check reads, steps and writes the account's state in one ``BEGIN IMMEDIATE``
    transaction. The time is read inside the transaction, so a process that waited for the
    lock never decides with a stale clock; state from before a reboot (further ahead than any
    real schedule can be) is discarded.
    """

    is_async = False
    default_clock: AbstractClock = _MonotonicMsClock()

    def __init__(self, store: SqliteBudgetStore, key: str) -> None:
        """Create the store for one key.

        Args:
            store: The SQLite budget store.
            key: The account's pacing key.
        """
        self._store = store
        self._key = key

    def check(
        self, algorithm: StateAlgorithm, rates: list[Rate], now: int, weight: int
    ) -> Decision:
        """Apply ``algorithm.step`` to the stored state, atomically.

        Returns:
            The decision (with the wait when refused).
        """
        with self._store.transaction() as conn:
            now = max(now, _monotonic_ms())
            row = conn.execute(_SELECT_STATE, (self._key,)).fetchone()
            state = self._decode(algorithm, rates, row, now)
            new_state, decision = algorithm.step(rates, state, now, weight)
            if decision.allowed:
                conn.execute(
                    "INSERT INTO rate_state (key, state) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET state = excluded.state",
                    (self._key, ",".join(str(int(v)) for v in new_state)),
                )
            return decision

    @staticmethod
    def _decode(algorithm: StateAlgorithm, rates: list[Rate], row: Any, now_ms: int) -> State:
        if row is None:
            return algorithm.initial(rates)
        try:
            state = algorithm.decode(str(row[0]).split(","))
        except ValueError:
            return algorithm.initial(rates)
        if len(state) != len(rates):
            return algorithm.initial(rates)
        horizon = now_ms * 1000 + _gcra_limit_us(rates)
        if any(value > horizon for value in state):  # written before a reboot
            return algorithm.initial(rates)
        return state

    def read(self, algorithm: StateAlgorithm, rates: list[Rate]) -> State:
        """Current state (for reporting only).

        Returns:
            The stored state.
        """
        with self._store.transaction() as conn:
            row = conn.execute(_SELECT_STATE, (self._key,)).fetchone()
            return self._decode(algorithm, rates, row, _monotonic_ms())

    def reset(self) -> None:
        """Forget the key's state."""
        with self._store.transaction() as conn:
            conn.execute("DELETE FROM rate_state WHERE key = ?", (self._key,))


_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rate_state (key TEXT PRIMARY KEY, state TEXT NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS tokens (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
        "rest_instance_url TEXT, refresh_at REAL NOT NULL, expires_at REAL NOT NULL)"
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

    def rate_store(self, key: str) -> StateStore:
        """The account's pacing state in this file.

        Returns:
            The state store.
        """
        return SqliteStateStore(self, key)

    def clock(self) -> AbstractClock:
        """The machine's monotonic clock, in milliseconds.

        Returns:
            The clock.
        """
        return SqliteStateStore.default_clock

    def load_token(self, key: str) -> CachedToken | None:
        """The cached token, if one is still valid.

        Returns:
            The token or None.
        """
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT value, rest_instance_url, refresh_at, expires_at FROM tokens WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None or time.time() >= float(row[3]):
            return None
        return CachedToken(str(row[0]), row[1], float(row[2]), float(row[3]))

    def save_token(self, key: str, token: CachedToken) -> None:
        """Cache a token."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO tokens (key, value, rest_instance_url, refresh_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                "rest_instance_url = excluded.rest_instance_url, "
                "refresh_at = excluded.refresh_at, expires_at = excluded.expires_at",
                (key, token.value, token.rest_instance_url, token.refresh_at, token.expires_at),
            )
            conn.execute("DELETE FROM tokens WHERE expires_at < ?", (time.time(),))

    def drop_token(self, key: str, value: str) -> None:
        """Forget the token SFMC refused."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM tokens WHERE key = ? AND value = ?", (key, value))

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
_RELEASE_IF_HOLDER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class _RedisClock(AbstractClock):
    """The Redis server's clock: one time base for every machine of the account."""

    def __init__(self, redis: Any, errors: tuple[type[BaseException], ...]) -> None:
        self._redis = redis
        self._errors = errors

    def now(self) -> int:
        try:
            seconds, micros = self._redis.time()
        except self._errors as exc:
            raise BudgetStoreError(_redis_reason(exc)) from None
        return int(seconds) * 1000 + int(micros) // 1000


class _GuardedRedisStateStore(StateStore):
    """pyrate-limiter's Redis state store, with Redis errors reported as store errors."""

    is_async = False

    def __init__(self, inner: StateStore, errors: tuple[type[BaseException], ...]) -> None:
        self._inner = inner
        self._errors = errors
        self.default_clock = inner.default_clock

    def check(
        self, algorithm: StateAlgorithm, rates: list[Rate], now: int, weight: int
    ) -> Decision:
        try:
            return self._inner.check(algorithm, rates, now, weight)  # type: ignore[return-value]
        except self._errors as exc:
            raise BudgetStoreError(f"{type(exc).__name__}: {exc}") from None

    def read(self, algorithm: StateAlgorithm, rates: list[Rate]) -> State:
        try:
            return self._inner.read(algorithm, rates)  # type: ignore[return-value]
        except self._errors as exc:
            raise BudgetStoreError(f"{type(exc).__name__}: {exc}") from None

    def reset(self) -> None:
        try:
            self._inner.reset()
        except self._errors as exc:
            raise BudgetStoreError(f"{type(exc).__name__}: {exc}") from None


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
            self._release = self._redis.register_script(_RELEASE_IF_HOLDER)
        except self._errors as exc:
            raise BudgetStoreError(_redis_reason(exc)) from None
        self._clock = _RedisClock(self._redis, self._errors)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise BudgetStoreError(_redis_reason(exc)) from None

    def rate_store(self, key: str) -> StateStore:
        """pyrate-limiter's Redis state store (its GCRA Lua script) for the account.

        Returns:
            The state store.
        """
        from pyrate_limiter import RedisStateStore  # noqa: PLC0415

        inner = RedisStateStore(self._redis, key=f"{_KEY_PREFIX}:rate:{key}")
        return _GuardedRedisStateStore(inner, self._errors)

    def clock(self) -> AbstractClock:
        """The Redis server's clock.

        Returns:
            The clock.
        """
        return self._clock

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
    """Waits for this process's turn in the account's budget (GCRA, no burst).

    Starts are spaced ``margin / requests_per_second`` apart across every process of the
    account, so that no one-second window at SFMC ever holds more than the budget. One
    thread per process asks the store at a time; when refused, it sleeps exactly until the
    next free start and asks again, so the processes that want requests share the starts.
    """

    def __init__(
        self,
        store: StateStore,
        clock: AbstractClock,
        requests_per_second: float,
        margin: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create the pacer.

        Args:
            store: The account's pacing state.
            clock: The clock (milliseconds) shared by the account's processes.
            requests_per_second: The account's budget.
            margin: Spacing factor (> 1) that absorbs scheduling and network jitter.
            sleep: Sleep function (injectable for tests).
        """
        # Whole milliseconds are the store's time unit, so per-mille requests keep any rate exact.
        self.rates = [Rate(max(1, round(requests_per_second * 1000)), round(margin * 1_000_000), 1)]
        self._algorithm = GCRA()
        self._store = store
        self._clock = clock
        self._sleep = sleep
        self._turn = threading.Lock()

    def wait_turn(self) -> None:
        """Block until this process may start one request.

        Raises:
            BudgetStoreError: When the store fails (the caller paces alone from then on).
        """
        with self._turn:
            while True:
                now = self._clock.now()
                decision = self._store.check(self._algorithm, self.rates, now, 1)  # type: ignore[arg-type]
                if decision.allowed:  # type: ignore[union-attr]
                    return
                wait_ms = decision.retry_after_ms or 1  # type: ignore[union-attr]
                self._sleep(wait_ms / 1000)


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
        return SharedPacer(
            store.rate_store(self.rate_key), store.clock(), self.requests_per_second, margin, sleep
        )

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
