"""A float in an incoming STATE does not crash the target and comes back unchanged (SDK #3787)."""

from __future__ import annotations

import json

import pytest
from cli_harness import run_target
from conftest import (
    TRACEBACK,
    USERS_SCHEMA,
    contact_keys,
    make_config,
    record_line,
    schema_line,
    state_line,
)


@pytest.mark.parametrize("with_records", [True, False], ids=["after-records", "state-only"])
def test_float_in_state_is_emitted_back_exactly(emulators, tmp_path, with_records):
    emulator = emulators.start()
    lines = [schema_line("users", USERS_SCHEMA)]
    if with_records:
        lines.append(record_line("users", {"user_id": "f1", "score": 1}))
    lines.append(state_line({"bookmark": 1.5}))
    run = run_target(tmp_path, make_config(emulator), lines)

    assert run.returncode == 0, run.tail()
    assert TRACEBACK not in run.stderr
    assert run.states == [{"bookmark": 1.5}]
    assert json.loads(run.stdout.strip())["bookmark"] == 1.5
    if with_records:
        assert contact_keys(emulator) == {"f1"}


def test_nested_and_imprecise_floats_keep_their_text(emulators, tmp_path):
    emulator = emulators.start()
    value = {
        "bookmarks": {"users": {"replication_key_value": 1700000000.123456, "ratio": 0.1}},
        "progress": [0.5, 2.25e-7, -3.0],
    }
    lines = [
        schema_line("users", USERS_SCHEMA),
        record_line("users", {"user_id": "f2"}),
        state_line({"bookmark": 1}),
        state_line(value),
    ]
    run = run_target(tmp_path, make_config(emulator), lines)

    assert run.returncode == 0, run.tail()
    assert run.states == [value]
    raw = run.stdout.strip()
    assert "0.1000000" not in raw  # no binary-float expansion of 0.1
    assert "1700000000.123456" in raw
