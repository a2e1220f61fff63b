"""SQLite storage for the emulator: Data Extensions, rows, contacts, events, journeys.

One connection (``check_same_thread=False``) guarded by one re-entrant lock, exposed as
`Store.lock` so callers can make multi-step read-modify-write operations atomic. Every write
method commits, so a file database survives a kill and can be reopened by a later emulator.
The request log lives in memory (`RequestLog`); it is observability, not data.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS data_extensions (
    key_folded TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    definition TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS de_rows (
    seq INTEGER PRIMARY KEY,
    de_id TEXT NOT NULL,
    pk TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (de_id, pk)
);
CREATE TABLE IF NOT EXISTS contacts (
    contact_id INTEGER PRIMARY KEY AUTOINCREMENT,
    contact_key TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    contact_key TEXT NOT NULL,
    event_definition_key TEXT NOT NULL,
    data TEXT NOT NULL,
    event_instance_id TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS event_definitions (
    key_folded TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    data_extension TEXT
);
CREATE TABLE IF NOT EXISTS journeys (
    key_folded TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    event_definition_folded TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journey_members (
    seq INTEGER PRIMARY KEY,
    journey_folded TEXT NOT NULL,
    contact_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    entered_at REAL NOT NULL,
    UNIQUE (journey_folded, contact_key)
);
CREATE TABLE IF NOT EXISTS journey_exits (
    seq INTEGER PRIMARY KEY,
    journey_folded TEXT NOT NULL,
    contact_key TEXT NOT NULL,
    exited_at REAL NOT NULL
);
"""

