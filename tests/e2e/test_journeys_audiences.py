"""Journey API events, audiences and computed traits through the CLI."""

from __future__ import annotations

import json

import pytest
from harness import base_config, run_target, singer_lines

from target_sfmc.emulator import SfmcEmulator

IDENTIFY_FIELDS = [
    {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
    {"name": "Email", "type": "EmailAddress"},
    {"name": "Trial Users", "type": "Boolean"},
    {"name": "High Value", "type": "Boolean"},
    {"name": "Lifetime Orders", "type": "Number"},
    {"name": "Average Order Value", "type": "Decimal", "precision": 18, "scale": 2},
    {"name": "Favorite Category", "type": "Text", "length": 50},
    {"name": "Last Order At", "type": "Date"},
]


@pytest.fixture
def emulator():
    with SfmcEmulator(
        data_extensions=[{"key": "IDENTIFY", "fields": IDENTIFY_FIELDS}],
        event_definitions=["APIEvent-signup"],
        inactive_contacts=["sleepy"],
        client_id="e2e-client",
        client_secret="e2e-secret-value-never-logged",
    ) as emu:
        yield emu


def audience_config(emu, **overrides):
    return base_config(
        emu,
        identify_data_extension_key="IDENTIFY",
        streams={"audiences": {"type": "audience"}},
        **overrides,
    )


AUDIENCE_SCHEMA = {
    "properties": {
        "user_id": {"type": "string"},
        "audience": {"type": "string"},
        "in_audience": {"type": "boolean"},
    }
}


def membership(user, audience, member):
    return {"user_id": user, "audience": audience, "in_audience": member}


def test_audience_enter_leave_reenter(emulator, tmp_path):
    config = audience_config(emulator)
    steps = [
        [
            membership("u1", "trial_users", True),
            membership("u2", "trial_users", True),
            membership("u1", "High Value", True),
        ],
        [membership("u1", "trial_users", False)],
        [membership("u1", "trial_users", True), membership("u2", "trial_users", False)],
    ]
    seen = []
    for step in steps:
        run = run_target(tmp_path, config, singer_lines("audiences", AUDIENCE_SCHEMA, step))
        assert run.returncode == 0, run.stderr[-3000:]
        rows = {r["Contact Key"]: r for r in emulator.rows("IDENTIFY")}
        seen.append({k: (r.get("Trial Users"), r.get("High Value")) for k, r in rows.items()})
    assert seen[0] == {"u1": (True, True), "u2": (True, None)}
    assert seen[1] == {
        "u1": (False, True),
        "u2": (True, None),
    }  # leaving writes false, never deletes
    assert seen[2] == {"u1": (True, True), "u2": (False, None)}


def test_latest_membership_in_a_batch_wins(emulator, tmp_path):
    records = [
        membership("u1", "trial_users", True),
        membership("u1", "trial_users", False),
        membership("u1", "High Value", True),
        membership("u1", "trial_users", True),
        membership("u1", "trial_users", False),
    ]
    run = run_target(
        tmp_path, audience_config(emulator), singer_lines("audiences", AUDIENCE_SCHEMA, records)
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = emulator.rows("IDENTIFY")
    assert row["Trial Users"] is False
    assert row["High Value"] is True


def test_computed_traits_keep_their_types(emulator, tmp_path):
    schema = {
        "properties": {
            "user_id": {"type": "string"},
            "lifetime_orders": {"type": "integer"},
            "average_order_value": {"type": "number"},
            "favorite_category": {"type": "string"},
            "last_order_at": {"type": "string", "format": "date-time"},
        }
    }
    config = base_config(
        emulator, identify_data_extension_key="IDENTIFY", streams={"traits": {"type": "identify"}}
    )
    record = {
        "user_id": "u9",
        "lifetime_orders": 12,
        "average_order_value": 45.5,
        "favorite_category": "books",
        "last_order_at": "2024-02-03T04:05:06Z",
    }
    run = run_target(tmp_path, config, singer_lines("traits", schema, [record]))
    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = emulator.rows("IDENTIFY")
    assert row["Lifetime Orders"] == 12 and isinstance(row["Lifetime Orders"], int)
    assert float(row["Average Order Value"]) == 45.5
    assert row["Favorite Category"] == "books"
    assert row["Last Order At"] == "2024-02-03T04:05:06+00:00"


def test_personas_identify_messages_load_audience_and_trait_columns(emulator, tmp_path):
    schema = {
        "properties": {
            "type": {"type": "string"},
            "userId": {"type": "string"},
            "traits": {"type": "object"},
            "messageId": {"type": "string"},
        }
    }
    config = base_config(
        emulator, identify_data_extension_key="IDENTIFY", streams={"personas": {"type": "segment"}}
    )
    messages = [
        {
            "type": "identify",
            "userId": "p1",
            "messageId": "a",
            "traits": {"trial_users": True, "lifetime_orders": 3, "email": "p1@example.com"},
        },
        {"type": "identify", "userId": "p1", "messageId": "b", "traits": {"trial_users": False}},
    ]
    run = run_target(tmp_path, config, singer_lines("personas", schema, messages))
    assert run.returncode == 0, run.stderr[-3000:]
    (row,) = emulator.rows("IDENTIFY")
    assert row["Trial Users"] is False
    assert row["Lifetime Orders"] == 3
    assert row["Email"] == "p1@example.com"


EVENT_SCHEMA = {
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "plan": {"type": "string"},
        "signupSource": {"type": "string"},
        "context": {"type": "object"},
    }
}


@pytest.mark.parametrize("count", [1, 150], ids=["single-endpoint", "batch-endpoint"])
def test_api_event_stream_fires_journey_events(emulator, tmp_path, count):
    config = base_config(
        emulator,
        streams={"signups": {"type": "api_event", "event_definition_key": "APIEvent-signup"}},
    )
    records = [
        {
            "user_id": f"u:{i}",
            "plan": "pro",
            "signupSource": "web",
            "context": {"campaign": {"name": "launch"}},
        }
        for i in range(count)
    ]
    run = run_target(
        tmp_path, config, singer_lines("signups", EVENT_SCHEMA, records, state={"n": count})
    )
    assert run.returncode == 0, run.stderr[-3000:]
    events = emulator.events()
    assert len(events) == count
    first = next(e for e in events if e["contactKey"] == "u0")
    assert first["eventDefinitionKey"] == "APIEvent-signup"
    assert first["data"] == {
        "User Id": "u:0",
        "Plan": "pro",
        "Signup Source": "web",
        "UTM Campaign": "launch",
    }
    counts = emulator.request_counts()
    if count == 1:
        assert counts["event"] == {201: 1}
        assert "async_events" not in counts
    else:
        assert "event" not in counts
        assert sum(counts["async_events"].values()) == 2  # 150 members in batches of at most 100
    assert run.states == [{"n": count}]


def test_segment_track_to_both_conversion_de_and_journey(emulator, tmp_path):
    emulator.add_data_extension(
        {
            "key": "SIGNUPS",
            "fields": [
                {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
                {"name": "Plan", "type": "Text", "length": 20},
            ],
        }
    )
    config = base_config(
        emulator,
        conversion_events=[{"event": "Signed Up", "data_extension_key": "SIGNUPS"}],
        api_events=[{"event": "signed up", "event_definition_key": "APIEvent-signup"}],
        streams={"tracks": {"type": "segment"}},
    )
    schema = {
        "properties": {
            "type": {"type": "string"},
            "userId": {"type": "string"},
            "event": {"type": "string"},
            "properties": {"type": "object"},
        }
    }
    run = run_target(
        tmp_path,
        config,
        singer_lines(
            "tracks",
            schema,
            [
                {
                    "type": "track",
                    "userId": "s1",
                    "event": "Signed Up",
                    "properties": {"plan": "pro"},
                }
            ],
        ),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert emulator.rows("SIGNUPS") == [{"Contact Key": "s1", "Plan": "pro"}]
    assert [e["contactKey"] for e in emulator.events()] == ["s1"]


@pytest.mark.parametrize("policy", ["fail", "skip"])
def test_unknown_definition_and_inactive_contact_are_row_errors(emulator, tmp_path, policy):
    dead = tmp_path / "dead.jsonl"
    config = base_config(
        emulator,
        row_error_policy=policy,
        dead_letter_path=str(dead),
        streams={
            "good": {"type": "api_event", "event_definition_key": "APIEvent-signup"},
            "bad": {"type": "api_event", "event_definition_key": "APIEvent-missing"},
        },
    )
    lines = singer_lines(
        "good", EVENT_SCHEMA, [{"user_id": "ok", "plan": "a"}, {"user_id": "sleepy", "plan": "b"}]
    )
    lines += singer_lines(
        "bad", EVENT_SCHEMA, [{"user_id": "x", "plan": "c"}], state={"done": True}
    )
    run = run_target(tmp_path, config, lines)
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    messages = [letter["message"] for letter in letters]
    if policy == "fail":
        # The first failing stream stops the drain; the other may not have been sent at all.
        assert run.returncode == 1
        assert run.states == []
        assert letters
        assert all("not active" in m or "APIEvent-missing" in m for m in messages)
        return
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"done": True}]
    assert len(letters) == 2
    assert any("not active" in m for m in messages)
    assert any("APIEvent-missing" in m for m in messages)
    assert [e["contactKey"] for e in emulator.events()] == ["ok"]
    assert {letter["row"]["ContactKey"] for letter in letters} == {"sleepy", "x"}


def test_async_mode_refuses_api_events_and_never_calls_contacts(emulator, tmp_path):
    config = base_config(
        emulator,
        use_async_api=True,
        streams={"signups": {"type": "api_event", "event_definition_key": "APIEvent-signup"}},
    )
    run = run_target(tmp_path, config, singer_lines("signups", EVENT_SCHEMA, [{"user_id": "a"}]))
    assert run.returncode == 1
    assert "API events cannot be sent with 'use_async_api'" in run.stderr
    config = base_config(
        emulator,
        use_async_api=True,
        identify_data_extension_key="IDENTIFY",
        streams={"users": {"type": "identify"}},
    )
    schema = {"properties": {"user_id": {"type": "string"}, "email": {"type": "string"}}}
    run = run_target(
        tmp_path, config, singer_lines("users", schema, [{"user_id": "a", "email": "a@b.co"}])
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Contacts API is not called" in run.stderr
    assert "contacts" not in emulator.request_counts()
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "a", "Email": "a@b.co"}]
