"""The embedded budget store: one SQLite file shared by the processes of this machine."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from typing import TYPE_CHECKING

from target_sfmc.budget_store import (
    SCHEDULE_HORIZON_SECONDS,
    STORE_TIMEOUT_SECONDS,
    BudgetStore,
    BudgetStoreError,
    CachedToken,
    Reservation,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

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
            if free > now + SCHEDULE_HORIZON_SECONDS:
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
