"""Kill -9 at any point, re-run from the last STATE: every row ends up in SFMC.

The input is six chunks, each closed by ``STATE {"chunk": k}``; chunk k also updates ten users
of chunk k-1, so replaying in the wrong order would leave stale values. The target is killed
with SIGKILL once the emulator has seen N rowset requests, then re-run with the input after
the last STATE it printed (everything when it printed none).
"""

from __future__ import annotations

import signal
from typing import Any

import pytest
from cli_harness import run_target
from conftest import (
    IDENTIFY_DE,
    USERS_SCHEMA,
    Emulators,
    LiveTarget,
    contact_keys,
    make_config,
    record_line,
    schema_line,
    sorted_rows,
    state_line,
    wait_until,
)

CHUNKS = 6
NEW_USERS_PER_CHUNK = 40
LATENCY_MS = 60
SETTINGS: dict[str, Any] = {"batch_size_rows": 20, "max_concurrent_requests": 2}


def chunk_records(chunk: int) -> list[dict[str, Any]]:
    records = [
        {
            "user_id": f"k{chunk}-{i:02d}",
            "email": f"k{chunk}.{i}@example.com",
            "score": chunk * 100 + i,
            "plan": f"chunk-{chunk}",
        }
        for i in range(NEW_USERS_PER_CHUNK)
    ]
    if chunk:
        records += [
            {"user_id": f"k{chunk - 1}-{i:02d}", "plan": f"updated-in-{chunk}", "score": -i}
            for i in range(10)
        ]
    return records


def chunk_keys(chunk: int) -> set[str]:
    return {f"k{chunk}-{i:02d}" for i in range(NEW_USERS_PER_CHUNK)}


def input_lines(first_chunk: int = 0) -> list[str]:
    lines = [schema_line("users", USERS_SCHEMA)]
    for chunk in range(first_chunk, CHUNKS):
        lines += [record_line("users", record) for record in chunk_records(chunk)]
        lines.append(state_line({"chunk": chunk}))
    return lines


@pytest.fixture(scope="module")
def uninterrupted_rows(tmp_path_factory) -> list[dict[str, Any]]:
    factory = Emulators()
    try:
        emulator = factory.start(latency_ms=LATENCY_MS)
        run = run_target(
            tmp_path_factory.mktemp("reference"), make_config(emulator, **SETTINGS), input_lines()
        )
        assert run.returncode == 0, run.tail()
        assert run.states == [{"chunk": CHUNKS - 1}]
        rows = sorted_rows(emulator, IDENTIFY_DE)
    finally:
        factory.close()
    assert len(rows) == CHUNKS * NEW_USERS_PER_CHUNK
    return rows


def rowset_requests(emulator) -> int:
    return sum(emulator.request_counts().get("rowset", {}).values())


@pytest.mark.parametrize("kill_after_requests", [1, 6, 12])
def test_sigkill_then_resume_from_last_state_loads_everything(
    emulators, tmp_path, uninterrupted_rows, kill_after_requests
):
    emulator = emulators.start(latency_ms=LATENCY_MS)
    config = make_config(emulator, **SETTINGS)

    live = LiveTarget.start(tmp_path, config, snapshot=lambda: contact_keys(emulator))
    live.feed(input_lines(), close=True)
    assert wait_until(lambda: rowset_requests(emulator) >= kill_after_requests, timeout=60), (
        live.stderr[-3000:]
    )
    live.send_signal(signal.SIGKILL)
    assert live.wait() == -signal.SIGKILL

    # STATE never ran ahead: each one printed names only chunks whose rows are all in SFMC.
    present_at_kill = contact_keys(emulator)
    for sighting in live.sightings:
        closed = sighting.value["chunk"]
        for chunk in range(closed + 1):
            assert chunk_keys(chunk) <= sighting.snapshot, (sighting.value, chunk)
            assert chunk_keys(chunk) <= present_at_kill, (sighting.value, chunk)

    # The run was really interrupted before it finished.
    assert len(present_at_kill) < CHUNKS * NEW_USERS_PER_CHUNK or live.states

    resume_from = live.states[-1]["chunk"] + 1 if live.states else 0
    resumed = run_target(tmp_path, config, input_lines(resume_from))
    assert resumed.returncode == 0, resumed.tail()
    assert resumed.states == [{"chunk": CHUNKS - 1}]

    assert sorted_rows(emulator, IDENTIFY_DE) == uninterrupted_rows
