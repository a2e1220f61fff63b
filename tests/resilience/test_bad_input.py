"""Bad input via the CLI: clear errors, no tracebacks, no record values, no early STATE.

Each input starts with a good chunk closed by ``STATE {"chunk": 0}``; later chunks are closed by
higher chunk numbers. Whatever STATE a run prints must name only chunks whose rows are in SFMC.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cli_harness import TargetRun, run_target
from conftest import (
    IDENTIFY_DE,
    TRACEBACK,
    USERS_SCHEMA,
    assert_accounted,
    assert_clean_failure_output,
    contact_keys,
    make_config,
    record_line,
    schema_line,
    state_line,
    summary,
)

MARKER = "PII-7c1e-SECRETVALUE"  # put into bad values; must never reach the log
SCHEMA = schema_line("users", USERS_SCHEMA)
GOOD = [
    record_line("users", {"user_id": "ok-1", "score": 1}),
    record_line("users", {"user_id": "ok-2", "score": 2}),
]
CHUNK0 = [SCHEMA, *GOOD, state_line({"chunk": 0})]  # lines 1-4


def assert_no_state_past_unconfirmed(run: TargetRun, emulator, chunks: dict[int, set[str]]) -> None:
    present = contact_keys(emulator)
    for value in run.states:
        for chunk in range(value["chunk"] + 1):
            missing = chunks[chunk] - present
            assert not missing, (value, sorted(missing))


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line or "CRITICAL" in line]


def test_malformed_json_line_names_its_line(emulators, tmp_path):
    emulator = emulators.start()
    bad = '{"type": "RECORD", "stream": "users", "record": {"user_id": "' + MARKER
    run = run_target(tmp_path, make_config(emulator), [*CHUNK0, bad, record_line("users", {})])

    assert run.returncode != 0
    assert re.search(r"\bline 5\b", run.stderr), run.tail()
    assert_clean_failure_output(run.stderr + run.stdout, MARKER)
    assert_no_state_past_unconfirmed(run, emulator, {0: {"ok-1", "ok-2"}})


def test_record_before_schema_names_the_stream(emulators, tmp_path):
    emulator = emulators.start()
    lines = [record_line("users", {"user_id": MARKER}), *CHUNK0]
    run = run_target(tmp_path, make_config(emulator), lines)

    assert run.returncode != 0
    assert "'users'" in run.stderr, run.tail()
    assert "schema" in run.stderr.lower()
    assert_clean_failure_output(run.stderr + run.stdout, MARKER)
    assert run.states == []
    assert emulator.rows(IDENTIFY_DE) == []


@pytest.mark.parametrize(
    ("field", "schema_change", "bad_value"),
    [
        ("plan", {"plan": {"type": "string", "enum": ["free", "pro"]}}, MARKER),
        ("joined_at", {}, f"31/12/2020 25:61 {MARKER}"),
        ("score", {}, f"{MARKER}-not-an-integer"),
    ],
    ids=["fails-its-schema", "non-iso-date-time", "wrong-type"],
)
def test_invalid_record_names_line_and_field_but_not_the_value(
    emulators, tmp_path, field, schema_change, bad_value
):
    emulator = emulators.start()
    schema = json.loads(json.dumps(USERS_SCHEMA))
    schema["properties"].update(schema_change)
    lines = [
        schema_line("users", schema),
        *GOOD,
        state_line({"chunk": 0}),
        record_line("users", {"user_id": "bad-1", field: bad_value}),  # line 5
        record_line("users", {"user_id": "ok-3"}),
        state_line({"chunk": 1}),
    ]
    run = run_target(tmp_path, make_config(emulator), lines)

    assert run.returncode != 0
    errors = " ".join(error_lines(run.stderr))
    assert re.search(r"\bline 5\b", errors), run.tail()
    assert field in errors, run.tail()
    assert_clean_failure_output(run.stderr + run.stdout, MARKER)
    assert_no_state_past_unconfirmed(run, emulator, {0: {"ok-1", "ok-2"}, 1: {"bad-1", "ok-3"}})


def oversized_input() -> list[str]:
    return [
        *CHUNK0,
        record_line("users", {"user_id": "long-1", "nick": f"{MARKER}-far-too-long"}),
        record_line("users", {"user_id": "ok-3", "nick": "short"}),
        state_line({"chunk": 1}),
    ]


def test_oversized_text_under_fail_policy_fails_with_dead_letter(emulators, tmp_path):
    emulator = emulators.start()
    dead_letters = tmp_path / "dead.jsonl"
    config = make_config(emulator, dead_letter_path=str(dead_letters))
    run = run_target(tmp_path, config, oversized_input())

    assert run.returncode == 1, run.tail()
    assert "rejected" in run.stderr and "Nick" in run.stderr
    assert_clean_failure_output(run.stderr + run.stdout, MARKER)
    # The rejected row's chunk is never acknowledged.
    assert_no_state_past_unconfirmed(run, emulator, {0: {"ok-1", "ok-2"}, 1: {"long-1", "ok-3"}})
    letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    assert [(d["reason"], d["row"]["Contact Key"]) for d in letters] == [("rejected", "long-1")]
    assert letters[0]["data_extension_key"] == IDENTIFY_DE
    assert "Nick" in letters[0]["message"]
    assert summary(run.stderr)["rejected"] == 1
    assert "long-1" not in contact_keys(emulator)


def test_oversized_text_under_skip_policy_goes_on(emulators, tmp_path):
    emulator = emulators.start()
    dead_letters = tmp_path / "dead.jsonl"
    config = make_config(emulator, row_error_policy="skip", dead_letter_path=str(dead_letters))
    run = run_target(tmp_path, config, oversized_input())

    assert run.returncode == 0, run.tail()
    assert run.states == [{"chunk": 1}]
    assert contact_keys(emulator) == {"ok-1", "ok-2", "ok-3"}
    counts = assert_accounted(run.stderr, read=4)
    assert (counts["written"], counts["rejected"]) == (3, 1)
    letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    assert [(d["reason"], d["row"]["Contact Key"]) for d in letters] == [("rejected", "long-1")]
    assert_clean_failure_output(run.stderr + run.stdout, MARKER)


def test_empty_and_missing_identifiers_are_skipped_and_counted(emulators, tmp_path):
    emulator = emulators.start()
    dead_letters = tmp_path / "dead.jsonl"
    nameless: list[dict[str, Any]] = [
        {"user_id": "", "plan": "empty id"},
        {"plan": "no id at all"},
        {"user_id": None, "email": None, "plan": "nulls"},
        {"user_id": "   ", "email": "  ", "plan": "blanks"},
        {"user_id": ":::", "plan": "only colons"},
    ]
    lines = [
        *CHUNK0,
        *(record_line("users", record) for record in nameless),
        record_line("users", {"user_id": "", "email": "fallback@example.com"}),
        state_line({"chunk": 1}),
    ]
    config = make_config(emulator, dead_letter_path=str(dead_letters))
    run = run_target(tmp_path, config, lines)

    assert run.returncode == 0, run.tail()
    assert run.states == [{"chunk": 1}]
    assert contact_keys(emulator) == {"ok-1", "ok-2", "fallback@example.com"}
    counts = assert_accounted(run.stderr, read=8)
    assert counts["skipped"] == 5
    assert counts["reasons"] == "missing_identifier=5"
    letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    assert [d["reason"] for d in letters] == ["missing_identifier"] * 5


def test_unknown_stream_fails_at_its_schema_unless_ignored(emulators, tmp_path):
    emulator = emulators.start()
    lines = [
        *CHUNK0,
        schema_line("mystery", {"properties": {"id": {"type": "string"}}}),
        record_line("mystery", {"id": MARKER}),
        state_line({"chunk": 1}),
    ]
    run = run_target(tmp_path, make_config(emulator), lines)
    assert run.returncode == 1
    assert "'mystery'" in " ".join(error_lines(run.stderr)), run.tail()
    assert_clean_failure_output(run.stderr + run.stdout, MARKER)
    assert_no_state_past_unconfirmed(run, emulator, {0: {"ok-1", "ok-2"}, 1: set()})
    assert run.states == [] or contact_keys(emulator) >= {"ok-1", "ok-2"}

    ignored = run_target(tmp_path, make_config(emulator, ignore_unconfigured_streams=True), lines)
    assert ignored.returncode == 0, ignored.tail()
    assert ignored.states == [{"chunk": 1}]
    counts = assert_accounted(ignored.stderr, read=3)
    assert counts["reasons"] == "unconfigured_stream=1"
    assert contact_keys(emulator) == {"ok-1", "ok-2"}
    assert MARKER not in ignored.stderr


@pytest.mark.parametrize("in_schema", [True, False], ids=["declared", "undeclared"])
def test_huge_record_loads_or_fails_clearly(emulators, tmp_path, in_schema):
    emulator = emulators.start()
    schema = json.loads(json.dumps(USERS_SCHEMA))
    if in_schema:
        schema["properties"]["blob"] = {"type": "string"}
    blob = MARKER + "B" * 1_000_000  # a column the Data Extension does not have
    lines = [
        schema_line("users", schema),
        *GOOD,
        state_line({"chunk": 0}),
        record_line("users", {"user_id": "huge-1", "plan": "big", "blob": blob}),
        state_line({"chunk": 1}),
    ]
    run = run_target(tmp_path, make_config(emulator), lines)

    assert_clean_failure_output(run.stderr + run.stdout, MARKER, "B" * 200)
    assert_no_state_past_unconfirmed(run, emulator, {0: {"ok-1", "ok-2"}, 1: {"huge-1"}})
    if run.returncode == 0:
        rows = {row["Contact Key"]: row for row in emulator.rows(IDENTIFY_DE)}
        assert rows["huge-1"]["Plan"] == "big"
        assert run.states == [{"chunk": 1}]
    else:
        assert len(error_lines(run.stderr)) >= 1, run.tail()


@pytest.mark.parametrize(
    "bad_property",
    [
        {"type": "string", "pattern": "^\\p{L}+$"},  # ECMA-262 regex Python's re rejects
        {"type": "integer", "minimum": "5"},  # not a valid JSON Schema
    ],
    ids=["unsupported-pattern", "invalid-schema"],
)
def test_unusable_schema_fails_with_one_clear_error(emulators, tmp_path, bad_property):
    emulator = emulators.start()
    schema = {"properties": {"user_id": {"type": "string"}, "plan": bad_property}}
    lines = [
        schema_line("users", schema),
        record_line("users", {"user_id": "s-1", "plan": MARKER}),
        state_line({"chunk": 1}),
    ]
    run = run_target(tmp_path, make_config(emulator), lines)

    assert run.returncode == 1, run.tail()
    assert_clean_failure_output(run.stderr + run.stdout, MARKER)
    errors = error_lines(run.stderr)
    assert errors, run.tail()
    assert "'users'" in " ".join(errors), run.tail()
    assert run.states == []


def test_unknown_data_extension_stops_the_run_even_under_skip(emulators, tmp_path):
    """A bad DE key is not a row error, whatever words the key contains."""
    emulator = emulators.start()
    config = make_config(
        emulator,
        row_error_policy="skip",
        streams={"users": {"type": "identify", "data_extension_key": "CUSTOMER_FIELDS"}},
    )
    run = run_target(tmp_path, config, CHUNK0)

    assert run.returncode == 1, run.tail()
    errors = " ".join(error_lines(run.stderr))
    assert "CUSTOMER_FIELDS" in errors, run.tail()
    assert "'users'" in errors
    assert "does not exist in SFMC" in errors  # found at its SCHEMA, before any row
    assert run.states == []
    assert_clean_failure_output(run.stderr + run.stdout)


@pytest.mark.parametrize(
    "line",
    [
        '{"type": "RECORD", "stream": "users", "record": ["not", "an", "object"]}',
        '{"type": "RECORD", "stream": "users", "record": null}',
        '{"type": "RECORD", "stream": ["users"], "record": {}}',
        '{"type": "SCHEMA", "stream": "users", "schema": "nope"}',
        '{"type": "SURPRISE", "stream": "users"}',
    ],
    ids=["record-list", "record-null", "stream-list", "schema-text", "unknown-type"],
)
def test_malformed_messages_name_their_line(emulators, tmp_path, line):
    emulator = emulators.start()
    run = run_target(tmp_path, make_config(emulator), [*CHUNK0, line])
    assert run.returncode == 1
    assert f"Input line {len(CHUNK0) + 1}" in run.stderr
    assert TRACEBACK not in run.stderr
    assert run.states == []
