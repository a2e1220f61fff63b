"""Requests in flight follow SFMC's latency, up to max_concurrent_requests (CLI vs emulator).

Nothing here measures time: the emulator counts the most requests it handled at once.
"""

from __future__ import annotations

import json

import pytest
from harness import CLIENT_ID, CLIENT_SECRET, EXAMPLES, base_config, run_target, singer_lines

from target_sfmc.emulator import SfmcEmulator

SCHEMA = {
    "type": "object",
    "properties": {"userId": {"type": "string"}, "email": {"type": "string"}},
}
ROWS = 1_500  # 30 rowsets


def slow_emulator(latency_ms: int) -> SfmcEmulator:
    definition = json.loads((EXAMPLES / "data_extensions.json").read_text())
    return SfmcEmulator(
        data_extensions=definition["data_extensions"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        latency_ms=latency_ms,
        latency_jitter_ms=latency_ms // 10,
        rate_limit=20,
    )


def load(tmp_path, emulator: SfmcEmulator, **settings) -> None:
    records = [{"userId": f"u{i}", "email": f"u{i}@example.com"} for i in range(ROWS)]
    config = base_config(
        emulator,
        identify_data_extension_key="IDENTIFY",
        streams={"users": {"type": "identify"}},
        do_not_create_or_update_contacts=True,
        **settings,
    )
    run = run_target(tmp_path, config, singer_lines("users", SCHEMA, records, ["userId"]))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(emulator.rows("IDENTIFY")) == ROWS
    counts = emulator.request_counts()
    assert counts["rowset"] == {200: ROWS // 50}  # no 429: never above the rate limit


def test_a_slow_sfmc_gets_more_requests_in_flight_at_default_settings(tmp_path) -> None:
    # At 20 requests/s and ~0.6 s each, ~11 are in flight; a fixed 4 would cap the rate at ~7/s.
    with slow_emulator(600) as emulator:
        load(tmp_path, emulator, requests_per_second=20)
        assert emulator.peak_in_flight() >= 8


def test_a_fast_sfmc_keeps_few_requests_in_flight(tmp_path) -> None:
    with slow_emulator(20) as emulator:
        load(tmp_path, emulator, requests_per_second=20)
        assert emulator.peak_in_flight() <= 4


@pytest.mark.parametrize("ceiling", [3])
def test_max_concurrent_requests_is_a_ceiling(tmp_path, ceiling: int) -> None:
    with slow_emulator(600) as emulator:
        load(tmp_path, emulator, requests_per_second=20, max_concurrent_requests=ceiling)
        assert emulator.peak_in_flight() == ceiling
