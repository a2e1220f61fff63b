"""SIGTERM never makes the target emit STATE for rows SFMC has not confirmed (SDK #3775).

The SDK's handler drains and writes STATE from inside the signal handler; during a drain that
nested drain finds an empty batch and emits STATE for the rows still in flight, then exits 0.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from conftest import (
    TRACEBACK,
    USERS_SCHEMA,
    LiveTarget,
    contact_keys,
    make_config,
    record_line,
    schema_line,
    state_line,
    wait_until,
)


def users(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"user_id": f"{prefix}{i:03d}", "score": i, "plan": prefix} for i in range(count)]


def keys_of(records: list[dict[str, Any]]) -> set[str]:
    return {record["user_id"] for record in records}


def assert_states_confirmed(live: LiveTarget, chunks: dict[int, set[str]]) -> None:
    """Every STATE seen names only chunks whose rows were in the emulator when it appeared."""
    for sighting in live.sightings:
        closed = sighting.value["chunk"]
        for chunk in range(1, closed + 1):
            missing = chunks[chunk] - sighting.snapshot
            assert not missing, (sighting.value, sorted(missing)[:5])


def rowset_requests(emulator) -> int:
    return sum(emulator.request_counts().get("rowset", {}).values())


def test_sigterm_while_a_batch_loads_exits_non_zero_without_unconfirmed_state(emulators, tmp_path):
    emulator = emulators.start(latency_ms=300)
    config = make_config(emulator, batch_size_rows=400, max_concurrent_requests=1)
    first, second = users("a", 200), users("b", 200)
    live = LiveTarget.start(tmp_path, config, snapshot=lambda: contact_keys(emulator))
    # The 400th record fills the sink: the target drains 8 slow rowsets in its main thread
    # while STATE {"chunk": 1} (for rows not yet confirmed) is already known to it.
    live.feed(
        [schema_line("users", USERS_SCHEMA)]
        + [record_line("users", r) for r in first]
        + [state_line({"chunk": 1})]
        + [record_line("users", r) for r in second]
        + [state_line({"chunk": 2})]
    )
    assert wait_until(lambda: rowset_requests(emulator) >= 2, timeout=60), live.stderr[-3000:]
    assert len(contact_keys(emulator)) < 400  # still loading
    live.send_signal(signal.SIGTERM)
    code = live.wait(timeout=60)

    assert code != 0, live.stderr[-3000:]
    assert_states_confirmed(live, {1: keys_of(first), 2: keys_of(second)})
    assert TRACEBACK not in live.stderr, live.stderr[-4000:]


def test_sigterm_while_idle_drains_what_was_read_and_emits_only_confirmed_state(
    emulators, tmp_path
):
    emulator = emulators.start(latency_ms=20)
    config = make_config(emulator, batch_size_rows=100)
    first, second = users("c", 100), users("d", 30)
    live = LiveTarget.start(tmp_path, config, snapshot=lambda: contact_keys(emulator))
    # Chunk 1 fills a batch (loaded at once); chunk 2 stays in memory; stdin stays open.
    live.feed(
        [schema_line("users", USERS_SCHEMA)]
        + [record_line("users", r) for r in first]
        + [state_line({"chunk": 1})]
        + [record_line("users", r) for r in second]
        + [state_line({"chunk": 2})]
    )
    assert wait_until(lambda: keys_of(first) <= contact_keys(emulator), timeout=60), live.stderr[
        -3000:
    ]
    # Idle: the emulator sees nothing new for a while (the target waits on stdin).
    seen = len(emulator.request_log())
    time.sleep(1.0)
    assert len(emulator.request_log()) == seen
    assert live.proc.poll() is None

    live.send_signal(signal.SIGTERM)
    live.wait(timeout=60)

    assert_states_confirmed(live, {1: keys_of(first), 2: keys_of(second)})
    # It loaded what it had read before exiting, and said so with the latest STATE.
    assert keys_of(first) | keys_of(second) <= contact_keys(emulator)
    assert live.states, live.stderr[-3000:]
    assert live.states[-1] == {"chunk": 2}
    assert TRACEBACK not in live.stderr, live.stderr[-4000:]
