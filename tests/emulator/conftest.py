"""Emulator tests: the shared ``sfmc_client``, with a ``wait_for_job`` that waits for a final state.

The emulator's status call answers at once, so a job can be seen ``Executing`` after ``Pending``;
tests that wait for a job want its final state (``Complete`` or ``Error``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

FINAL_STATES = frozenset({"Complete", "Error"})


def wait_for_final_status(client: Any, request_id: str, timeout: float = 10) -> dict[str, Any]:
    """Poll a job's status until it is final; return the ``status`` object."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/data/v1/async/{request_id}/status").json()
        status: dict[str, Any] | None = body.get("status")
        if status is not None and status["requestStatus"] in FINAL_STATES:
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"async job {request_id} not finished after {timeout}s: {body}")
        time.sleep(0.01)


@pytest.fixture
def sfmc_client(sfmc_client: Callable[..., Any]) -> Callable[..., Any]:
    """The shared client factory; its clients' ``wait_for_job`` waits for a final state."""

    def make(emulator: Any, **kwargs: Any) -> Any:
        client = sfmc_client(emulator, **kwargs)
        client.wait_for_job = lambda request_id, timeout=10: wait_for_final_status(
            client, request_id, timeout
        )
        return client

    return make
