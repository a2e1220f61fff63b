"""Fault-injection soak: a multi-stream, multi-batch load through a faulty SFMC.

The emulator answers a share of requests with 429/500/503, drops connections, expires tokens
early and (async) fails whole jobs and deadlocks rows, with its rate limit set to the target's
``requests_per_second``. The target must end with exactly the rows a fault-free run leaves,
never trip the emulator's rate limiter, and account for every record.
"""

from __future__ import annotations

import pytest
from cli_harness import run_target
from conftest import (
    IDENTIFY_DE,
    ORDERS_DE,
    ORDERS_SCHEMA,
    USERS_SCHEMA,
    assert_accounted,
    make_config,
    max_requests_in_any_second,
    record_line,
    schema_line,
    sorted_rows,
    state_line,
)

RATE = 25
FAULT_SEED = 3  # its first 18 request draws include every fault kind
REQUEST_FAULTS = {
    "error_429": 0.1,
    "error_500": 0.1,
    "error_503": 0.1,
    "drop_connection": 0.05,
    "token_expiry_s": 1.5,
    "seed": FAULT_SEED,
}
ASYNC_FAULTS = {"async_error": 0.2, "async_deadlock": 0.1}


def soak_input() -> tuple[list[str], int]:
    """Four chunks of 150 identify + 100 track records, each closed by a STATE."""
    lines = [
        schema_line("users", USERS_SCHEMA),
        schema_line("orders", ORDERS_SCHEMA, ["user_id", "order_id"]),
    ]
    records = 0
    for chunk in range(4):
        for i in range(150):
            n = chunk * 150 + i
            if n % 37 == 5:  # no user id, no email: skipped as missing_identifier
                record = {"user_id": "", "plan": "anonymous", "score": n}
            elif n % 29 == 3:  # a later update of an earlier user (merged or re-upserted)
                record = {"user_id": f"u{n - 3:04d}", "plan": f"upgraded-{chunk}", "score": -n}
            else:
                record = {
                    "user_id": f"u{n:04d}",
                    "email": f"user{n}@example.com",
                    "score": n,
                    "plan": ("free", "pro", "team")[n % 3],
                    "joined_at": f"2024-0{1 + n % 9}-1{n % 10}T08:30:00+00:00",
                }
            lines.append(record_line("users", record))
            records += 1
        for i in range(100):
            n = chunk * 100 + i
            lines.append(
                record_line(
                    "orders",
                    {
                        "user_id": f"u{n % 250:04d}",
                        "order_id": f"o{n:05d}",
                        "total": round(n * 1.25, 2),
                        "note": f"order number {n}",
                    },
                )
            )
            records += 1
        lines.append(state_line({"chunk": chunk}))
    return lines, records


@pytest.mark.parametrize(
    ("use_async_api", "batch_size_rows"), [(False, 300), (True, 500)], ids=["sync", "async"]
)
def test_soak_under_faults_loads_exactly_what_a_clean_run_loads(
    emulators, tmp_path, use_async_api, batch_size_rows
):
    lines, records = soak_input()
    settings = {
        "use_async_api": use_async_api,
        "batch_size_rows": batch_size_rows,
        "requests_per_second": RATE,
        "max_concurrent_requests": 8,
        "retry_max_attempts": 10,
    }

    clean = emulators.start()
    clean_run = run_target(tmp_path, make_config(clean, **settings), lines)
    assert clean_run.returncode == 0, clean_run.tail()

    faults = dict(REQUEST_FAULTS, **(ASYNC_FAULTS if use_async_api else {}))
    faulty = emulators.start(rate_limit=RATE, faults=faults)
    run = run_target(tmp_path, make_config(faulty, **settings), lines)
    assert run.returncode == 0, run.tail()

    # Every row, exactly as the fault-free run left it.
    for key in (IDENTIFY_DE, ORDERS_DE):
        expected = sorted_rows(clean, key)
        assert expected, key
        assert sorted_rows(faulty, key) == expected, key

    # The faults really happened (otherwise this test proves nothing).
    statuses = [entry["status"] for entry in faulty.request_log()]
    assert {0, 401, 429, 500, 503} <= set(statuses), sorted(set(statuses))
    assert len(faulty.issued_tokens) > 1  # early expiry forced a refresh

    # Never above the emulator's limit: no 429 came from its rate limiter.
    assert max_requests_in_any_second(faulty) <= RATE

    # Every record accounted for, with the same outcome as the clean run.
    counts = assert_accounted(run.stderr, read=records)
    clean_counts = assert_accounted(clean_run.stderr, read=records)
    assert counts == clean_counts
    assert counts["rejected"] == 0
    assert counts["skipped"] > 0
    assert run.states == [{"chunk": 3}]


def test_token_expiring_again_during_retry_backoff_is_refreshed_again(emulators, tmp_path):
    """A token that expires while a request waits out ``Retry-After`` is replaced again.

    Tokens live 0.5 s, every 503 asks for a 1 s wait: after a 503 the retry's token has always
    expired. Requests go one at a time, so the fault draws (seed 3) are reproducible; with them
    one rowset call meets 503 -> 401 -> (refresh) -> 503 -> 401.
    """
    emulator = emulators.start(faults={"error_503": 0.35, "token_expiry_s": 0.5, "seed": 3})
    lines = [
        schema_line("users", USERS_SCHEMA),
        *(record_line("users", {"user_id": f"t{i:03d}", "score": i}) for i in range(300)),
        state_line({"chunk": 0}),
    ]
    config = make_config(
        emulator, batch_size_rows=50, max_concurrent_requests=1, retry_max_attempts=12
    )
    run = run_target(tmp_path, config, lines)

    assert run.returncode == 0, run.tail()
    assert run.states == [{"chunk": 0}]
    assert len(sorted_rows(emulator, IDENTIFY_DE)) == 300
    assert emulator.request_counts()["rowset"].get(401, 0) >= 2
    assert_accounted(run.stderr, read=300)
