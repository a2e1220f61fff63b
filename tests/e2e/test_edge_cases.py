"""Edge cases found in review, each driven through the CLI against the emulator."""

from __future__ import annotations

import json
import time

from harness import base_config, run_target, singer_lines, summary

from target_sfmc.emulator import SfmcEmulator
from target_sfmc.target import TargetSfmc

CONTACT = {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True}


def emulator_with(*data_extensions, **kwargs):
    return SfmcEmulator(
        data_extensions=list(data_extensions),
        client_id="e2e-client",
        client_secret="e2e-secret-value-never-logged",
        **kwargs,
    )


def test_schema_change_mid_stream_keeps_the_newest_values(tmp_path):
    identify = {"key": "IDENTIFY", "fields": [CONTACT, {"name": "First Name", "type": "Text"}]}
    with emulator_with(identify) as emulator:
        v1 = {"properties": {"user_id": {"type": "string"}, "first_name": {"type": "string"}}}
        v2 = {"properties": {**v1["properties"], "plan": {"type": "string"}}}
        lines = singer_lines("users", v1, [{"user_id": "u1", "first_name": "OLD"}])
        lines += singer_lines(
            "users",
            v2,
            [{"user_id": "u1", "first_name": "NEW"}, {"user_id": "u2", "first_name": "x"}],
        )
        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            streams={"users": {"type": "identify"}},
            batch_size_rows=2,
            do_not_create_or_update_contacts=True,
        )
        run = run_target(tmp_path, config, lines)
        assert run.returncode == 0, run.stderr[-3000:]
        rows = {r["Contact Key"]: r["First Name"] for r in emulator.rows("IDENTIFY")}
        assert rows == {"u1": "NEW", "u2": "x"}


def test_uuid_keys_ignore_sdk_metadata_on_replay(tmp_path):
    views = {
        "key": "VIEWS",
        "fields": [{**CONTACT, "name": "Uuid"}, {"name": "Url", "type": "Text"}],
    }
    with emulator_with(views) as emulator:
        schema = {"properties": {"url": {"type": "string"}}}
        config = base_config(
            emulator,
            add_record_metadata=True,
            streams={
                "views": {"type": "track", "data_extension_key": "VIEWS", "uuid_primary_key": True}
            },
        )
        lines = singer_lines("views", schema, [{"url": "/a"}, {"url": "/b"}])
        for _ in range(2):
            run = run_target(tmp_path, config, lines)
            assert run.returncode == 0, run.stderr[-3000:]
        assert sorted(r["Url"] for r in emulator.rows("VIEWS")) == ["/a", "/b"]


def test_segment_track_sent_twice_is_one_record_in_the_summary(tmp_path):
    signups = {
        "key": "SIGNUPS",
        "fields": [{**CONTACT, "name": "Uuid"}, {"name": "Plan", "type": "Text"}],
    }
    with emulator_with(signups, event_definitions=["APIEvent-signup"]) as emulator:
        config = base_config(
            emulator,
            conversion_events=[
                {"event": "Signed Up", "data_extension_key": "SIGNUPS", "uuid_primary_key": True}
            ],
            api_events=[{"event": "Signed Up", "event_definition_key": "APIEvent-signup"}],
            streams={"tracks": {"type": "segment"}},
        )
        schema = {"properties": {"type": {"type": "string"}, "event": {"type": "string"}}}
        messages = [
            {"type": "track", "userId": "s1", "event": "Signed Up", "messageId": "m1"},
            {"type": "track", "userId": "s2", "event": "Signed Up", "messageId": "m2"},
            {"type": "track", "event": "Signed Up", "messageId": "m3"},  # anonymous
        ]
        run = run_target(tmp_path, config, singer_lines("tracks", schema, messages))
        assert run.returncode == 0, run.stderr[-3000:]
        counts = summary(run.stderr)
        assert counts["read"] == 3
        assert counts["written"] + counts["merged"] + counts["skipped"] + counts["rejected"] == 3
        assert counts["written"] == 3  # three DE rows (Uuid keys need no Contact Key)
        assert "second deliveries: written=2 rejected=0 skipped=1" in run.stderr
        assert len(emulator.events()) == 2


