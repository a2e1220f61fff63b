"""Hard deletes through the CLI against the emulator: `_sdc_deleted_at` deletes the row.

Each test runs ``python -m target_sfmc`` for real and checks the rows the emulator holds, the
summary's accounting (``deleted=``) and, where rows cannot tell, the requests it received.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
from cli_harness import TargetRun, run_target, summary
from harness import CLIENT_ID, CLIENT_SECRET, base_config

from target_sfmc.emulator import SfmcEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

IDENT = "IDENT"
ORDERS = "ORDERS"
CONTACT_KEY = {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True}
DATA_EXTENSIONS: list[dict[str, Any]] = [
    {
        "key": IDENT,
        "fields": [
            CONTACT_KEY,
            {"name": "Email", "type": "EmailAddress", "length": 254},
            {"name": "Plan", "type": "Text", "length": 50},
        ],
    },
    {
        "key": ORDERS,
        "fields": [
            CONTACT_KEY,
            {"name": "Order Id", "type": "Text", "length": 50, "primary_key": True},
            {"name": "Total", "type": "Decimal", "precision": 18, "scale": 2},
        ],
    },
]
USERS = {
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "plan": {"type": ["string", "null"]},
    }
}
# As log-based taps declare it: the lane decodes the marker and must leave deleted records.
USERS_WITH_MARKER = {
    "properties": {
        **USERS["properties"],
        "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"},
    }
}
ORDERS_SCHEMA = {
    "properties": {
        "user_id": {"type": "string"},
        "order_id": {"type": "string"},
        "total": {"type": ["number", "null"]},
    }
}
DELETED_AT = "2024-05-01T10:00:00Z"


@pytest.fixture
def emulator() -> Iterator[SfmcEmulator]:
    with SfmcEmulator(
        data_extensions=DATA_EXTENSIONS, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    ) as started:
        yield started


def config_for(emulator: SfmcEmulator, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "hard_delete": True,
        "do_not_create_or_update_contacts": True,
        "requests_per_second": 200,
        "streams": {
            "users": {"type": "identify", "data_extension_key": IDENT},
            "orders": {
                "type": "track",
                "data_extension_key": ORDERS,
                "primary_keys": "Contact Key, Order Id",
            },
        },
    }
    settings.update(overrides)
    return base_config(emulator, **settings)


def schema_line(stream: str, schema: dict[str, Any]) -> str:
    return json.dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []})


def record_line(stream: str, value: dict[str, Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": value})


def user(key: str, plan: str | None = None, *, deleted: bool = False) -> dict[str, Any]:
    value: dict[str, Any] = {"user_id": key, "email": f"{key}@example.com"}
    if plan is not None:
        value["plan"] = plan
    if deleted:
        value["_sdc_deleted_at"] = DELETED_AT
    return value


def users_input(*records: dict[str, Any], schema: dict[str, Any] = USERS) -> list[str]:
    return [schema_line("users", schema), *(record_line("users", r) for r in records)]


def plans(emulator: SfmcEmulator) -> dict[str, Any]:
    return {row["Contact Key"]: row.get("Plan") for row in emulator.rows(IDENT)}


def seed(emulator: SfmcEmulator, tmp_path: Path, *keys: str) -> None:
    """Put rows in IDENT through the target itself (an earlier, ordinary run)."""
    lines = users_input(*(user(k, "old") for k in keys))
    run = run_target(tmp_path, config_for(emulator, hard_delete=False), lines)
    assert run.returncode == 0, run.tail()


def accounted(run: TargetRun, read: int) -> dict[str, Any]:
    counts = summary(run.stderr)
    outcomes = ("written", "merged", "skipped", "rejected", "deleted")
    assert counts["read"] == read, counts
    assert sum(counts[name] for name in outcomes) == read, counts
    return counts


def soap_deletes(emulator: SfmcEmulator) -> int:
    return sum(emulator.request_counts().get("soap", {}).values())


def test_a_deleted_record_deletes_its_row_and_a_missing_row_counts_as_deleted(emulator, tmp_path):
    seed(emulator, tmp_path, "u1", "u2", "u3")
    emulator.reset_log()
    run = run_target(
        tmp_path,
        config_for(emulator),
        users_input(user("u4", "new"), user("u1", deleted=True), user("ghost", deleted=True)),
    )
    assert run.returncode == 0, run.tail()
    assert plans(emulator) == {"u2": "old", "u3": "old", "u4": "new"}
    counts = accounted(run, read=3)
    assert (counts["written"], counts["deleted"]) == (1, 2)
    line = "Summary for stream 'users': read=3 written=1 merged=0 skipped=0 rejected=0 deleted=2"
    assert line in run.stderr
    assert soap_deletes(emulator) == 1  # both deletes in one SOAP request


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_per_key_order_between_upserts_and_deletes_in_one_batch(emulator, tmp_path, use_async):
    seed(emulator, tmp_path, "kept", "gone", "back")
    records = [
        user("a", "v1"),
        user("a", deleted=True),  # an upsert then a delete: the row goes
        user("gone", deleted=True),
        user("gone", "v2"),  # a delete then an upsert: the row comes back, new value
        user("b", "v1"),
        user("b", deleted=True),
        user("b", "v3"),  # upsert, delete, upsert: the last wins
        user("back", deleted=True),
        user("back", deleted=True),  # the same delete twice: merged
    ]
    run = run_target(tmp_path, config_for(emulator, use_async_api=use_async), users_input(*records))
    assert run.returncode == 0, run.tail()
    assert plans(emulator) == {"kept": "old", "gone": "v2", "b": "v3"}
    counts = accounted(run, read=len(records))
    assert (counts["written"], counts["deleted"], counts["merged"]) == (4, 4, 1)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_order_holds_across_many_rows_and_batches(emulator, tmp_path, use_async):
    records = [user(f"u{i:03d}", "first") for i in range(300)]
    records += [user(f"u{i:03d}", deleted=True) for i in range(0, 300, 3)]
    records += [user(f"u{i:03d}", "again") for i in range(0, 300, 6)]
    run = run_target(
        tmp_path,
        config_for(emulator, use_async_api=use_async, batch_size_rows=70),
        users_input(*records),
    )
    assert run.returncode == 0, run.tail()
    expected = {f"u{i:03d}": "first" for i in range(300) if i % 3}
    expected |= {f"u{i:03d}": "again" for i in range(0, 300, 6)}
    assert plans(emulator) == expected
    counts = accounted(run, read=len(records))
    assert counts["deleted"] == 100


def test_the_lane_leaves_deleted_records_to_the_general_path(emulator, tmp_path):
    records = [user(f"u{i}", "p", deleted=False) | {"_sdc_deleted_at": None} for i in range(20)]
    records += [user(f"u{i}", deleted=True) for i in range(0, 20, 2)]
    records += [user("late", "p") | {"_sdc_deleted_at": None}]
    run = run_target(
        tmp_path, config_for(emulator), users_input(*records, schema=USERS_WITH_MARKER)
    )
    assert run.returncode == 0, run.tail()
    assert sorted(plans(emulator)) == sorted([f"u{i}" for i in range(1, 20, 2)] + ["late"])
    assert accounted(run, read=len(records))["deleted"] == 10


def test_deleted_records_are_seen_with_add_record_metadata(emulator, tmp_path):
    seed(emulator, tmp_path, "u1", "u2")
    run = run_target(
        tmp_path,
        config_for(emulator, add_record_metadata=True),
        users_input(user("u1", deleted=True)),
    )
    assert run.returncode == 0, run.tail()
    assert plans(emulator) == {"u2": "old"}


def test_without_hard_delete_deleted_records_upsert_as_before(emulator, tmp_path):
    run = run_target(
        tmp_path,
        config_for(emulator, hard_delete=False),
        users_input(user("u1", "p1", deleted=True), user("u2", "p2")),
    )
    assert run.returncode == 0, run.tail()
    assert plans(emulator) == {"u1": "p1", "u2": "p2"}
    assert soap_deletes(emulator) == 0
    assert accounted(run, read=2)["deleted"] == 0


def test_contacts_are_neither_deleted_nor_created_for_deleted_records(emulator, tmp_path):
    config = config_for(emulator, do_not_create_or_update_contacts=False)
    run = run_target(
        tmp_path, config, users_input(user("u1", "p"), user("u2", "p"), user("u3", deleted=True))
    )
    assert run.returncode == 0, run.tail()
    run = run_target(tmp_path, config, users_input(user("u1", deleted=True)))
    assert run.returncode == 0, run.tail()
    assert plans(emulator) == {"u2": "p"}
    assert sorted(c["contactKey"] for c in emulator.contacts()) == ["u1", "u2"]


def order(key: str, order_id: str, total: float | None = None, **extra: Any) -> dict[str, Any]:
    return {"user_id": key, "order_id": order_id, "total": total, **extra}


def test_track_rows_are_deleted_by_their_compound_key(emulator, tmp_path):
    lines = [
        schema_line("orders", ORDERS_SCHEMA),
        *(record_line("orders", order("u1", f"o{i}", i)) for i in range(4)),
        record_line("orders", order("u1", "o2", _sdc_deleted_at=DELETED_AT)),
        record_line("orders", order("u2", "o2", _sdc_deleted_at=DELETED_AT)),  # not there
    ]
    run = run_target(tmp_path, config_for(emulator), lines)
    assert run.returncode == 0, run.tail()
    assert sorted(row["Order Id"] for row in emulator.rows(ORDERS)) == ["o0", "o1", "o3"]
    assert accounted(run, read=6)["deleted"] == 2


def test_a_refused_delete_is_rejected_by_the_row_error_policy(emulator, tmp_path):
    # The stream's key (Contact Key alone) is not the DE's: SFMC answers Keys Not Found.
    streams = {"orders": {"type": "track", "data_extension_key": ORDERS}}
    lines = [
        schema_line("orders", ORDERS_SCHEMA),
        record_line("orders", order("u1", "o1", _sdc_deleted_at=DELETED_AT)),
        json.dumps({"type": "STATE", "value": {"at": 1}}),
    ]
    failed = run_target(tmp_path, config_for(emulator, streams=streams), lines)
    assert failed.returncode == 1
    assert failed.states == []  # no STATE past a delete SFMC did not confirm
    assert "Keys Not Found" in failed.stderr
    assert "Traceback" not in failed.stderr
    letters = tmp_path / "dead.jsonl"
    skipped = run_target(
        tmp_path,
        config_for(
            emulator, streams=streams, row_error_policy="skip", dead_letter_path=str(letters)
        ),
        lines,
    )
    assert skipped.returncode == 0, skipped.tail()
    assert skipped.states == [{"at": 1}]
    assert accounted(skipped, read=1)["rejected"] == 1
    (letter,) = [json.loads(line) for line in letters.read_text().splitlines()]
    assert letter["reason"] == "rejected"
    assert letter["error_code"] == "310007"
    assert letter["row"] == {"Contact Key": "u1"}


def test_segment_streams_upsert_deleted_messages_as_before(emulator, tmp_path):
    config = config_for(
        emulator,
        identify_data_extension_key=IDENT,
        streams={"segment": {"type": "segment"}},
    )
    lines = [
        schema_line("segment", {"properties": {"type": {"type": "string"}}}),
        record_line(
            "segment",
            {"type": "identify", "userId": "s1", "traits": {"plan": "x"}, "_sdc_deleted_at": "x"},
        ),
    ]
    run = run_target(tmp_path, config, lines)
    assert run.returncode == 0, run.tail()
    assert plans(emulator) == {"s1": "x"}


def test_deletes_survive_server_errors_and_dropped_connections(emulator, tmp_path):
    seed(emulator, tmp_path, *(f"u{i:02d}" for i in range(40)))
    emulator.set_faults(error_500=0.25, drop_connection=0.1, seed=7)
    records = [user(f"u{i:02d}", deleted=True) for i in range(0, 40, 2)]
    run = run_target(
        tmp_path,
        config_for(emulator, batch_size_rows=5, retry_max_attempts=12),
        users_input(*records),
    )
    emulator.set_faults()
    assert run.returncode == 0, run.tail()
    assert sorted(plans(emulator)) == [f"u{i:02d}" for i in range(1, 40, 2)]
    assert accounted(run, read=20)["deleted"] == 20
    assert "retries=0" not in run.stderr
