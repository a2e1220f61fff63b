"""Kill -9 in the middle of hard deletes, re-run from the last STATE: the same rows as a run
that was never interrupted.

The input is six chunks, each closed by ``STATE {"chunk": k}``. Chunk k upserts 30 users,
deletes ten users of chunk k-1, and within itself deletes five of its users and brings three
of them back (so a batch holds deletes and upserts of the same keys). The target is killed
with SIGKILL once the emulator has seen N SOAP delete requests, then re-run with the input
after the last STATE it printed.
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
USERS_PER_CHUNK = 30
LATENCY_MS = 40
DELETED_AT = "2024-05-01T10:00:00Z"
SETTINGS: dict[str, Any] = {
    "hard_delete": True,
    "batch_size_rows": 15,
    "max_concurrent_requests": 2,
}


def name(chunk: int, i: int) -> str:
    return f"k{chunk}-{i:02d}"


def chunk_records(chunk: int) -> list[dict[str, Any]]:
    records = [
        {"user_id": name(chunk, i), "email": f"k{chunk}.{i}@example.com", "plan": f"c{chunk}"}
        for i in range(USERS_PER_CHUNK)
    ]
    if chunk:
        records += [
            {"user_id": name(chunk - 1, i), "_sdc_deleted_at": DELETED_AT} for i in range(10)
        ]
    records += [{"user_id": name(chunk, i), "_sdc_deleted_at": DELETED_AT} for i in range(20, 25)]
    records += [{"user_id": name(chunk, i), "plan": "revived"} for i in range(20, 23)]
    return records


def deleted_by(chunk: int) -> set[str]:
    """Users whose deletion chunk k closes (none of them comes back later)."""
    earlier = {name(chunk - 1, i) for i in range(10)} if chunk else set()
    return earlier | {name(chunk, i) for i in (23, 24)}


def kept_after(chunk: int) -> set[str]:
    """Users of chunk k present once it is closed and no later chunk deletes them."""
    return {name(chunk, i) for i in range(10, USERS_PER_CHUNK)} - {name(chunk, 23), name(chunk, 24)}


def input_lines(first_chunk: int = 0) -> list[str]:
    lines = [schema_line("users", USERS_SCHEMA)]
    for chunk in range(first_chunk, CHUNKS):
        lines += [record_line("users", record) for record in chunk_records(chunk)]
        lines.append(state_line({"chunk": chunk}))
    return lines


def soap_requests(emulator) -> int:
    return sum(emulator.request_counts().get("soap", {}).values())


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
        assert soap_requests(emulator) >= 10  # the kills below land mid-run
    finally:
        factory.close()
    expected = set().union(*(kept_after(c) for c in range(CHUNKS)))
    expected |= {name(CHUNKS - 1, i) for i in range(10)}  # nothing deletes the last chunk's
    assert {row["Contact Key"] for row in rows} == expected
    assert {row["Contact Key"] for row in rows if row.get("Plan") == "revived"} == {
        name(c, i) for c in range(CHUNKS) for i in (20, 21, 22)
    }
    return rows


@pytest.mark.parametrize("kill_after_deletes", [1, 4, 8])
def test_sigkill_during_deletes_then_resume_ends_with_the_same_rows(
    emulators, tmp_path, uninterrupted_rows, kill_after_deletes
):
    emulator = emulators.start(latency_ms=LATENCY_MS)
    config = make_config(emulator, **SETTINGS)

    live = LiveTarget.start(tmp_path, config, snapshot=lambda: contact_keys(emulator))
    live.feed(input_lines(), close=True)
    assert wait_until(lambda: soap_requests(emulator) >= kill_after_deletes, timeout=60), (
        live.stderr[-3000:]
    )
    live.send_signal(signal.SIGKILL)
    assert live.wait() == -signal.SIGKILL

    # STATE never ran ahead of a delete: each one printed names only chunks whose deletes
    # (and upserts) SFMC had applied when it was printed.
    for sighting in live.sightings:
        closed = sighting.value["chunk"]
        for chunk in range(closed + 1):
            assert not deleted_by(chunk) & sighting.snapshot, (sighting.value, chunk)
            assert kept_after(chunk) <= sighting.snapshot, (sighting.value, chunk)

    # The run was really interrupted: SFMC does not hold what an uninterrupted run leaves.
    assert sorted_rows(emulator, IDENTIFY_DE) != uninterrupted_rows

    resume_from = live.states[-1]["chunk"] + 1 if live.states else 0
    resumed = run_target(tmp_path, config, input_lines(resume_from))
    assert resumed.returncode == 0, resumed.tail()
    assert resumed.states == [{"chunk": CHUNKS - 1}]
    assert sorted_rows(emulator, IDENTIFY_DE) == uninterrupted_rows
