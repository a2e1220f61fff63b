"""The process-wide limiter keeps every call under ``requests_per_second``."""

from __future__ import annotations

from cli_harness import run_target
from conftest import (
    IDENTIFY_DE,
    USERS_SCHEMA,
    assert_accounted,
    make_config,
    max_requests_in_any_second,
    record_line,
    schema_line,
    state_line,
    summary,
)

RATE = 15
ROWS = 1500


def test_sync_load_never_exceeds_the_rate_limit(emulators, tmp_path):
    emulator = emulators.start(rate_limit=RATE, latency_ms=50)
    lines = [
        schema_line("users", USERS_SCHEMA),
        *(record_line("users", {"user_id": f"r{i:05d}", "score": i}) for i in range(ROWS)),
        state_line({"done": True}),
    ]
    config = make_config(emulator, requests_per_second=RATE, max_concurrent_requests=8)
    run = run_target(tmp_path, config, lines)

    assert run.returncode == 0, run.tail()
    assert run.states == [{"done": True}]
    assert len(emulator.rows(IDENTIFY_DE)) == ROWS

    counts = emulator.request_counts()
    assert sum(counts["rowset"].values()) >= ROWS // 50
    # No fault injection here: any 429 would be the emulator's limiter.
    assert all(429 not in per_status for per_status in counts.values()), counts
    assert max_requests_in_any_second(emulator) <= RATE
    assert_accounted(run.stderr, read=ROWS)
    assert "throttled_429=0" in run.stderr
    assert summary(run.stderr)["written"] == ROWS
