"""`SfmcEmulator`: the in-process entry point used by tests, the demo, benchmarks and the CLI."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Self

from target_sfmc.emulator.admin import AdminApi
from target_sfmc.emulator.api import DEFAULT_TOKEN_TTL, SfmcApi
from target_sfmc.emulator.faults import FaultConfig, FaultInjector
from target_sfmc.emulator.ratelimit import SlidingWindowLimiter
from target_sfmc.emulator.schema import load_definition_file
from target_sfmc.emulator.server import EmulatorHTTPServer, ServerSettings
from target_sfmc.emulator.store import RequestLog, Store

if TYPE_CHECKING:
    from pathlib import Path
    from types import TracebackType


class SfmcEmulator:
    """A local SFMC REST server with SFMC's semantics, backed by SQLite.

    Example::

        with SfmcEmulator(data_extensions=[...]) as emu:
            requests.post(f"{emu.url}/v2/token", json={...})
            emu.rows("IDENTIFY")

    Args:
        data_extensions: DE definitions (file format); redefining an existing DE keeps its rows.
        event_definitions: Journey entry event definitions: keys, or
            ``{"key": …, "data_extension": <entry DE key>}`` (the DE must be defined).
        inactive_contacts: Contact keys journeys treat as inactive.
        journeys: ``{"key", "event_definition_key"}``: journeys that entry events of the
            definition (which must be defined) bring contacts into.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        db: SQLite path, or ``":memory:"``.
        client_id: Accepted client id.
        client_secret: Accepted client secret.
        account_id: MID; when set, token requests naming another MID are refused.
        rate_limit: Requests per rolling second before 429s; None for no limit.
        latency_ms: Delay added to every SFMC request.
        latency_jitter_ms: Each request's delay varies uniformly by up to this much either way.
        token_ttl: Token lifetime in seconds (advertised and enforced).
        async_delay_ms: Time before an async job is processed.
        faults: Fault settings (see `FaultConfig`).
    """

    def __init__(
        self,
        *,
        data_extensions: list[dict[str, Any]] | None = None,
        event_definitions: list[str | dict[str, Any]] | None = None,
        inactive_contacts: list[str] | None = None,
        journeys: list[dict[str, Any]] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        db: str = ":memory:",
        client_id: str = "test-client-id",
        client_secret: str = "test-client-secret",  # noqa: S107 - the emulator's test secret
        account_id: str | None = None,
        rate_limit: float | None = None,
        latency_ms: int = 0,
        latency_jitter_ms: int = 0,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        async_delay_ms: int = 20,
        faults: dict[str, Any] | None = None,
    ) -> None:
        """Set up the account; call `start` to serve."""
        self.host = host
        self.port = port
        self.url = ""
        self._store = Store(str(db))
        self._faults = FaultInjector(FaultConfig.from_dict(faults))
        self._log = RequestLog()
        self._limiter = SlidingWindowLimiter(rate_limit)
        self._settings = ServerSettings(latency_ms=latency_ms, latency_jitter_ms=latency_jitter_ms)
        self.api = SfmcApi(
            store=self._store,
            faults=self._faults,
            client_id=client_id,
            client_secret=client_secret,
            account_id=account_id,
            token_ttl=token_ttl,
            async_delay_ms=async_delay_ms,
        )
        self._admin = AdminApi(self.api, self._faults, self._log)
        for de in data_extensions or []:
            self.api.add_data_extension(de)
        for definition in event_definitions or []:
            self.api.add_event_definition(definition)
        for journey in journeys or []:
            self.api.add_journey(journey)
        self.api.inactive_contacts.update(inactive_contacts or [])
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> SfmcEmulator:
        """Build an emulator from a definition file.

        Args:
            path: JSON file with ``data_extensions``, ``event_definitions``, ``journeys``,
                ``inactive_contacts``.
            **kwargs: Other constructor arguments; explicit lists override the file's.

        Returns:
            The (not yet started) emulator.
        """
        definitions = load_definition_file(path)
        kwargs.setdefault("data_extensions", definitions.data_extensions)
        kwargs.setdefault("event_definitions", definitions.event_definitions)
        kwargs.setdefault("inactive_contacts", definitions.inactive_contacts)
        kwargs.setdefault("journeys", definitions.journeys)
        return cls(**kwargs)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        """Serve in a daemon thread.

        Returns:
            The base URL, ``http://HOST:PORT``.

        Raises:
            RuntimeError: If already started.
        """
        if self._server is not None:
            raise RuntimeError("The emulator is already running.")
        server = EmulatorHTTPServer(
            (self.host, self.port),
            api=self.api,
            admin=self._admin,
            limiter=self._limiter,
            faults=self._faults,
            log=self._log,
            settings=self._settings,
        )
        self._server = server
        self.port = int(server.server_address[1])
        self.url = f"http://{self.host}:{self.port}"
        self.api.jobs.start()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="sfmc-emulator-http",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving (idempotent). Stored data stays readable through this object."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self.api.jobs.stop()

    def close(self) -> None:
        """Stop serving and close the database."""
        self.stop()
        self._store.close()

    def __enter__(self) -> Self:
        """Start serving (unless already started).

        Returns:
            The emulator.
        """
        if self._server is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop serving."""
        self.stop()

    # -- inspection and control ------------------------------------------------------------

    def rows(self, key: str) -> list[dict[str, Any]]:
        """Return a DE's stored rows (due async jobs are applied first).

        Args:
            key: DE external key (case-insensitive).

        Returns:
            Rows in first-insertion order, columns in the DE's defined spelling and order.

        Raises:
            KeyError: If the DE does not exist.
        """
        return self.api.rows(key)

    def row_count(self, key: str) -> int:
        """Return how many rows a DE holds (due async jobs are applied first).

        Args:
            key: DE external key (case-insensitive).

        Returns:
            The row count.

        Raises:
            KeyError: If the DE does not exist.
        """
        self.api.jobs.process_due()
        cde = self.api.data_extension(key)
        if cde is None:
            raise KeyError(f"Unknown data extension {key!r}")
        return self._store.count_rows(cde.de.id)

    def issued_tokens(self) -> list[str]:
        """Return every access token issued so far (to check that none leaks into logs).

        Returns:
            Tokens, oldest first.
        """
        return self.api.tokens.issued()

    def contacts(self) -> list[dict[str, Any]]:
        """Return the contacts created through the Contacts API.

        Returns:
            ``[{"contactKey", "contactId", "created_at"}]`` in creation order.
        """
        return self._store.list_contacts()

    def events(self) -> list[dict[str, Any]]:
        """Return the journey entry events received.

        Returns:
            ``[{"contactKey", "eventDefinitionKey", "data", "eventInstanceId", "created_at"}]``.
        """
        return self._store.list_events()

    def request_log(self) -> list[dict[str, Any]]:
        """Return the SFMC requests received (admin calls excluded).

        Returns:
            ``[{"time", "method", "path", "endpoint", "status"}]``; ``status`` 0 means the
            connection was dropped by a fault.
        """
        return self._log.entries()

    def peak_in_flight(self) -> int:
        """Return the most SFMC requests handled at once since the start (or ``reset_log``).

        Returns:
            The peak.
        """
        return self._log.peak_in_flight

    def request_counts(self) -> dict[str, dict[int, int]]:
        """Return request counts by endpoint and status.

        Returns:
            endpoint -> status -> count.
        """
        return self._log.counts()

    def set_faults(self, **faults: Any) -> None:
        """Replace the fault configuration (and reseed).

        Args:
            **faults: `FaultConfig` settings; none means no faults.
        """
        self._faults.configure(FaultConfig.from_dict(faults))

    @property
    def fault_config(self) -> FaultConfig:
        """The active fault configuration."""
        return self._faults.config

    def add_data_extension(self, de: dict[str, Any]) -> None:
        """Create or redefine a DE (rows are kept).

        Args:
            de: Definition in the file format.
        """
        self.api.add_data_extension(de)

    def add_event_definition(self, key: str, data_extension: str | None = None) -> None:
        """Register (or redefine) a journey entry event definition.

        Args:
            key: Event definition key.
            data_extension: Key of the entry DE whose fields the events' ``Data`` must use.
        """
        self.api.add_event_definition({"key": key, "data_extension": data_extension})

    def add_journey(self, key: str, event_definition_key: str) -> None:
        """Register (or redefine) a journey entered through an event definition.

        Args:
            key: The journey's key (``DefinitionKey`` in exit requests).
            event_definition_key: Key of its entry event definition (must be defined).
        """
        self.api.add_journey({"key": key, "event_definition_key": event_definition_key})

    def journeys(self) -> list[dict[str, Any]]:
        """Return every journey with its members and the contacts that exited it.

        Returns:
            ``[{"key", "event_definition_key", "members", "exited"}]``.
        """
        return self._store.list_journeys()

    def journey_members(self, key: str) -> list[str]:
        """Return the contacts in a journey, in order of entry.

        Args:
            key: The journey's key (case-insensitive).

        Returns:
            Contact keys.

        Raises:
            KeyError: If the journey does not exist.
        """
        for journey in self._store.list_journeys():
            if journey["key"].casefold() == key.casefold():
                return list(journey["members"])
        raise KeyError(f"Unknown journey {key!r}")

    def reset_log(self) -> None:
        """Clear the request log and counts."""
        self._log.reset()
