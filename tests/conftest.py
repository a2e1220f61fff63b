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