def test_nested_segment_datetimes_get_an_offset(tmp_path):
    identify = {"key": "IDENTIFY", "fields": [CONTACT, {"name": "Created At", "type": "Date"}]}
    with emulator_with(identify) as emulator:
        schema = {
            "properties": {
                "type": {"type": "string"},
                "userId": {"type": "string"},
                "traits": {
                    "type": "object",
                    "properties": {"created_at": {"type": "string", "format": "date-time"}},
                },
            }
        }
        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            streams={"events": {"type": "segment"}},
            do_not_create_or_update_contacts=True,
        )
        messages = [
            {"type": "identify", "userId": "a", "traits": {"created_at": "2020-05-30T13:30:00"}},
            {"type": "identify", "userId": "b", "traits": {"created_at": "2020-05-30 13:30:00Z"}},
        ]
        run = run_target(tmp_path, config, singer_lines("events", schema, messages))
        assert run.returncode == 0, run.stderr[-3000:]
        stored = {r["Contact Key"]: r["Created At"] for r in emulator.rows("IDENTIFY")}
        assert stored == {"a": "2020-05-30T13:30:00+00:00", "b": "2020-05-30T13:30:00+00:00"}


def test_ignored_stream_records_are_counted_not_parsed(tmp_path):
    with emulator_with() as emulator:
        schema = {"properties": {"at": {"type": "string", "format": "date-time"}}}
        dead = tmp_path / "dead.jsonl"
        config = base_config(emulator, ignore_unconfigured_streams=True, dead_letter_path=str(dead))
        run = run_target(tmp_path, config, singer_lines("other", schema, [{"at": "PII-garbage"}]))
        assert run.returncode == 0, run.stderr[-3000:]
        assert "PII-garbage" not in run.stderr
        assert summary(run.stderr)["reasons"] == "unconfigured_stream=1"
        (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
        assert letter["row"] == {"at": "PII-garbage"}  # replayable


def test_segment_stream_without_identify_de_warns_once(tmp_path):
    with emulator_with() as emulator:
        schema = {"properties": {"type": {"type": "string"}, "userId": {"type": "string"}}}
        config = base_config(emulator, streams={"events": {"type": "segment"}})
        messages = [{"type": "identify", "userId": f"u{i}"} for i in range(3)]
        run = run_target(tmp_path, config, singer_lines("events", schema, messages))
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.stderr.count("no identify_data_extension_key is set") == 1
        assert summary(run.stderr)["reasons"] == "unmapped_event=3"


def test_keys_differing_only_in_case_are_one_row(tmp_path):
    identify = {"key": "IDENTIFY", "fields": [CONTACT, {"name": "Plan", "type": "Text"}]}
    with emulator_with(identify) as emulator:
        schema = {"properties": {"user_id": {"type": "string"}, "plan": {"type": "string"}}}
        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            streams={"users": {"type": "identify"}},
            do_not_create_or_update_contacts=True,
        )
        records = [{"user_id": "U1", "plan": "old"}, {"user_id": "u1", "plan": "new"}]
        run = run_target(tmp_path, config, singer_lines("users", schema, records))
        assert run.returncode == 0, run.stderr[-3000:]
        assert [r["Plan"] for r in emulator.rows("IDENTIFY")] == ["new"]
        counts = summary(run.stderr)
        # The second record changes Plan: two upserts in input order, not one merged row.
        assert (counts["written"], counts["merged"]) == (2, 0)


