"""Shared fixtures: the SFMC emulator (started in-process on a free port) and an HTTP client for it.

- ``sample_data_extensions``: deep copy of the IDENTIFY and ORDER_COMPLETED sample definitions
  (`target_sfmc.emulator.samples`).
- ``emulator_factory``: ``emulator_factory(**kwargs) -> SfmcEmulator`` builds and starts an
  emulator (defaults: the sample DEs and event definition ``APIEvent-1``); all are stopped at
  teardown.
- ``emulator``: one started emulator with the defaults.
- ``sfmc_client``: ``sfmc_client(emulator, authenticate=True) -> SfmcTestClient``, a
  `requests` session bound to the emulator's URL holding a bearer token.
"""

from __future__ import annotations

import copy
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from target_sfmc.emulator import SfmcEmulator
from target_sfmc.emulator.samples import SAMPLE_DATA_EXTENSIONS, SAMPLE_EVENT_DEFINITIONS

EMULATOR_CLIENT_ID = "test-client-id"
EMULATOR_CLIENT_SECRET = "test-client-secret"
HTTP_TIMEOUT = 10


class SfmcTestClient:
    """Small HTTP client for the emulator used by tests.

    Args:
        emulator: A started emulator.
        client_id: Client id for token requests.
        client_secret: Client secret for token requests.
    """

    def __init__(
        self,
        emulator: SfmcEmulator,
        client_id: str = EMULATOR_CLIENT_ID,
        client_secret: str = EMULATOR_CLIENT_SECRET,
    ) -> None:
        self.emulator = emulator
        self.base = emulator.url
        self.client_id = client_id
        self.client_secret = client_secret
        self.session = requests.Session()

    def url(self, path: str) -> str:
        return self.base + path

    def fetch_token(self, **extra: Any) -> requests.Response:
        body = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            **extra,
        }
        return requests.post(self.url("/v2/token"), json=body, timeout=HTTP_TIMEOUT)

    def authenticate(self) -> str:
        response = self.fetch_token()
        response.raise_for_status()
        token: str = response.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return self.session.request(method, self.url(path), **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def rowset(self, key: str, rows: list[dict[str, Any]]) -> requests.Response:
        return self.post(f"/hub/v1/dataevents/key:{key}/rowset", json=rows)

    def async_upsert(self, key: str, items: list[dict[str, Any]]) -> requests.Response:
        return self.put(f"/data/v1/async/dataextensions/key:{key}/rows", json={"items": items})

    def async_insert(self, key: str, items: list[dict[str, Any]]) -> requests.Response:
        return self.post(f"/data/v1/async/dataextensions/key:{key}/rows", json={"items": items})

    def wait_for_job(self, request_id: str, timeout: float = 10) -> dict[str, Any]:
        """Poll the async status until the job is no longer Pending; return the status object."""
        deadline = time.monotonic() + timeout
        while True:
            body = self.get(f"/data/v1/async/{request_id}/status").json()
            status: dict[str, Any] = body["status"]
            if status["requestStatus"] != "Pending":
                return status
            if time.monotonic() > deadline:
                raise AssertionError(f"async job {request_id} still pending after {timeout}s")
            time.sleep(0.01)

    def results(self, request_id: str, **params: Any) -> dict[str, Any]:
        response = self.get(f"/data/v1/async/{request_id}/results", params=params)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def sample_data_extensions() -> list[dict[str, Any]]:
    """The sample DE definitions (IDENTIFY, ORDER_COMPLETED), safe to modify."""
    return copy.deepcopy(SAMPLE_DATA_EXTENSIONS)


@pytest.fixture(autouse=True)
def _own_budget_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test gets its own budget store (shared rate limit and token cache).

    The target keeps it in the user's cache directory: the runs of one test share it, as the
    runs of one machine do; two tests never see each other's tokens or schedule.
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))


REDIS_PASSWORD = "redis-test-pw-7f2e91c4-never-logged"


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real ``redis-server`` on a free loopback port (with a password), for the session.

    Yields:
        Its port.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        # CI (.ci/run) installs it: there a missing server is a failure, never a skip.
        missing = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    import redis  # noqa: PLC0415

    workdir = tmp_path_factory.mktemp("redis")
    for _ in range(5):
        port = _free_loopback_port()
        proc = subprocess.Popen(
            [
                binary,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--requirepass", REDIS_PASSWORD,
                "--save", "",
                "--appendonly", "no",
                "--dir", str(workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(host="127.0.0.1", port=port, password=REDIS_PASSWORD)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.exceptions.RedisError:
                time.sleep(0.05)
        client.close()
        if proc.poll() is None:
            break
    else:
        pytest.fail("redis-server did not start")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def redis_url(redis_server: int) -> str:
    """``rate_limit_url`` of the session's Redis (database 0), emptied for this test."""
    import redis  # noqa: PLC0415

    client = redis.Redis(host="127.0.0.1", port=redis_server, password=REDIS_PASSWORD)
    client.flushall()
    client.close()
    return f"redis://:{REDIS_PASSWORD}@127.0.0.1:{redis_server}/0"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port where nothing listens (bound, so no one else takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., SfmcEmulator]]:
    """Build and start emulators; every one is stopped at teardown."""
    started: list[SfmcEmulator] = []

    def factory(**kwargs: Any) -> SfmcEmulator:
        kwargs.setdefault("data_extensions", copy.deepcopy(SAMPLE_DATA_EXTENSIONS))
        kwargs.setdefault("event_definitions", list(SAMPLE_EVENT_DEFINITIONS))
        emulator = SfmcEmulator(**kwargs)
        emulator.start()
        started.append(emulator)
        return emulator

    yield factory
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., SfmcEmulator]) -> SfmcEmulator:
    """A started emulator with the sample DEs and event definition ``APIEvent-1``."""
    return emulator_factory()


@pytest.fixture
def sfmc_client() -> Iterator[Callable[..., SfmcTestClient]]:
    """Make `SfmcTestClient`s (authenticated unless ``authenticate=False``)."""
    clients: list[SfmcTestClient] = []

    def make(emulator: SfmcEmulator, *, authenticate: bool = True, **kwargs: Any) -> SfmcTestClient:
        client = SfmcTestClient(emulator, **kwargs)
        if authenticate:
            client.authenticate()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
