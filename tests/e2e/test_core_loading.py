"""Core loading through the real CLI into the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import EXAMPLES, run_target, singer_lines, summary


def example_config(emulator, **overrides):
    config = json.loads((EXAMPLES / "config.example.json").read_text())
    config["auth_url"] = emulator.url
    config["client_id"], config["client_secret"] = "e2e-client", "e2e-secret-value-never-logged"
    config["retry_backoff_ms"] = 50
    config.update(overrides)
    return config


def example_input() -> str:
    return (EXAMPLES / "users.singer").read_text() + (EXAMPLES / "events.singer").read_text()


def by_key(rows, key="Contact Key"):
    return {row[key]: row for row in rows}


@pytest.mark.parametrize("use_async_api", [False, True], ids=["sync", "async"])
def test_flat_identify_rows_follow_mapping_rules(example_emulator, tmp_path, use_async_api):
    run = run_target(
        tmp_path,
        example_config(example_emulator, use_async_api=use_async_api),
        (EXAMPLES / "users.singer").read_text(),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    rows = by_key(example_emulator.rows("IDENTIFY"))
    assert set(rows) == {"u1001", "u1002", "alan@example.com"}
    ada = rows["u1001"]
    # Duplicate key in one batch: later value wins, earlier columns kept.
    assert ada["Plan"] == "enterprise"
    assert ada["First Name"] == "Ada"
    assert ada["Last Name"] == "Lovelace"
    assert ada["Logins"] == 42
    assert ada["Is Active"] is True
    assert ada["Created At"] == "2020-05-30T13:30:00+00:00"  # naive date-time taken as UTC
    assert str(ada["Lifetime Value"]) in {"1234.50", "1234.5"}
    assert rows["u1002"]["Created At"] == "2021-01-02T03:04:05+02:00"
    assert "Address" not in ada and "Address City" not in ada
    assert rows["alan@example.com"]["Email"] == "alan@example.com"
    counts = summary(run.stderr)
    assert counts == {
        "read": 5,
        # u1001's second record changes values: sent after the first, not merged into it.
        "written": 4,
        "merged": 0,
        "skipped": 1,
        "reasons": "missing_identifier=1",
        "rejected": 0,
        "deleted": 0,
    }
    assert run.states == [{"bookmarks": {"users": {"updated_at": "2024-01-01T00:00:00+00:00"}}}]
    requests = example_emulator.request_counts()
    # Two rounds: u1001's second record goes after the request holding its first.
    if use_async_api:
        assert "contacts" not in requests
        assert "rowset" not in requests
        assert requests["async_upsert"] == {202: 2}
    else:
        assert "async_upsert" not in requests
        assert requests["rowset"] == {200: 2}
        assert sorted(c["contactKey"] for c in example_emulator.contacts()) == [
            "alan@example.com",
            "u1001",
            "u1002",
        ]


def test_exact_decimals_reach_sfmc(example_emulator, tmp_path):
    schema = {"properties": {"user_id": {"type": "string"}, "lifetime_value": {"type": "number"}}}
    lines = singer_lines(
        "users",
        schema,
        [
            {"user_id": "d1", "lifetime_value": 0.1},
            {"user_id": "d2", "lifetime_value": 1234567890123.45},
        ],
    )
    run = run_target(tmp_path, example_config(example_emulator), lines)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = by_key(example_emulator.rows("IDENTIFY"))
    assert str(rows["d1"]["Lifetime Value"]) == "0.1"
    assert str(rows["d2"]["Lifetime Value"]) == "1234567890123.45"


@pytest.mark.parametrize("use_async_api", [False, True], ids=["sync", "async"])
def test_segment_stream_identify_and_conversion_events(example_emulator, tmp_path, use_async_api):
    run = run_target(
        tmp_path,
        example_config(example_emulator, use_async_api=use_async_api),
        (EXAMPLES / "events.singer").read_text(),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    identify = by_key(example_emulator.rows("IDENTIFY"))
    linus = identify["u2001"]
    assert linus["First Name"] == "Linus"
    assert linus["Email"] == "linus@example.com"
    assert linus["UTM Campaign"] == "spring-sale"  # context table
    assert linus["Locale"] == "en-US"
    assert linus["Trial Users"] is True
    orders = {row["Order Id"]: row for row in example_emulator.rows("ORDER_COMPLETED")}
    assert set(orders) == {"o-1", "o-2"}  # event names matched case-insensitively
    assert orders["o-1"]["Contact Key"] == "u2001"
    assert orders["o-1"]["App Name"] == "Shop"
    assert orders["o-1"]["Device-model"] == "Pixel 8"
    assert "Coupon" not in orders["o-1"]  # null omitted
    counts = summary(run.stderr)
    assert counts["read"] == 5
    assert counts["written"] == 3
    assert counts["skipped"] == 2
    assert counts["reasons"] == "unmapped_event=1, unsupported_type=1"
    assert run.states[-1] == {"bookmarks": {"events": {"timestamp": "2024-03-01T10:08:00+00:00"}}}


def test_track_multiple_primary_keys_from_key_properties(example_emulator, tmp_path):
    schema = {
        "properties": {
            "user_id": {"type": "string"},
            "order_id": {"type": "string"},
            "total": {"type": "number"},
        }
    }
    config = example_config(
        example_emulator,
        streams={"orders": {"type": "track", "data_extension_key": "ORDER_COMPLETED"}},
    )
    records = [
        {"user_id": "u1", "order_id": "a", "total": 1},
        {"user_id": "u1", "order_id": "b", "total": 2},
        {"user_id": "u2", "order_id": "a", "total": 3},
        {"user_id": "u1", "order_id": "a", "total": 4},
    ]
    lines = singer_lines("orders", schema, records, key_properties=["user_id", "order_id"])
    config["streams"]["orders"]["primary_keys"] = "Contact Key, Order Id"
    run = run_target(tmp_path, config, lines)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = {
        (r["Contact Key"], r["Order Id"]): r["Total"]
        for r in example_emulator.rows("ORDER_COMPLETED")
    }
    assert {k: float(v) for k, v in rows.items()} == {
        ("u1", "a"): 4.0,
        ("u1", "b"): 2.0,
        ("u2", "a"): 3.0,
    }
    # ("u1", "a") changes its total: two upserts in input order, no merge.
    assert (summary(run.stderr)["written"], summary(run.stderr)["merged"]) == (4, 0)


def test_uuid_primary_key_replay_is_idempotent(example_emulator, tmp_path):
    schema = {
        "properties": {
            "message_id": {"type": ["string", "null"]},
            "user_id": {"type": "string"},
            "url": {"type": "string"},
        }
    }
    config = example_config(
        example_emulator,
        streams={
            "page_views": {
                "type": "track",
                "data_extension_key": "PAGE_VIEWS",
                "uuid_primary_key": True,
            }
        },
    )
    records = [
        {"message_id": "msg-1", "user_id": "u1", "url": "/a"},
        {"message_id": None, "user_id": "u1", "url": "/b"},
        {"message_id": None, "user_id": "u2", "url": "/c"},
    ]
    lines = singer_lines("page_views", schema, records)
    for _ in range(2):
        run = run_target(tmp_path, config, lines)
        assert run.returncode == 0, run.stderr[-3000:]
    rows = example_emulator.rows("PAGE_VIEWS")
    assert len(rows) == 3  # the replay upserted the same rows
    uuids = {r["Url"]: r["Uuid"] for r in rows}
    assert uuids["/a"] == "msg-1"
    assert len({uuids["/b"], uuids["/c"]}) == 2


@pytest.mark.parametrize("use_async_api", [False, True], ids=["sync", "async"])
def test_rejected_row_fails_run_without_state(example_emulator, tmp_path, use_async_api):
    schema = {"properties": {"user_id": {"type": "string"}, "email": {"type": "string"}}}
    records = [{"user_id": f"ok{i}", "email": f"ok{i}@example.com"} for i in range(7)]
    records.insert(3, {"user_id": "bad", "email": "not-an-email"})
    dead_letters = tmp_path / "dead.jsonl"
    config = example_config(
        example_emulator, use_async_api=use_async_api, dead_letter_path=str(dead_letters)
    )
    run = run_target(tmp_path, config, singer_lines("users", schema, records, state={"at": 1}))
    assert run.returncode == 1
    assert run.states == []
    assert "rejected" in run.stderr and "not a valid email address" in run.stderr
    assert "not-an-email" not in run.stderr  # no record values in logs
    # The good rows are still loaded: upserts make the re-run safe.
    assert sorted(by_key(example_emulator.rows("IDENTIFY"))) == sorted(f"ok{i}" for i in range(7))
    letters = [json.loads(line) for line in dead_letters.read_text().splitlines()]
    assert len(letters) == 1
    assert letters[0]["reason"] == "rejected"
    assert letters[0]["row"]["Contact Key"] == "bad"
    assert letters[0]["data_extension_key"] == "IDENTIFY"
    assert "email" in letters[0]["message"].lower()
    counts = summary(run.stderr)
    assert counts["written"] == 7
    assert counts["rejected"] == 1


def test_skip_policy_goes_on_and_emits_state(example_emulator, tmp_path):
    schema = {"properties": {"user_id": {"type": "string"}, "email": {"type": "string"}}}
    records = [
        {"user_id": "a", "email": "a@example.com"},
        {"user_id": "b", "email": "broken"},
        {"user_id": "c", "email": "c@example.com"},
    ]
    config = example_config(example_emulator, row_error_policy="skip")
    run = run_target(tmp_path, config, singer_lines("users", schema, records, state={"at": 3}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.states == [{"at": 3}]
    assert sorted(by_key(example_emulator.rows("IDENTIFY"))) == ["a", "c"]
    counts = summary(run.stderr)
    assert (counts["read"], counts["written"], counts["rejected"]) == (3, 2, 1)


def test_unconfigured_stream_fails_at_schema_or_is_skipped(example_emulator, tmp_path):
    schema = {"properties": {"id": {"type": "string"}}}
    lines = singer_lines("mystery", schema, [{"id": "1"}, {"id": "2"}], state={"s": 1})
    run = run_target(tmp_path, example_config(example_emulator), lines)
    assert run.returncode == 1
    assert "Stream 'mystery' is not configured" in run.stderr
    assert run.states == []
    run = run_target(
        tmp_path, example_config(example_emulator, ignore_unconfigured_streams=True), lines
    )
    assert run.returncode == 0, run.stderr[-3000:]
    counts = summary(run.stderr)
    assert (counts["read"], counts["skipped"], counts["reasons"]) == (2, 2, "unconfigured_stream=2")
    assert run.states == [{"s": 1}]


def test_multi_batch_load_emits_state_only_at_the_end(example_emulator, tmp_path):
    schema = {"properties": {"user_id": {"type": "string"}, "logins": {"type": "integer"}}}
    lines = []
    for chunk in range(4):
        lines += singer_lines(
            "users",
            schema,
            [{"user_id": f"u{chunk}-{i}", "logins": i} for i in range(30)],
            state={"chunk": chunk},
        )
    config = example_config(
        example_emulator, batch_size_rows=25, do_not_create_or_update_contacts=True
    )
    run = run_target(tmp_path, config, lines)
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(example_emulator.rows("IDENTIFY")) == 120
    assert run.states == [{"chunk": 3}]
    assert "contacts" not in example_emulator.request_counts()


def test_config_errors_fail_before_reading_input(example_emulator, tmp_path):
    config = example_config(
        example_emulator,
        use_async_api=True,
        api_events=[{"event": "Signup", "event_definition_key": "APIEvent-signup"}],
        subdomain="evil.com/",
    )
    run = run_target(tmp_path, config, "this is not json\n")
    assert run.returncode == 1
    assert "API events cannot be sent with 'use_async_api'" in run.stderr
    assert "Setting 'subdomain' may contain only letters, digits and '-'." in run.stderr
    assert "not valid JSON" not in run.stderr
    assert example_emulator.request_log() == []


def test_demo_files_load_end_to_end(example_emulator, tmp_path: Path):
    run = run_target(tmp_path, example_config(example_emulator), example_input())
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(example_emulator.rows("IDENTIFY")) == 4
    assert len(example_emulator.rows("ORDER_COMPLETED")) == 2
    assert CLIENT_SECRET_NOT_IN(run.stderr)


def CLIENT_SECRET_NOT_IN(text: str) -> bool:  # noqa: N802
    return "e2e-secret-value-never-logged" not in text


def test_debug_logging_shows_no_record_values(example_emulator, tmp_path):
    schema = {"properties": {"user_id": {"type": "string"}, "email": {"type": "string"}}}
    records = [
        {"user_id": f"secret-user-{i}", "email": f"private{i}@example.com"} for i in range(5)
    ]
    records.append({"user_id": "bad-one", "email": "not-an-email-address"})
    run = run_target(
        tmp_path,
        example_config(example_emulator, dead_letter_path=str(tmp_path / "dead.jsonl")),
        singer_lines("users", schema, records),
        env={"TARGET_SFMC_LOGLEVEL": "DEBUG"},
    )
    assert run.returncode == 1
    assert "DEBUG" in run.stderr  # the level really was raised
    for value in ("private", "secret-user", "not-an-email-address", "e2e-secret-value"):
        assert value not in run.stderr
    assert "1 record(s) of stream 'users' were rejected" in run.stderr


def test_settings_from_environment_variables(example_emulator, tmp_path):
    """Every setting works as TARGET_SFMC_* with --config ENV, objects as JSON."""
    schema = {"properties": {"user_id": {"type": "string"}}}
    env = {
        "TARGET_SFMC_CLIENT_ID": "e2e-client",
        "TARGET_SFMC_CLIENT_SECRET": "e2e-secret-value-never-logged",
        "TARGET_SFMC_SUBDOMAIN": "mc563885gzs27c5t9-63k636ttgm",
        "TARGET_SFMC_AUTH_URL": example_emulator.url,
        "TARGET_SFMC_IDENTIFY_DATA_EXTENSION_KEY": "IDENTIFY",
        "TARGET_SFMC_STREAMS": json.dumps({"users": {"type": "identify"}}),
        "TARGET_SFMC_USE_ASYNC_API": "true",
        "TARGET_SFMC_REQUESTS_PER_SECOND": "10",
        "TARGET_SFMC_RETRY_BACKOFF_MS": "50",
        "TARGET_SFMC_LOGLEVEL": "DEBUG",  # the SDK's log level: no setting, but accepted
    }
    text = "\n".join(singer_lines("users", schema, [{"user_id": "env-1"}])) + "\n"
    proc = subprocess.run(
        [sys.executable, "-m", "target_sfmc", "--config", "ENV"],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DEBUG" in proc.stderr  # the level really was raised
    assert by_key(example_emulator.rows("IDENTIFY")) == {"env-1": {"Contact Key": "env-1"}}
    assert "async_upsert" in example_emulator.request_counts()
