"""Journey exit through the CLI: audiences that enter and leave a journey, API events whose
deleted records take the contact out of it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from cli_harness import TargetRun, run_target, singer_lines, summary
from harness import CLIENT_ID, CLIENT_SECRET, base_config

from target_sfmc.emulator import SfmcEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

IDENT = "IDENTIFY"
IDENTIFY_FIELDS = [
    {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
    {"name": "Trial Users", "type": "Boolean"},
]
AUDIENCE_SCHEMA = {
    "properties": {
        "user_id": {"type": "string"},
        "audience": {"type": "string"},
        "in_audience": {"type": "boolean"},
    }
}
SIGNUP_SCHEMA = {
    "properties": {"user_id": {"type": "string"}, "plan": {"type": ["string", "null"]}}
}
DELETED_AT = "2024-05-01T10:00:00Z"


@pytest.fixture
def emulator() -> Iterator[SfmcEmulator]:
    with SfmcEmulator(
        data_extensions=[{"key": IDENT, "fields": IDENTIFY_FIELDS}],
        event_definitions=["APIEvent-trial", "APIEvent-signup"],
        journeys=[
            {"key": "TRIAL-NURTURE", "event_definition_key": "APIEvent-trial"},
            {"key": "ONBOARDING", "event_definition_key": "APIEvent-signup"},
        ],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    ) as started:
        yield started


def audience_config(emulator: SfmcEmulator, **overrides: Any) -> dict[str, Any]:
    stream = {
        "type": "audience",
        "journey_key": "TRIAL-NURTURE",
        "event_definition_key": "APIEvent-trial",
    }
    settings: dict[str, Any] = {
        "identify_data_extension_key": IDENT,
        "do_not_create_or_update_contacts": True,
        "requests_per_second": 200,
        "streams": {"audiences": stream},
    }
    settings.update(overrides)
    return base_config(emulator, **settings)


def signup_config(emulator: SfmcEmulator, **stream: Any) -> dict[str, Any]:
    settings = {
        "type": "api_event",
        "event_definition_key": "APIEvent-signup",
        "journey_key": "ONBOARDING",
        "exit_on_delete": True,
        **stream,
    }
    return base_config(emulator, requests_per_second=200, streams={"signups": settings})


def member(user: str, joined: bool, **extra: Any) -> dict[str, Any]:  # noqa: FBT001
    return {"user_id": user, "audience": "trial_users", "in_audience": joined, **extra}


def audiences(*records: dict[str, Any]) -> list[str]:
    return singer_lines("audiences", AUDIENCE_SCHEMA, list(records))


def trial_column(emulator: SfmcEmulator) -> dict[str, Any]:
    return {row["Contact Key"]: row.get("Trial Users") for row in emulator.rows(IDENT)}


def entered(emulator: SfmcEmulator, definition: str = "APIEvent-trial") -> list[str]:
    return [e["contactKey"] for e in emulator.events() if e["eventDefinitionKey"] == definition]


def second_deliveries(run: TargetRun) -> tuple[int, int, int]:
    found = re.findall(
        r"Summary: .*second deliveries: written=(\d+) rejected=(\d+) skipped=(\d+)", run.stderr
    )
    assert found, run.tail()
    written, rejected, skipped = found[-1]
    return int(written), int(rejected), int(skipped)


def test_joining_fires_the_entry_event_and_leaving_exits_the_journey(emulator, tmp_path):
    first = run_target(
        tmp_path,
        audience_config(emulator),
        audiences(*(member(u, True) for u in ("u1", "u2", "u3"))),
    )
    assert first.returncode == 0, first.tail()
    assert sorted(emulator.journey_members("TRIAL-NURTURE")) == ["u1", "u2", "u3"]
    events = [e for e in emulator.events() if e["eventDefinitionKey"] == "APIEvent-trial"]
    assert events[0]["data"] == {"Contact Key": events[0]["contactKey"], "Trial Users": True}

    second = run_target(tmp_path, audience_config(emulator), audiences(member("u2", False)))
    assert second.returncode == 0, second.tail()
    assert sorted(emulator.journey_members("TRIAL-NURTURE")) == ["u1", "u3"]
    assert trial_column(emulator) == {"u1": True, "u2": False, "u3": True}
    counts = summary(second.stderr)
    assert (counts["read"], counts["written"], counts["deleted"]) == (1, 1, 0)
    assert second_deliveries(second) == (1, 0, 0)  # the exit is the record's second delivery


def test_each_contacts_entries_and_exits_keep_input_order_within_a_batch(emulator, tmp_path):
    records = [
        member("a", True),
        member("a", False),
        member("a", True),  # joins, leaves, joins again: a member
        member("b", False),
        member("b", True),  # not in it, then joins: a member
        member("c", True),
        member("c", False),  # joins then leaves: out
    ]
    run = run_target(tmp_path, audience_config(emulator), audiences(*records))
    assert run.returncode == 0, run.tail()
    assert sorted(emulator.journey_members("TRIAL-NURTURE")) == ["a", "b"]
    (journey,) = [j for j in emulator.journeys() if j["key"] == "TRIAL-NURTURE"]
    assert sorted(journey["exited"]) == ["a", "c"]
    assert sorted(entered(emulator)) == ["a", "a", "b", "c"]
    assert second_deliveries(run) == (7, 0, 0)


@pytest.mark.parametrize("reports_absent", [False, True], ids=["quiet", "reported"])
def test_leaving_a_journey_one_is_not_in_is_no_error(emulator, tmp_path, reports_absent):
    emulator.set_faults(contactexit_reports_absent=reports_absent)
    run = run_target(tmp_path, audience_config(emulator), audiences(member("stranger", False)))
    assert run.returncode == 0, run.tail()
    assert second_deliveries(run) == (1, 0, 0)
    assert sum(emulator.request_counts()["contactexit"].values()) == 1


def test_an_unknown_journey_refuses_the_exit_by_the_row_error_policy(emulator, tmp_path):
    config = audience_config(emulator)
    config["streams"]["audiences"]["journey_key"] = "NO-SUCH-JOURNEY"
    run = run_target(tmp_path, config, audiences(member("u1", False)))
    assert run.returncode == 1, run.tail()
    assert "Invalid Interaction Name" in run.stderr
    assert "Traceback" not in run.stderr
    assert trial_column(emulator) == {"u1": False}  # the row itself was written
    letters = tmp_path / "dead.jsonl"
    config.update(row_error_policy="skip", dead_letter_path=str(letters))
    skipped = run_target(tmp_path, config, audiences(member("u1", False)))
    assert skipped.returncode == 0, skipped.tail()
    assert second_deliveries(skipped) == (0, 1, 0)
    (letter,) = [json.loads(line) for line in letters.read_text().splitlines()]
    assert (letter["data_extension_key"], letter["row"]) == (
        "NO-SUCH-JOURNEY",
        {"ContactKey": "u1"},
    )


def test_exits_go_fifty_contacts_a_request(emulator, tmp_path):
    users = [f"u{i:03d}" for i in range(120)]
    joined = run_target(
        tmp_path, audience_config(emulator), audiences(*(member(u, True) for u in users))
    )
    assert joined.returncode == 0, joined.tail()
    emulator.reset_log()
    left = run_target(
        tmp_path, audience_config(emulator), audiences(*(member(u, False) for u in users))
    )
    assert left.returncode == 0, left.tail()
    assert emulator.journey_members("TRIAL-NURTURE") == []
    assert emulator.request_counts()["contactexit"] == {202: 3}


def test_a_deleted_membership_with_hard_delete_leaves_the_audience_and_journey(emulator, tmp_path):
    config = audience_config(emulator, hard_delete=True)
    run = run_target(tmp_path, config, audiences(member("u1", True), member("u2", True)))
    assert run.returncode == 0, run.tail()
    schema = {"properties": {**AUDIENCE_SCHEMA["properties"], "_sdc_deleted_at": {}}}
    deleted = singer_lines("audiences", schema, [member("u1", True, _sdc_deleted_at=DELETED_AT)])
    run = run_target(tmp_path, config, deleted)
    assert run.returncode == 0, run.tail()
    assert trial_column(emulator) == {"u1": False, "u2": True}  # the row stays: never deleted
    assert emulator.journey_members("TRIAL-NURTURE") == ["u2"]


def test_an_api_event_deleted_record_exits_the_contact(emulator, tmp_path):
    config = signup_config(emulator)
    records = [{"user_id": "u1", "plan": "pro"}, {"user_id": "u2", "plan": "pro"}]
    run = run_target(tmp_path, config, singer_lines("signups", SIGNUP_SCHEMA, records))
    assert run.returncode == 0, run.tail()
    assert sorted(emulator.journey_members("ONBOARDING")) == ["u1", "u2"]
    records = [
        {"user_id": "u1", "_sdc_deleted_at": DELETED_AT},
        {"user_id": "u3", "plan": "free"},
        {"user_id": "u3", "_sdc_deleted_at": DELETED_AT},  # enters, then exits: order kept
    ]
    run = run_target(tmp_path, config, singer_lines("signups", SIGNUP_SCHEMA, records))
    assert run.returncode == 0, run.tail()
    assert emulator.journey_members("ONBOARDING") == ["u2"]
    counts = summary(run.stderr)
    assert (counts["read"], counts["written"], counts["deleted"]) == (3, 1, 2)


def test_without_exit_on_delete_a_deleted_api_event_record_enters_as_before(emulator, tmp_path):
    config = signup_config(emulator, exit_on_delete=False)
    records = [{"user_id": "u1", "_sdc_deleted_at": DELETED_AT}]
    run = run_target(tmp_path, config, singer_lines("signups", SIGNUP_SCHEMA, records))
    assert run.returncode == 0, run.tail()
    assert emulator.journey_members("ONBOARDING") == ["u1"]
    assert "contactexit" not in emulator.request_counts()


@pytest.mark.parametrize(
    ("stream", "extra", "words"),
    [
        ({"type": "api_event", "event_definition_key": "E", "exit_on_delete": True}, {}, "needs"),
        ({"type": "identify", "exit_on_delete": True, "journey_key": "J"}, {}, "exit_on_delete"),
        ({"type": "identify", "journey_key": "J"}, {}, "journey_key"),
        ({"type": "audience", "journey_key": "J"}, {}, "go together"),
        ({"type": "audience", "event_definition_key": "E"}, {}, "go together"),
        (
            {"type": "audience", "journey_key": "J", "event_definition_key": "E"},
            {"use_async_api": True},
            "audience journeys",
        ),
    ],
    ids=[
        "exit-without-journey",
        "exit-on-identify",
        "journey-on-identify",
        "journey-alone",
        "event-alone",
        "async",
    ],
)
def test_journey_settings_that_cannot_work_are_refused(emulator, tmp_path, stream, extra, words):
    config = base_config(
        emulator, identify_data_extension_key=IDENT, streams={"s": stream}, **extra
    )
    run = run_target(tmp_path, config, audiences())
    assert run.returncode != 0
    assert words in run.stderr
    assert "Traceback" not in run.stderr