def test_rejection_logs_hide_values_sfmc_quotes(tmp_path):
    with emulator_with(
        event_definitions=["APIEvent-signup"], inactive_contacts=["sleepy@example.com"]
    ) as emulator:
        config = base_config(
            emulator,
            row_error_policy="skip",
            dead_letter_path=str(tmp_path / "dead.jsonl"),
            streams={"signups": {"type": "api_event", "event_definition_key": "APIEvent-signup"}},
        )
        schema = {"properties": {"email": {"type": "string"}}}
        run = run_target(
            tmp_path, config, singer_lines("signups", schema, [{"email": "sleepy@example.com"}])
        )
        assert run.returncode == 0, run.stderr[-3000:]
        assert "not active" in run.stderr
        assert "sleepy@example.com" not in run.stderr
        assert "sleepy@example.com" in (tmp_path / "dead.jsonl").read_text()


def test_secret_value_is_hidden_in_config_errors(tmp_path):
    with emulator_with() as emulator:
        config = base_config(emulator, client_secret=987654321)
        run = run_target(tmp_path, config, "")
        assert run.returncode == 1
        assert "client_secret" in run.stderr
        assert "987654321" not in run.stderr


def test_rows_confirmed_before_a_fatal_error_are_counted_as_written(tmp_path):
    identify = {"key": "IDENTIFY", "fields": [CONTACT, {"name": "Plan", "type": "Text"}]}
    # Without Data Extensions Read the missing DE is only found out when its rows are sent.
    faults = {"forbidden_endpoints": ["customobjects_search"]}
    with emulator_with(identify, faults=faults) as emulator:
        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            do_not_create_or_update_contacts=True,
            conversion_events=[{"event": "Ordered", "data_extension_key": "NO_SUCH_DE"}],
            streams={"events": {"type": "segment"}},
        )
        schema = {"properties": {"type": {"type": "string"}, "userId": {"type": "string"}}}
        messages = [
            {"type": "identify", "userId": "a", "traits": {"plan": "pro"}},
            {"type": "identify", "userId": "b", "traits": {"plan": "free"}},
            {"type": "track", "userId": "a", "event": "Ordered", "properties": {}},
        ]
        run = run_target(tmp_path, config, singer_lines("events", schema, messages, state={"s": 1}))
        assert run.returncode == 1
        assert "NO_SUCH_DE" in run.stderr
        assert run.states == []
        assert sorted(r["Contact Key"] for r in emulator.rows("IDENTIFY")) == ["a", "b"]
        counts = summary(run.stderr)
        assert counts["written"] == 2  # confirmed before the failure, and said so
        assert "unconfirmed=1" in run.stderr


def test_a_trickling_stream_is_loaded_within_the_max_record_age(monkeypatch):
    """Records that arrive slowly still drain on the SDK's record-age clock (lane streams too)."""
    identify = {"key": "IDENTIFY", "fields": [CONTACT, {"name": "Plan", "type": "Text"}]}
    monkeypatch.setattr(TargetSfmc, "_MAX_RECORD_AGE_IN_MINUTES", 0.3 / 60)
    with emulator_with(identify) as emulator:
        schema = {"properties": {"user_id": {"type": "string"}, "plan": {"type": "string"}}}
        head, *records, state = singer_lines(
            "users",
            schema,
            [{"user_id": "u1", "plan": "a"}, {"user_id": "u2", "plan": "b"}],
            state={"bookmark": 2},
        )
        stored_before_the_end: list[int] = []

        def slow_tap():
            yield head
            yield records[0]
            time.sleep(0.6)  # older than the max age when the next record arrives
            yield records[1]
            stored_before_the_end.append(len(emulator.rows("IDENTIFY")))
            yield state

        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            streams={"users": {"type": "identify"}},
            do_not_create_or_update_contacts=True,
        )
        target = TargetSfmc(config=config)
        try:
            target.listen(slow_tap())
        finally:
            target.shutdown()
        assert target._reader.record_lanes  # the stream took the lane
        assert stored_before_the_end == [2]
        assert len(emulator.rows("IDENTIFY")) == 2
