"""Mirror (`load_method: overwrite`) through the CLI against the emulator.

A fully loaded stream's Data Extension ends up holding exactly the stream's keys; the mirror
refuses (and deletes nothing) when the stream is empty, when too much would go, when keys
cannot be compared, and it never runs after a failed run. ``--plan`` tells, before anything is
loaded and without writing, how many rows the mirror would delete and whether it would refuse;
each plan is checked against the real run that follows it.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from cli_harness import TargetRun, run_target, summary, target_command, write_config
from harness import CLIENT_ID, CLIENT_SECRET, base_config

from target_sfmc.emulator import SfmcEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

IDENT = "IDENT"
EVENTS = "EVENTS"
ITEMS = "ITEMS"
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
        "key": EVENTS,
        "fields": [
            CONTACT_KEY,
            {"name": "Occurred At", "type": "Date", "primary_key": True},
        ],
    },
    {
        "key": ITEMS,
        "fields": [
            {"name": "Item Id", "type": "Number", "primary_key": True},
            {"name": "Name", "type": "Text", "length": 50},
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
STREAMS = {
    "users": {"type": "identify", "data_extension_key": IDENT},
    "events": {
        "type": "track",
        "data_extension_key": EVENTS,
        "primary_keys": "Contact Key, Occurred At",
    },
    "items": {"type": "track", "data_extension_key": ITEMS, "primary_keys": "Item Id"},
}


@pytest.fixture
def emulator() -> Iterator[SfmcEmulator]:
    with SfmcEmulator(
        data_extensions=DATA_EXTENSIONS, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    ) as started:
        yield started


def config_for(emulator: SfmcEmulator, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "load_method": "overwrite",
        "do_not_create_or_update_contacts": True,
        "requests_per_second": 500,
        "max_concurrent_requests": 8,
        "streams": STREAMS,
    }
    settings.update(overrides)
    return base_config(emulator, **settings)


def line(message: dict[str, Any]) -> str:
    return json.dumps(message)


def schema(stream: str = "users", properties: dict[str, Any] | None = None) -> str:
    body = properties or USERS
    return line({"type": "SCHEMA", "stream": stream, "schema": body, "key_properties": []})


def record(value: dict[str, Any], stream: str = "users") -> str:
    return line({"type": "RECORD", "stream": stream, "record": value})


def user(key: str, plan: str = "new", **extra: Any) -> dict[str, Any]:
    return {"user_id": key, "email": f"{key}@example.com", "plan": plan, **extra}


def users(*keys: str, state: dict[str, Any] | None = None) -> list[str]:
    lines = [schema(), *(record(user(k)) for k in keys)]
    if state is not None:
        lines.append(line({"type": "STATE", "value": state}))
    return lines


def activate(stream: str = "users", version: int = 1) -> str:
    return line({"type": "ACTIVATE_VERSION", "stream": stream, "version": version})


def keys(emulator: SfmcEmulator, de: str = IDENT) -> list[str]:
    return sorted(row["Contact Key"] for row in emulator.rows(de))


def seed(emulator: SfmcEmulator, tmp_path: Any, *user_keys: str) -> None:
    lines = [schema(), *(record(user(k, "old")) for k in user_keys)]
    run = run_target(tmp_path, config_for(emulator, load_method="upsert"), lines)
    assert run.returncode == 0, run.tail()
    emulator.reset_log()


def calls(emulator: SfmcEmulator, endpoint: str) -> int:
    return sum(emulator.request_counts().get(endpoint, {}).values())


def names(count: int, prefix: str = "u") -> list[str]:
    return [f"{prefix}{i:05d}" for i in range(count)]


def assert_refused(run: TargetRun, *words: str) -> None:
    assert run.returncode == 1, run.tail()
    for word in words:
        assert word in run.stderr, run.tail()
    assert "Traceback" not in run.stderr
    assert run.states == []  # no STATE claims the input was loaded


def test_rows_not_in_the_input_are_deleted_after_the_stream_is_loaded(emulator, tmp_path):
    seed(emulator, tmp_path, *names(10))
    kept = names(10)[:8]
    run = run_target(tmp_path, config_for(emulator), users(*kept, "newcomer", state={"at": 1}))
    assert run.returncode == 0, run.tail()
    assert keys(emulator) == sorted([*kept, "newcomer"])
    assert run.states == [{"at": 1}]
    assert "mirror_deleted=2" in run.stderr
    assert "2 of 11 rows were not in this run's input and were deleted" in run.stderr
    counts = summary(run.stderr)
    assert (counts["read"], counts["written"], counts["deleted"]) == (9, 9, 0)
    assert calls(emulator, "soap") == 1
    log = emulator.request_log()
    first_read = next(i for i, e in enumerate(log) if e["endpoint"] == "customobjectdata_get")
    assert all(e["endpoint"] != "rowset" for e in log[first_read:])  # read after every upsert


def test_keys_are_read_page_by_page(emulator, tmp_path):
    everyone = names(6000)
    seed(emulator, tmp_path, *everyone)
    kept = everyone[1000:]
    run = run_target(tmp_path, config_for(emulator), users(*kept))
    assert run.returncode == 0, run.tail()
    assert keys(emulator) == kept
    assert calls(emulator, "customobjectdata_get") == 3  # 2,500 a page
    assert "1000 of 6000 rows" in run.stderr
    assert calls(emulator, "soap") == 5  # 200 deletes a request


def test_more_than_the_ratio_is_refused_and_nothing_is_deleted(emulator, tmp_path):
    seed(emulator, tmp_path, *names(10))
    run = run_target(tmp_path, config_for(emulator), users(*names(3), state={"at": 1}))
    assert_refused(run, "would delete 7 of 10 rows (70%)", "mirror_max_delete_ratio (0.5)")
    assert keys(emulator) == names(10)
    assert calls(emulator, "soap") == 0
    allowed = run_target(
        tmp_path, config_for(emulator, mirror_max_delete_ratio=0.8), users(*names(3))
    )
    assert allowed.returncode == 0, allowed.tail()
    assert keys(emulator) == names(3)


def test_an_empty_stream_is_refused_unless_allowed(emulator, tmp_path):
    seed(emulator, tmp_path, *names(4))
    run = run_target(tmp_path, config_for(emulator), users(state={"at": 1}))
    assert_refused(run, "sent no rows", "allow_empty_mirror")
    assert keys(emulator) == names(4)
    allowed = run_target(tmp_path, config_for(emulator, allow_empty_mirror=True), users())
    assert allowed.returncode == 0, allowed.tail()
    assert keys(emulator) == []


def test_no_mirror_after_a_failed_run(emulator, tmp_path):
    seed(emulator, tmp_path, *names(4))
    bad = user("bad", email="not an email")
    run = run_target(
        tmp_path, config_for(emulator), [schema(), record(user("u00000")), record(bad)]
    )
    assert run.returncode == 1, run.tail()
    assert keys(emulator) == names(4)
    assert calls(emulator, "customobjectdata_get") == 0
    assert calls(emulator, "soap") == 0


def test_activate_version_mirrors_at_that_point(emulator, tmp_path):
    seed(emulator, tmp_path, *names(4))
    lines = [
        schema(),
        activate(),  # before any row: the version starts, nothing to compare yet
        *(record(user(k)) for k in names(3)),
        activate(),  # the full table was sent: mirror now
        line({"type": "STATE", "value": {"at": 1}}),
        record(user("u99999", email="not an email")),  # a later failure undoes nothing
    ]
    run = run_target(tmp_path, config_for(emulator), lines)
    assert run.returncode == 1, run.tail()
    assert keys(emulator) == names(3)
    assert calls(emulator, "customobjectdata_get") == 1


def test_activate_version_then_end_of_input_mirrors_once(emulator, tmp_path):
    seed(emulator, tmp_path, *names(4))
    lines = [schema(), *(record(user(k)) for k in names(3)), activate()]
    run = run_target(tmp_path, config_for(emulator), lines)
    assert run.returncode == 0, run.tail()
    assert keys(emulator) == names(3)
    assert calls(emulator, "customobjectdata_get") == 1


def test_hard_deletes_and_the_mirror_agree(emulator, tmp_path):
    seed(emulator, tmp_path, *names(4))
    lines = [
        schema(),
        *(record(user(k)) for k in names(4)),
        record(user("u00001", _sdc_deleted_at="2024-05-01T00:00:00Z")),
    ]
    run = run_target(tmp_path, config_for(emulator, hard_delete=True), lines)
    assert run.returncode == 0, run.tail()
    assert keys(emulator) == ["u00000", "u00002", "u00003"]
    counts = summary(run.stderr)
    assert (counts["written"], counts["deleted"]) == (4, 1)


def test_numbers_compare_by_value(emulator, tmp_path):
    items = {"properties": {"item_id": {"type": "integer"}, "name": {"type": "string"}}}
    lines = [
        schema("items", items),
        *(record({"item_id": i, "name": "x"}, "items") for i in range(5)),
    ]
    first = run_target(tmp_path, config_for(emulator), lines)
    assert first.returncode == 0, first.tail()
    lines = [
        schema("items", items),
        *(record({"item_id": i, "name": "y"}, "items") for i in range(1, 5)),
    ]
    second = run_target(tmp_path, config_for(emulator), lines)
    assert second.returncode == 0, second.tail()
    assert sorted(row["Item Id"] for row in emulator.rows(ITEMS)) == [1, 2, 3, 4]


def test_keys_sfmc_reads_back_differently_are_refused(emulator, tmp_path):
    emulator.set_faults(date_storage="sfmc")  # Date keys come back in SFMC's own spelling
    events = {"properties": {"user_id": {"type": "string"}, "occurred_at": {"type": "string"}}}
    lines = [
        schema("events", events),
        *(
            record({"user_id": "u1", "occurred_at": f"2024-05-0{day}T10:00:00Z"}, "events")
            for day in (1, 2)
        ),
    ]
    run = run_target(tmp_path, config_for(emulator), lines)
    assert_refused(run, "cannot be compared safely")
    assert len(emulator.rows(EVENTS)) == 2
    assert calls(emulator, "soap") == 0


def test_streams_the_mirror_cannot_apply_to_load_as_upserts(emulator, tmp_path):
    config = config_for(
        emulator,
        identify_data_extension_key=IDENT,
        streams={"segment": {"type": "segment"}},
    )
    lines = [
        schema("segment", {"properties": {"type": {"type": "string"}}}),
        record({"type": "identify", "userId": "s1", "traits": {"plan": "x"}}, "segment"),
    ]
    run = run_target(tmp_path, config, lines)
    assert run.returncode == 0, run.tail()
    assert "is loaded as upserts only" in run.stderr
    assert calls(emulator, "customobjectdata_get") == 0


# --plan: what a mirror would delete, told before anything is loaded. Only these reads are
# allowed while planning; anything else would change SFMC.
PLAN_READS = {"token", "customobjects_search", "customobject_fields", "customobjectdata_get"}
WOULD_DELETE = re.compile(r"^  would delete (\d+) of the (\d+) rows it then holds", re.MULTILINE)
PLAN_FAILS = "Plan: a load would fail: "


def plan(tmp_path: Any, config: dict[str, Any], lines: list[str]) -> TargetRun:
    proc = subprocess.run(
        target_command(write_config(tmp_path, config), "--plan"),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return TargetRun(proc.returncode, proc.stdout, proc.stderr)


def assert_read_only(emulator: SfmcEmulator) -> None:
    log = emulator.request_log()
    assert {entry["endpoint"] for entry in log} <= PLAN_READS, log
    assert all(entry["method"] == "GET" for entry in log if entry["endpoint"] != "token"), log


def would_delete(run: TargetRun) -> tuple[int, int]:
    found = WOULD_DELETE.findall(run.stdout)
    assert len(found) == 1, run.stdout
    doomed, total = found[0]
    return int(doomed), int(total)


def test_plan_tells_how_many_rows_the_mirror_deletes_and_the_load_then_does(emulator, tmp_path):
    seed(emulator, tmp_path, *names(10))
    before = set(keys(emulator))
    lines = [
        schema(),
        *(record(user(k)) for k in names(8)),
        record(user("newcomer")),
        record(user("u00003", _sdc_deleted_at="2024-05-01T00:00:00Z")),  # a hard delete
    ]
    config = config_for(emulator, hard_delete=True)
    planned = plan(tmp_path, config, lines)
    assert planned.returncode == 0, planned.tail()
    assert "Mirror of data extension 'IDENT' (stream 'users') at the end of the input:" in (
        planned.stdout
    )
    assert (
        "  10 rows in the data extension before the load, 8 keys in the input (1 not in it yet)"
        in (planned.stdout)
    )
    doomed, total = would_delete(planned)
    assert (doomed, total) == (2, 10)
    assert planned.stdout.splitlines()[-1] == (
        "Plan: a load would succeed with the current settings."
    )
    assert_read_only(emulator)
    assert set(keys(emulator)) == before

    run = run_target(tmp_path, config, lines)
    assert run.returncode == 0, run.tail()
    after = set(keys(emulator))
    assert len(after) == total - doomed
    assert len(before - after - {"u00003"}) == doomed  # the rows the mirror deleted
    assert f"mirror_deleted={doomed}" in run.stderr
    assert f"{doomed} of {total} rows were not in this run's input and were deleted" in run.stderr


def test_plan_tells_the_ratio_refusal_with_the_load_s_own_sentence(emulator, tmp_path):
    seed(emulator, tmp_path, *names(10))
    lines = users(*names(3))
    planned = plan(tmp_path, config_for(emulator), lines)
    assert planned.returncode == 1, planned.tail()
    assert would_delete(planned) == (7, 10)
    refusal = (
        "Mirror of data extension 'IDENT' (stream 'users') refused: it would delete 7 of 10 "
        "rows (70%), more than mirror_max_delete_ratio (0.5); nothing was deleted."
    )
    assert f"    FAILS: {refusal}" in planned.stdout.splitlines()
    assert planned.stdout.splitlines()[-1] == PLAN_FAILS + refusal
    assert_read_only(emulator)

    run = run_target(tmp_path, config_for(emulator), lines)
    assert_refused(run, refusal)
    assert keys(emulator) == names(10)


def test_plan_tells_an_empty_stream_is_refused_unless_allowed(emulator, tmp_path):
    seed(emulator, tmp_path, *names(4))
    planned = plan(tmp_path, config_for(emulator), users())
    assert planned.returncode == 1, planned.tail()
    assert "  4 rows in the data extension before the load, 0 keys in the input" in (
        planned.stdout.splitlines()
    )
    last = planned.stdout.splitlines()[-1]
    assert last.startswith(PLAN_FAILS + "Mirror of data extension 'IDENT' (stream 'users') refused")
    assert "sent no rows" in last
    assert "allow_empty_mirror" in last
    run = run_target(tmp_path, config_for(emulator), users())
    assert_refused(run, last.removeprefix(PLAN_FAILS))

    allowed = config_for(emulator, allow_empty_mirror=True)
    emulator.reset_log()
    planned = plan(tmp_path, allowed, users())
    assert planned.returncode == 0, planned.tail()
    assert would_delete(planned) == (4, 4)
    assert_read_only(emulator)
    assert keys(emulator) == names(4)
    assert run_target(tmp_path, allowed, users()).returncode == 0
    assert keys(emulator) == []


def test_plan_of_a_data_extension_that_does_not_exist_yet(emulator, tmp_path):
    config = config_for(
        emulator,
        create_data_extensions=True,
        data_extension_folder_id=7040,  # no folder lookup: SOAP is not called at all
        streams={"users": {"type": "identify", "data_extension_key": "FRESH"}},
    )
    lines = users(*names(3))
    planned = plan(tmp_path, config, lines)
    assert planned.returncode == 0, planned.tail()
    assert planned.stdout.splitlines()[-3:] == [
        "Mirror of data extension 'FRESH' (stream 'users') at the end of the input:",
        "  the data extension does not exist yet, 3 keys in the input: nothing to delete",
        "Plan: a load would succeed with the current settings.",
    ]
    assert_read_only(emulator)
    with pytest.raises(KeyError):
        emulator.rows("FRESH")

    run = run_target(tmp_path, config, lines)
    assert run.returncode == 0, run.tail()
    assert sorted(row["Contact Key"] for row in emulator.rows("FRESH")) == names(3)
    assert "0 of 3 rows were not in this run's input and were deleted" in run.stderr


def test_plan_follows_each_activate_version_like_the_load(emulator, tmp_path):
    seed(emulator, tmp_path, *names(4))
    lines = [
        schema(),
        activate(),  # before any row: nothing to mirror yet
        *(record(user(k)) for k in names(3)),
        activate(),  # mirrors now: 1 of 4 rows goes
        record(user("later")),  # then the end of the input mirrors again: 3 of 4 would go
    ]
    planned = plan(tmp_path, config_for(emulator), lines)
    assert planned.returncode == 1, planned.tail()
    out = planned.stdout.splitlines()
    at_activate = out.index(
        "Mirror of data extension 'IDENT' (stream 'users') at ACTIVATE_VERSION:"
    )
    assert out[at_activate + 1 : at_activate + 3] == [
        "  4 rows in the data extension before the load, 3 keys in the input",
        "  would delete 1 of the 4 rows it then holds (25%)",
    ]
    at_end = out.index("Mirror of data extension 'IDENT' (stream 'users') at the end of the input:")
    assert out[at_end + 1 : at_end + 3] == [
        "  3 rows in the data extension before the load, 1 key in the input (1 not in it yet)",
        "  would delete 3 of the 4 rows it then holds (75%)",
    ]
    assert_read_only(emulator)
    assert calls(emulator, "customobjectdata_get") == 1  # later mirrors follow from the first

    run = run_target(tmp_path, config_for(emulator), lines)
    assert_refused(run, out[-1].removeprefix(PLAN_FAILS))
    assert keys(emulator) == sorted([*names(3), "later"])


def test_plan_with_hard_deletes_and_a_refused_mirror_writes_nothing(emulator, tmp_path):
    seed(emulator, tmp_path, *names(6))
    stored = emulator.rows(IDENT)
    lines = [
        schema(),
        record(user("u00000", _sdc_deleted_at="2024-05-01T00:00:00Z")),
        record(user("brand-new")),
        activate(),
    ]
    planned = plan(tmp_path, config_for(emulator, hard_delete=True), lines)
    assert planned.returncode == 1, planned.tail()
    assert would_delete(planned) == (5, 6)
    assert_read_only(emulator)
    assert calls(emulator, "soap") == 0
    assert emulator.rows(IDENT) == stored
