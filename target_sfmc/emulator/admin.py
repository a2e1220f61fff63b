"""Inspection and control endpoints under ``/_emulator/`` (no auth, never faulted or logged)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from target_sfmc.emulator.faults import FaultConfig, FaultInjector
from target_sfmc.emulator.schema import DefinitionError
from target_sfmc.emulator.wire import ApiResponse

if TYPE_CHECKING:
    from target_sfmc.emulator.api import SfmcApi
    from target_sfmc.emulator.store import RequestLog

ADMIN_PREFIX = "/_emulator"

_DE_ROWS = re.compile(r"^/_emulator/data-extensions/(?P<key>[^/]+)/rows/?$")
_DE_ONE = re.compile(r"^/_emulator/data-extensions/(?P<key>[^/]+)/?$")


def _message(status: int, message: str) -> ApiResponse:
    return ApiResponse(status, {"message": message})


def counts_as_json(counts: dict[str, dict[int, int]]) -> dict[str, dict[str, int]]:
    """Convert request counts to JSON-friendly string status keys.

    Args:
        counts: endpoint -> status -> count.

    Returns:
        The same with status codes as strings.
    """
    return {ep: {str(status): n for status, n in per.items()} for ep, per in counts.items()}


class AdminApi:
    """Serves ``/_emulator/*``.

    Args:
        api: The emulated account.
        faults: Fault injector to reconfigure.
        log: Request log to report and reset.
    """

    def __init__(self, api: SfmcApi, faults: FaultInjector, log: RequestLog) -> None:
        """Bind to the emulator's parts."""
        self.api = api
        self.faults = faults
        self.log = log

    def handle(self, method: str, path: str, body: bytes) -> ApiResponse:
        """Answer one admin request.

        Args:
            method: HTTP method.
            path: Path without the query string.
            body: Raw body.

        Returns:
            The response.
        """
        route = path.rstrip("/") or "/"
        for pattern, read in ((_DE_ROWS, self._rows), (_DE_ONE, self._definition)):
            match = pattern.match(path)
            if match:
                if method != "GET":
                    return _message(405, "Method Not Allowed")
                return read(unquote(match["key"]))
        getters: dict[str, Any] = {
            "/_emulator/health": lambda: {"status": "ok"},
            "/_emulator/contacts": self.api.store.list_contacts,
            "/_emulator/events": self.api.store.list_events,
            "/_emulator/event-definitions": self.api.store.list_event_definitions,
            "/_emulator/journeys": self.api.store.list_journeys,
            "/_emulator/requests": lambda: {
                "requests": self.log.entries(),
                "counts": counts_as_json(self.log.counts()),
                "peak_in_flight": self.log.peak_in_flight,
            },
            "/_emulator/faults": self.faults.config.to_dict,
            "/_emulator/data-extensions": lambda: [
                de.to_dict() for de in self.api.data_extensions()
            ],
        }
        posts = {
            "/_emulator/data-extensions": self._create_data_extension,
            "/_emulator/event-definitions": self._create_event_definition,
            "/_emulator/journeys": self._create_journey,
            "/_emulator/faults": self._set_faults,
            "/_emulator/reset-log": self._reset_log,
        }
        if method == "GET" and route in getters:
            return ApiResponse(200, getters[route]())
        writes = {("POST", path): handler for path, handler in posts.items()}
        writes["PATCH", "/_emulator/faults"] = self._merge_faults
        if (method, route) in writes:
            try:
                payload = json.loads(body.decode("utf-8")) if body.strip() else {}
            except ValueError:
                return _message(400, "Body is not valid JSON.")
            return writes[method, route](payload)
        if route in getters or route in posts:
            return _message(405, "Method Not Allowed")
        return _message(404, "Unknown emulator endpoint.")

    def _rows(self, key: str) -> ApiResponse:
        try:
            return ApiResponse(200, self.api.rows(key))
        except KeyError:
            return _message(404, "Data Extension not found")

    def _definition(self, key: str) -> ApiResponse:
        cde = self.api.data_extension(key)
        if cde is None:
            return _message(404, "Data Extension not found")
        return ApiResponse(200, cde.de.to_dict())

    def _create_data_extension(self, payload: Any) -> ApiResponse:
        try:
            de = self.api.add_data_extension(payload if isinstance(payload, dict) else {})
        except DefinitionError as exc:
            return _message(400, str(exc))
        return ApiResponse(201, de.to_dict())

    def _create_event_definition(self, payload: Any) -> ApiResponse:
        if not isinstance(payload, dict):
            return _message(400, 'Body must be {"key": <key>, "data_extension": <DE key>?}.')
        try:
            definition = self.api.add_event_definition(payload)
        except DefinitionError as exc:
            return _message(400, str(exc))
        return ApiResponse(201, definition.to_dict())

    def _create_journey(self, payload: Any) -> ApiResponse:
        if not isinstance(payload, dict):
            return _message(400, 'Body must be {"key": <key>, "event_definition_key": <key>}.')
        try:
            journey = self.api.add_journey(payload)
        except DefinitionError as exc:
            return _message(400, str(exc))
        return ApiResponse(201, journey.to_dict())

    def _set_faults(self, payload: Any) -> ApiResponse:
        try:
            config = FaultConfig.from_dict(payload)
        except (TypeError, ValueError) as exc:
            return _message(400, str(exc))
        self.faults.configure(config)
        return ApiResponse(200, config.to_dict())

    def _merge_faults(self, payload: Any) -> ApiResponse:
        """Change only the settings named in the payload (the others are kept)."""
        if not isinstance(payload, dict):
            return _message(400, "Fault config must be an object.")
        return self._set_faults({**self.faults.config.to_dict(), **payload})

    def _reset_log(self, _payload: Any) -> ApiResponse:
        self.log.reset()
        return ApiResponse(200, {"status": "ok"})
