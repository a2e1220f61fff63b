"""The emulator's latency and its jitter, as a client over loopback sees them."""

from __future__ import annotations

import time

import requests

from target_sfmc.emulator import SfmcEmulator
from target_sfmc.emulator.server import ServerSettings


def test_jitter_draws_delays_around_the_latency_never_below_zero() -> None:
    settings = ServerSettings(latency_ms=100, latency_jitter_ms=40)
    draws = [settings.draw_latency_seconds(0) for _ in range(2_000)]
    assert min(draws) >= 0.060
    assert max(draws) <= 0.140
    assert len({round(draw, 4) for draw in draws}) > 100  # they vary
    assert min(draws) < 0.075 and max(draws) > 0.125  # and span the range
    wide = ServerSettings(latency_ms=10, latency_jitter_ms=50)
    assert min(wide.draw_latency_seconds(0) for _ in range(500)) == 0.0


def test_fault_latency_adds_to_the_base() -> None:
    assert ServerSettings(latency_ms=100).draw_latency_seconds(50) == 0.150


def test_requests_wait_for_the_latency() -> None:
    with SfmcEmulator(latency_ms=150, latency_jitter_ms=20) as emulator:
        started = time.monotonic()
        answer = requests.post(
            f"{emulator.url}/v2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "test-client-id",
                "client_secret": "test-client-secret",
            },
            timeout=10,
        )
        elapsed = time.monotonic() - started
    assert answer.status_code == 200
    assert elapsed >= 0.130
