"""HTTP front of the emulator: routing, auth, rate limiting, faults, latency, request log.

Order for an SFMC request: arrival time taken -> rate limit (429, not counted) -> body read ->
fault draw (drop / 500 / 503 / 429) -> latency -> bearer check -> endpoint handler.
Everything under ``/_emulator/`` bypasses all of that.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from target_sfmc.emulator.admin import ADMIN_PREFIX, AdminApi
from target_sfmc.emulator.api import DOCS_URL, SfmcApi
from target_sfmc.emulator.faults import FaultInjector, RequestFault
from target_sfmc.emulator.wire import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from target_sfmc.emulator.ratelimit import SlidingWindowLimiter
    from target_sfmc.emulator.store import RequestLog

logger = logging.getLogger("target_sfmc.emulator")

Handler = Callable[[ApiRequest], ApiResponse]

TOKEN_ENDPOINTS = frozenset({"token", "legacy_token"})
#: Endpoints that check their own credentials (SOAP carries its token in the envelope).
SELF_AUTHENTICATING = TOKEN_ENDPOINTS | {"soap"}
DROPPED = 0
_MULTI_SLASH = re.compile(r"/{2,}")


@dataclass(frozen=True)
class Route:
    """One SFMC route: a path pattern and, per method, an endpoint name and handler name."""

    pattern: re.Pattern[str]
    methods: dict[str, tuple[str, str]]


def _route(pattern: str, **methods: tuple[str, str]) -> Route:
    return Route(re.compile(pattern, re.IGNORECASE), methods)


ROUTES: tuple[Route, ...] = (
    _route(r"^/v2/token$", POST=("token", "token")),
    _route(r"^/v1/requestToken$", POST=("legacy_token", "legacy_token")),
    _route(r"^/hub/v1/dataevents/(?P<ref>[^/]+)/rowset$", POST=("rowset", "rowset")),
    _route(r"^/hub/v1/dataevents/(?P<ref>[^/]+)/rows/(?P<pks>.+)$", PUT=("row_put", "row_put")),
    _route(
        r"^/data/v1/async/dataextensions/(?P<ref>[^/]+)/rows$",
        PUT=("async_upsert", "async_upsert"),
        POST=("async_insert", "async_insert"),
    ),
    _route(r"^/data/v1/async/(?P<id>[^/]+)/status$", GET=("async_status", "async_status")),
    _route(r"^/data/v1/async/(?P<id>[^/]+)/results$", GET=("async_results", "async_results")),
    _route(r"^/contacts/v1/contacts$", POST=("contacts", "contacts")),
    _route(r"^/interaction/v1/events$", POST=("event", "event")),
    _route(r"^/interaction/v1/async/events$", POST=("async_events", "async_events")),
    _route(r"^/interaction/v1/interactions/contactexit$", POST=("contactexit", "contactexit")),
    _route(
        r"^/data/v1/customobjectdata/key/(?P<key>[^/]+)/rowset$",
        GET=("customobjectdata_get", "customobjectdata_get"),
    ),
    _route(
        r"^/interaction/v1/eventDefinitions/key:(?P<key>[^/]+)$",
        GET=("event_definition_get", "event_definition_get"),
    ),
    _route(
        r"^/data/v1/customobjects$",
        GET=("customobjects_search", "customobjects_search"),
        POST=("customobjects_create", "customobjects_create"),
    ),
    _route(r"^/data/v1/customobjects/(?P<id>[^/]+)$", GET=("customobject_get", "customobject_get")),
    _route(
        r"^/data/v1/customobjects/(?P<id>[^/]+)/fields$",
        GET=("customobject_fields", "customobject_fields"),
    ),
    _route(r"^/Service\.asmx$", POST=("soap", "soap")),
    _route(
        r"^/data/v1/customobjectsasync/(?P<id>[^/]+)/fields$",
        POST=("customobject_add_fields", "customobject_add_fields"),
    ),
)

# Path parameters kept percent-encoded because the handler splits them first.
_RAW_PARAMS = frozenset({"pks"})


def match_route(method: str, path: str) -> tuple[str, str | None, dict[str, str], list[str]]:
    """Find the endpoint for a request.

    Args:
        method: HTTP method.
        path: Raw (percent-encoded) path without query.

    Returns:
        ``(endpoint, handler_name, params, allowed_methods)``; the handler name is None when the
        path is unknown (endpoint ``"unknown"``) or the method is not allowed.
    """
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        params = {
            name: value if name in _RAW_PARAMS else unquote(value)
            for name, value in found.groupdict().items()
        }
        allowed = sorted(route.methods)
        if method in route.methods:
            endpoint, handler = route.methods[method]
            return endpoint, handler, params, allowed
        first = route.methods[allowed[0]][0]
        return first, None, params, allowed
    return "unknown", None, {}, []


def _rate_limited() -> ApiResponse:
    return ApiResponse(
        429,
        {
            "message": "Rate limit exceeded",
            "errorcode": 50100,
            "retryAfter": 1,
            "documentation": DOCS_URL,
        },
        {"Retry-After": "1"},
    )


@dataclass
class ServerSettings:
    """Knobs of the HTTP front.

    Attributes:
        latency_ms: Base delay added to every SFMC request.
        latency_jitter_ms: Each request's delay is drawn uniformly from ``latency_ms`` plus or
            minus this much (never below zero), as real round trips vary.
    """

    latency_ms: int = 0
    latency_jitter_ms: int = 0

    def draw_latency_seconds(self, extra_ms: int) -> float:
        """One request's delay: the base, the fault injector's extra, and the jitter.

        Args:
            extra_ms: Latency the fault injector adds.

        Returns:
            Seconds to wait before handling the request.
        """
        latency: float = self.latency_ms + extra_ms
        if self.latency_jitter_ms:
            latency += random.uniform(-self.latency_jitter_ms, self.latency_jitter_ms)  # noqa: S311 - timing noise, not security
        return max(latency, 0) / 1000


class EmulatorHTTPServer(ThreadingHTTPServer):
    """Threaded HTTP server carrying the emulator's parts for its handlers.

    Args:
        address: ``(host, port)``; port 0 picks a free port.
        api: The emulated account.
        admin: Admin endpoints.
        limiter: Rate limiter for SFMC routes.
        faults: Fault injector.
        log: Request log.
        settings: Latency and similar knobs.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        *,
        api: SfmcApi,
        admin: AdminApi,
        limiter: SlidingWindowLimiter,
        faults: FaultInjector,
        log: RequestLog,
        settings: ServerSettings,
    ) -> None:
        """Bind and listen (serving starts with ``serve_forever``)."""
        self.api = api
        self.admin = admin
        self.limiter = limiter
        self.faults = faults
        self.log = log
        self.settings = settings
        super().__init__(address, EmulatorRequestHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # noqa: ARG002
        """Log an error that escaped a handler (instead of printing to stderr directly)."""
        logger.error("Unhandled error while serving %s", client_address, exc_info=sys.exc_info())


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Handles one HTTP connection (keep-alive) for `EmulatorHTTPServer`."""

    protocol_version = "HTTP/1.1"
    server_version = "SFMC-Emulator/1.0"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Send http.server's access/error lines to the debug log (stderr when enabled)."""
        logger.debug("%s - %s", self.address_string(), format % args)

    def parse_request(self) -> bool:
        """Note the arrival as soon as the request line is in, before the headers are parsed.

        Returns:
            Whether the request can be handled (http.server's answer).
        """
        self._arrival = (time.time(), time.monotonic())
        return super().parse_request()

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._dispatch()

    def do_POST(self) -> None:
        """Dispatch a POST."""
        self._dispatch()

    def do_PUT(self) -> None:
        """Dispatch a PUT."""
        self._dispatch()

    def do_PATCH(self) -> None:
        """Dispatch a PATCH."""
        self._dispatch()

    def do_DELETE(self) -> None:
        """Dispatch a DELETE."""
        self._dispatch()

    # -- plumbing --------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, response: ApiResponse) -> None:
        if isinstance(response.body, bytes):
            payload = response.body
        elif response.body is None:
            payload = b""
        else:
            payload = json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _base_url(self) -> str:
        host = self.headers.get("Host")
        if not host:
            bound_host, port = self.server.server_address[:2]
            name = bound_host.decode() if isinstance(bound_host, bytes) else bound_host
            host = f"{name}:{port}"
        return f"http://{host}"

    # -- request flow ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        arrival, arrival_mono = self._arrival
        srv = self.server
        split = urlsplit(self.path)
        path = _MULTI_SLASH.sub("/", split.path) or "/"
        method = self.command
        try:
            if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
                self._send(srv.admin.handle(method, path, self._read_body()))
                return
            endpoint, handler_name, params, allowed = match_route(method, path)
            response: ApiResponse | None
            srv.log.enter()
            try:
                if not srv.limiter.allow(arrival_mono):
                    self._read_body()
                    response = _rate_limited()
                else:
                    body = self._read_body()
                    response = self._serve(
                        endpoint, handler_name, params, allowed, split.query, body
                    )
            finally:
                srv.log.leave()
            # Log before answering so a client that saw the answer also sees the log entry.
            srv.log.record(
                time=arrival,
                method=method,
                path=self.path,
                endpoint=endpoint,
                status=DROPPED if response is None else response.status,
            )
            if response is None:
                self._drop()
            else:
                self._send(response)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _serve(
        self,
        endpoint: str,
        handler_name: str | None,
        params: dict[str, str],
        allowed: list[str],
        query: str,
        body: bytes,
    ) -> ApiResponse | None:
        """Run faults, latency, auth and the handler; None means "drop the connection"."""
        srv = self.server
        if handler_name is None:
            if allowed:
                return ApiResponse(
                    405,
                    {"message": "Method Not Allowed", "errorcode": 0, "documentation": ""},
                    {"Allow": ", ".join(allowed)},
                )
            return ApiResponse(404, {"message": "Service Not Found", "errorcode": 0})
        fault, apply_first = srv.faults.decide_request(token_endpoint=endpoint in TOKEN_ENDPOINTS)
        latency = srv.settings.draw_latency_seconds(srv.faults.config.latency_ms)
        if latency > 0:
            time.sleep(latency)
        request = ApiRequest(
            method=self.command,
            params=params,
            query=dict(parse_qsl(query, keep_blank_values=True)),
            headers=self.headers,
            body=body,
            base_url=self._base_url(),
        )
        if fault is RequestFault.DROP:
            if apply_first:
                self._call(handler_name, endpoint, request)
            return None
        return self._fault_response(fault) or self._call(handler_name, endpoint, request)

    @staticmethod
    def _fault_response(fault: RequestFault) -> ApiResponse | None:
        if fault is RequestFault.ERROR_500:
            return ApiResponse(500, {"message": "Internal Server Error", "documentation": ""})
        if fault is RequestFault.ERROR_503:
            return ApiResponse(
                503,
                {
                    "message": "Service Unavailable",
                    "errorcode": 50300,
                    "retryAfter": 1,
                    "documentation": DOCS_URL,
                },
                {"Retry-After": "1"},
            )
        if fault is RequestFault.ERROR_429:
            return _rate_limited()
        return None

    def _call(self, handler_name: str, endpoint: str, request: ApiRequest) -> ApiResponse:
        api = self.server.api
        if endpoint not in SELF_AUTHENTICATING and not api.is_authorized(
            request.headers.get("Authorization")
        ):
            return api.not_authorized()
        if endpoint in self.server.faults.config.forbidden_endpoints:
            return ApiResponse(
                403, {"message": "Insufficient Privileges", "errorcode": 20002, "documentation": ""}
            )
        handler: Handler = getattr(api, handler_name)
        try:
            return handler(request)
        except Exception:
            logger.exception("Emulator error while handling %s %s", self.command, self.path)
            return ApiResponse(500, {"message": "Internal Server Error", "documentation": ""})
