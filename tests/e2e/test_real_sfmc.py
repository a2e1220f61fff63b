"""Real SFMC is less tidy than its documentation: the target survives each untidy behaviour.

Each test turns on one of the emulator's real-SFMC modes (see docs/emulator.md) and drives
the real CLI against it.
"""

from __future__ import annotations

import json

import pytest
from harness import base_config, run_target, singer_lines, summary

from target_sfmc.emulator import SfmcEmulator

CONTACT = {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True}
EMAIL = {"name": "Email", "type": "EmailAddress"}
CREATED = {"name": "Created At", "type": "Date"}
IDENTIFY = {"key": "IDENTIFY", "fields": [CONTACT, EMAIL, CREATED]}
SCHEMA = {
    "properties": {
        "user_id": {"type": "string"},
        "email": {"type": "string"},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
    }
}
BAD_ROWS = (3, 70)


def emulator(**faults):
    return SfmcEmulator(
        data_extensions=[IDENTIFY],
        client_id="e2e-client",
        client_secret="e2e-secret-value-never-logged",
        faults=faults,
    )


def users(count: int, bad: tuple[int, ...] = ()) -> list[dict]:
    return [
        {"user_id": f"u{i}", "email": "not-an-email" if i in bad else f"u{i}@example.com"}
        for i in range(count)
    ]


def load(tmp_path, emu, records, **overrides):
    config = base_config(
        emu,
        identify_data_extension_key="IDENTIFY",
        streams={"users": {"type": "identify"}},
        row_error_policy="skip",
        dead_letter_path=str(tmp_path / "dead.jsonl"),
        **overrides,
    )
    lines = singer_lines("users", SCHEMA, records, state={"done": True})
    return run_target(tmp_path, config, lines)


def dead_letters(tmp_path) -> list[dict]:
    path = tmp_path / "dead.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize(
    "paging",
    [
        {"results_paging": "ignored"},
        {"results_paging": "plain_only"},
        {"results_paging": "dollar_only"},
        {"results_page_cap": 20},
    ],
    ids=["page-ignored", "plain-spelling-only", "dollar-spelling-only", "small-pages"],
)
def test_async_results_are_attributed_only_when_certain(tmp_path, paging):
    """Bad rows 3 and 70 of 120: exactly those are rejected, whatever the results paging does."""
    with emulator(**paging) as emu:
        run = load(tmp_path, emu, users(120, BAD_ROWS), use_async_api=True, batch_size_rows=200)
        assert run.returncode == 0, run.tail()
        stored = {row["Contact Key"] for row in emu.rows("IDENTIFY")}
        assert stored == {f"u{i}" for i in range(120) if i not in BAD_ROWS}
        counts = summary(run.stderr)
        assert (counts["written"], counts["rejected"]) == (118, 2)
        rejected = sorted(letter["row"]["Contact Key"] for letter in dead_letters(tmp_path))
        assert rejected == ["u3", "u70"]
        assert run.states == [{"done": True}]


def test_informational_messages_on_an_accepted_async_request_are_not_a_failure(tmp_path):
    with emulator(async_accept_messages=True) as emu:
        run = load(tmp_path, emu, users(30), use_async_api=True)
        assert run.returncode == 0, run.tail()
        assert len(emu.rows("IDENTIFY")) == 30
        assert run.stderr.count("informational messages") == 1
        assert summary(run.stderr)["written"] == 30


@pytest.mark.parametrize(
    "status",
    [
        {"async_status_missing_polls": 2},
        {"async_pending_polls": 2},
        {"async_executing_polls": 2},
    ],
    ids=["no-status-yet", "pending", "executing"],
)
def test_async_status_before_completion_is_waited_out(tmp_path, status):
    with emulator(**status) as emu:
        run = load(tmp_path, emu, users(40), use_async_api=True)
        assert run.returncode == 0, run.tail()
        assert len(emu.rows("IDENTIFY")) == 40
        assert emu.request_counts()["async_upsert"] == {202: 1}


def test_an_error_status_that_turns_complete_is_not_resent(tmp_path):
    with emulator(async_transient_error_polls=1) as emu:
        run = load(tmp_path, emu, users(40), use_async_api=True)
        assert run.returncode == 0, run.tail()
        assert len(emu.rows("IDENTIFY")) == 40
        assert emu.request_counts()["async_upsert"] == {202: 1}  # polled again, not resent
        assert summary(run.stderr)["written"] == 40


def test_a_row_that_always_gets_a_bare_10006_is_isolated_and_the_rest_land(tmp_path):
    with emulator(bare_10006_keys=["u7"]) as emu:
        run = load(tmp_path, emu, users(20), do_not_create_or_update_contacts=True)
        assert run.returncode == 0, run.tail()
        stored = {row["Contact Key"] for row in emu.rows("IDENTIFY")}
        assert stored == {f"u{i}" for i in range(20)} - {"u7"}
        counts = summary(run.stderr)
        assert (counts["written"], counts["rejected"]) == (19, 1)
        (letter,) = dead_letters(tmp_path)
        assert letter["row"]["Contact Key"] == "u7"
        assert "Unable to save rows" in letter["message"]
        assert letter["error_code"] == 10006


def test_a_refused_contact_does_not_hold_back_its_row(tmp_path):
    with emulator(contacts_require_attribute_sets=True) as emu:
        run = load(tmp_path, emu, users(5))
        assert run.returncode == 0, run.tail()
        assert len(emu.rows("IDENTIFY")) == 5
        assert "contacts_failed=5" in run.stderr
        letters = dead_letters(tmp_path)
        assert sorted(letter["row"]["Contact Key"] for letter in letters) == [
            f"u{i}" for i in range(5)
        ]
        assert {letter["reason"] for letter in letters} == {"contact_refused"}
        assert summary(run.stderr)["written"] == 5


def test_every_contact_refused_for_one_reason_stops_the_run_with_one_sentence(tmp_path):
    with emulator(contacts_require_attribute_sets=True) as emu:
        run = load(tmp_path, emu, users(30))
        assert run.returncode == 1
        assert "refused the last 30 Contacts" in run.stderr
        assert "do_not_create_or_update_contacts" in run.stderr
        assert run.stderr.count("Contacts it was asked to create") == 1
        assert "Traceback" not in run.stderr
        assert run.states == []


def test_date_times_reach_sfmc_with_milliseconds_and_an_offset(tmp_path):
    records = [
        {"user_id": "a", "email": "a@x.io", "created_at": "2020-05-30T13:30:00.123456+02:00"},
        {"user_id": "b", "email": "b@x.io", "created_at": "2020-05-30T13:30:59.999999"},
    ]
    with emulator(date_storage="sfmc") as emu:
        for use_async_api in (False, True):
            run = load(tmp_path, emu, records, use_async_api=use_async_api)
            assert run.returncode == 0, run.tail()
            stored = {row["Contact Key"]: row["Created At"] for row in emu.rows("IDENTIFY")}
            # SFMC keeps system time (UTC-6) to the millisecond: truncated, never rounded up.
            assert stored == {"a": "2020-05-30T05:30:00.123", "b": "2020-05-30T07:30:59.999"}