_SQLITE_MAX_PARAMS = 900
# msgspec: the row codec is most of the emulator's per-row cost with the stdlib json module.
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Store:
    """Thread-safe SQLite persistence.

    Args:
        path: SQLite database path, or ``":memory:"``.
    """

    def __init__(self, path: str = ":memory:") -> None:
        """Open (and if needed create) the database."""
        self.path = path
        self.lock = threading.RLock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        with self.lock:
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(event_definitions)")}
            if "data_extension" not in columns:  # a database written by an older emulator
                self._conn.execute("ALTER TABLE event_definitions ADD COLUMN data_extension TEXT")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self._conn.execute("BEGIN")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (further calls fail)."""
        with self.lock:
            self._conn.close()

    # -- Data Extensions -------------------------------------------------------------------

    def save_data_extension(self, key: str, definition: dict[str, Any]) -> None:
        """Create or replace a DE definition; its rows are kept.

        Args:
            key: External key.
            definition: Definition in the file format.
        """
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO data_extensions(key_folded, key, definition) VALUES (?, ?, ?) "
                "ON CONFLICT(key_folded) DO UPDATE SET key = excluded.key, "
                "definition = excluded.definition",
                (key.casefold(), key, json.dumps(definition)),
            )

    def load_data_extensions(self) -> list[dict[str, Any]]:
        """Return every stored DE definition.

        Returns:
            Definitions in the file format, in key order.
        """
        with self.lock:
            cur = self._conn.execute("SELECT definition FROM data_extensions ORDER BY key_folded")
            return [_decode(row[0]) for row in cur.fetchall()]

    # -- rows ------------------------------------------------------------------------------

    def fetch_rows(self, de_id: str, pks: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Return the stored rows with the given primary-key identities.

        Args:
            de_id: DE id.
            pks: Normalised primary-key identities.

        Returns:
            Mapping identity -> row for the rows that exist.
        """
        wanted = list(dict.fromkeys(pks))
        found: dict[str, dict[str, Any]] = {}
        with self.lock:
            for start in range(0, len(wanted), _SQLITE_MAX_PARAMS):
                chunk = wanted[start : start + _SQLITE_MAX_PARAMS]
                marks = ",".join("?" * len(chunk))
                cur = self._conn.execute(
                    f"SELECT pk, data FROM de_rows WHERE de_id = ? AND pk IN ({marks})",  # noqa: S608 - placeholders only
                    (de_id, *chunk),
                )
                for pk, data in cur.fetchall():
                    found[pk] = _decode(data)
        return found

    def write_rows(self, de_id: str, rows: Iterable[tuple[str, Any]]) -> None:
        """Insert or replace rows, keeping the original position of existing ones.

        Args:
            de_id: DE id.
            rows: ``(identity, row)`` pairs; a row is a dict or a Struct (missing columns
                ``UNSET``), both encoded by msgspec.
        """
        # Text binds faster than bytes in sqlite3.
        params = [(de_id, pk, _encode(row).decode()) for pk, row in rows]
        if not params:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO de_rows(de_id, pk, data) VALUES (?, ?, ?) "
                "ON CONFLICT(de_id, pk) DO UPDATE SET data = excluded.data",
                params,
            )

    def list_rows(
        self, de_id: str, offset: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Return a DE's rows in first-insertion order.

        Args:
            de_id: DE id.
            offset: Rows to skip.
            limit: Maximum rows to return (None for all).

        Returns:
            Stored rows (column names in canonical spelling).
        """
        with self.lock:
            cur = self._conn.execute(
                "SELECT data FROM de_rows WHERE de_id = ? ORDER BY seq LIMIT ? OFFSET ?",
                (de_id, -1 if limit is None else limit, offset),
            )
            return [_decode(row[0]) for row in cur.fetchall()]

    def fill_column(self, de_id: str, column: str, value: Any) -> None:
        """Give every row of a DE that lacks a column this value (a new column's default).

        Args:
            de_id: DE id.
            column: Column name (canonical spelling).
            value: The value.
        """
        with self._transaction() as conn:
            rows = conn.execute("SELECT seq, data FROM de_rows WHERE de_id = ?", (de_id,))
            updates = []
            for seq, data in rows.fetchall():
                row = _decode(data)
                if row.get(column) is None:
                    row[column] = value
                    updates.append((_encode(row).decode(), seq))
            conn.executemany("UPDATE de_rows SET data = ? WHERE seq = ?", updates)

    def delete_row(self, de_id: str, pk: str) -> bool:
        """Delete one row by its primary-key identity.

        Args:
            de_id: DE id.
            pk: Normalised primary-key identity.

        Returns:
            Whether a row was deleted.
        """
        with self._transaction() as conn:
            cur = conn.execute("DELETE FROM de_rows WHERE de_id = ? AND pk = ?", (de_id, pk))
            return cur.rowcount > 0

    def count_rows(self, de_id: str) -> int:
        """Return how many rows a DE holds.

        Args:
            de_id: DE id.

        Returns:
            The row count.
        """
        with self.lock:
            cur = self._conn.execute("SELECT COUNT(*) FROM de_rows WHERE de_id = ?", (de_id,))
            return int(cur.fetchone()[0])

    # -- contacts --------------------------------------------------------------------------

    def contact_exists(self, contact_key: str) -> bool:
        """Tell whether a contact key is known.

        Args:
            contact_key: The contact key.

        Returns:
            True when the contact exists.
        """
        with self.lock:
            row = self._conn.execute(
                "SELECT 1 FROM contacts WHERE contact_key = ?", (contact_key,)
            ).fetchone()
            return row is not None

    def upsert_contact(self, contact_key: str) -> tuple[int, bool]:
        """Create a contact unless it exists.

        Args:
            contact_key: The contact key.

        Returns:
            ``(contact_id, is_new)``.
        """
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT contact_id FROM contacts WHERE contact_key = ?", (contact_key,)
            ).fetchone()
            if row is not None:
                return int(row[0]), False
            cur = conn.execute(
                "INSERT INTO contacts(contact_key, created_at) VALUES (?, ?)",
                (contact_key, time.time()),
            )
            return int(cur.lastrowid or 0), True

    def list_contacts(self) -> list[dict[str, Any]]:
        """Return every contact in creation order.

        Returns:
            ``[{"contactKey", "contactId", "created_at"}]``.
        """
        with self.lock:
            cur = self._conn.execute(
                "SELECT contact_key, contact_id, created_at FROM contacts ORDER BY contact_id"
            )
            return [
                {"contactKey": key, "contactId": cid, "created_at": created}
                for key, cid, created in cur.fetchall()
            ]

    # -- journey events --------------------------------------------------------------------

    def add_events(self, events: Iterable[tuple[str, str, Any, str]]) -> None:
        """Record journey entry events.

        Args:
            events: ``(contact_key, event_definition_key, data, event_instance_id)`` tuples.
        """
        now = time.time()
        params = [(ck, ek, json.dumps(data), eid, now) for ck, ek, data, eid in events]
        if not params:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO events(contact_key, event_definition_key, data, event_instance_id, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                params,
            )

    def list_events(self) -> list[dict[str, Any]]:
        """Return every recorded event in arrival order.

        Returns:
            ``[{"contactKey", "eventDefinitionKey", "data", "eventInstanceId", "created_at"}]``.
        """
        with self.lock:
            cur = self._conn.execute(
                "SELECT contact_key, event_definition_key, data, event_instance_id, created_at "
                "FROM events ORDER BY seq"
            )
            return [
                {
                    "contactKey": ck,
                    "eventDefinitionKey": ek,
                    "data": json.loads(data),
                    "eventInstanceId": eid,
                    "created_at": created,
                }
                for ck, ek, data, eid, created in cur.fetchall()
            ]

    def add_event_definition(self, key: str, data_extension: str | None = None) -> None:
        """Register (or redefine) a journey entry event definition.

        Args:
            key: Event definition key.
            data_extension: External key of its entry Data Extension, if any.
        """
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO event_definitions(key_folded, key, data_extension) VALUES (?, ?, ?) "
                "ON CONFLICT(key_folded) DO UPDATE SET key = excluded.key, "
                "data_extension = excluded.data_extension",
                (key.casefold(), key, data_extension),
            )

    def event_definition(self, key: str) -> tuple[str, str | None] | None:
        """Look an event definition up case-insensitively.

        Args:
            key: Key as sent by a client.

        Returns:
            ``(key in its registered spelling, entry DE key or None)``, or None if unknown.
        """
        with self.lock:
            row = self._conn.execute(
                "SELECT key, data_extension FROM event_definitions WHERE key_folded = ?",
                (key.casefold(),),
            ).fetchone()
            return None if row is None else (str(row[0]), row[1])

    def list_event_definitions(self) -> list[dict[str, Any]]:
        """Return every event definition in key order.

        Returns:
            ``[{"key", "data_extension"}]``.
        """
        with self.lock:
            cur = self._conn.execute(
                "SELECT key, data_extension FROM event_definitions ORDER BY key_folded"
            )
            return [{"key": key, "data_extension": de} for key, de in cur.fetchall()]

    # -- journeys --------------------------------------------------------------------------

    def add_journey(self, key: str, event_definition_key: str) -> None:
        """Register (or redefine) a journey entered through an event definition.

        Args:
            key: The journey's key (its ``DefinitionKey``).
            event_definition_key: Key of the entry event definition.
        """
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO journeys(key_folded, key, event_definition_folded) VALUES (?, ?, ?) "
                "ON CONFLICT(key_folded) DO UPDATE SET key = excluded.key, "
                "event_definition_folded = excluded.event_definition_folded",
                (key.casefold(), key, event_definition_key.casefold()),
            )

    def journey_key(self, key: str) -> str | None:
        """Look a journey up case-insensitively.

        Args:
            key: Key as sent by a client.

        Returns:
            The key in its registered spelling, or None if unknown.
        """
        with self.lock:
            row = self._conn.execute(
                "SELECT key FROM journeys WHERE key_folded = ?", (key.casefold(),)
            ).fetchone()
            return None if row is None else str(row[0])

    def enter_journeys(self, event_definition_key: str, contact_keys: Iterable[str]) -> None:
        """Make contacts members of every journey entered through an event definition.

        Args:
            event_definition_key: The entry event's definition key.
            contact_keys: Contacts whose entry event was accepted.
        """
        now = time.time()
        with self._transaction() as conn:
            journeys = [
                row[0]
                for row in conn.execute(
                    "SELECT key_folded FROM journeys WHERE event_definition_folded = ?",
                    (event_definition_key.casefold(),),
                )
            ]
            conn.executemany(
                "INSERT INTO journey_members(journey_folded, contact_key, version, entered_at) "
                "VALUES (?, ?, 1, ?) ON CONFLICT(journey_folded, contact_key) DO NOTHING",
                [(journey, contact, now) for journey in journeys for contact in contact_keys],
            )

    def exit_journey(
        self, journey_key: str, contact_key: str, versions: Iterable[int] | None
    ) -> bool:
        """Remove a contact from a journey.

        Args:
            journey_key: The journey's key.
            contact_key: The contact.
            versions: Journey versions to exit from; None for all.

        Returns:
            Whether the contact was a member (of one of the versions).
        """
        wanted = None if versions is None else set(versions)
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT seq, version FROM journey_members "
                "WHERE journey_folded = ? AND contact_key = ?",
                (journey_key.casefold(), contact_key),
            ).fetchone()
            if row is None or (wanted is not None and row[1] not in wanted):
                return False
            conn.execute("DELETE FROM journey_members WHERE seq = ?", (row[0],))
            conn.execute(
                "INSERT INTO journey_exits(journey_folded, contact_key, exited_at) "
                "VALUES (?, ?, ?)",
                (journey_key.casefold(), contact_key, time.time()),
            )
            return True

    def list_journeys(self) -> list[dict[str, Any]]:
        """Return every journey with its members and the contacts it let exit.

        Returns:
            ``[{"key", "event_definition_key", "members", "exited"}]`` in key order;
            ``members`` in order of entry, ``exited`` in order of exit.
        """
        with self.lock:
            definitions = dict(
                self._conn.execute("SELECT key_folded, key FROM event_definitions").fetchall()
            )
            journeys = self._conn.execute(
                "SELECT key_folded, key, event_definition_folded FROM journeys ORDER BY key_folded"
            ).fetchall()
            out = []
            for folded, key, definition in journeys:
                members = self._conn.execute(
                    "SELECT contact_key FROM journey_members WHERE journey_folded = ? ORDER BY seq",
                    (folded,),
                ).fetchall()
                exited = self._conn.execute(
                    "SELECT contact_key FROM journey_exits WHERE journey_folded = ? ORDER BY seq",
                    (folded,),
                ).fetchall()
                out.append(
                    {
                        "key": key,
                        "event_definition_key": definitions.get(definition, definition),
                        "members": [row[0] for row in members],
                        "exited": [row[0] for row in exited],
                    }
                )
            return out


class RequestLog:
    """In-memory log of SFMC requests with per-endpoint status counts.

    Args:
        max_entries: Entries kept (oldest dropped first); counts are never truncated.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        """Create an empty log."""
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=max_entries)
        self._counts: dict[str, dict[int, int]] = {}
        self._in_flight = 0
        self.peak_in_flight = 0  # the most SFMC requests being handled at once

    def enter(self) -> None:
        """Count a request in while it is handled (for the peak of requests in flight)."""
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def leave(self) -> None:
        """Count a handled request out."""
        with self._lock:
            self._in_flight -= 1

    def record(self, *, time: float, method: str, path: str, endpoint: str, status: int) -> None:
        """Append one request.

        Args:
            time: Arrival time (epoch seconds).
            method: HTTP method.
            path: Request path including the query string.
            endpoint: Stable endpoint name.
            status: HTTP status answered (0 when the connection was dropped).
        """
        entry = {
            "time": time,
            "method": method,
            "path": path,
            "endpoint": endpoint,
            "status": status,
        }
        with self._lock:
            self._entries.append(entry)
            per_status = self._counts.setdefault(endpoint, {})
            per_status[status] = per_status.get(status, 0) + 1

    def entries(self) -> list[dict[str, Any]]:
        """Return a copy of the logged requests in arrival-record order.

        Returns:
            Log entries.
        """
        with self._lock:
            return [dict(e) for e in self._entries]

    def counts(self) -> dict[str, dict[int, int]]:
        """Return endpoint -> status -> count.

        Returns:
            A copy of the counters.
        """
        with self._lock:
            return {ep: dict(statuses) for ep, statuses in self._counts.items()}

    def reset(self) -> None:
        """Forget every entry and counter."""
        with self._lock:
            self._entries.clear()
            self._counts.clear()
            self.peak_in_flight = self._in_flight
