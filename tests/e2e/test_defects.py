"""Regression tests for defects found in review, each driven through the CLI against the emulator.

Every test here runs ``python -m target_sfmc`` for real against an in-process `SfmcEmulator`
and checks what SFMC ended up holding, what the target printed, and (where the stored rows
cannot tell) the request bodies the emulator received.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
from cli_harness import TargetRun, summary, target_command, write_config
from harness import CLIENT_ID, CLIENT_SECRET, base_config

from target_sfmc.emulator import SfmcEmulator
from target_sfmc.emulator.server import EmulatorRequestHandler

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

TRACEBACK = "Traceback (most recent call last)"
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
            {"name": "Amount", "type": "Decimal", "precision": 18, "scale": 8},
            {"name": "Note", "type": "Text", "length": 100},
        ],
    },
    {
        "key": ORDERS,
        "fields": [CONTACT_KEY, {"name": "Total", "type": "Decimal", "precision": 18, "scale": 2}],
    },
]
USERS_SCHEMA: dict[str, Any] = {
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "plan": {"type": ["string", "null"]},
    }
}
SEGMENT_SCHEMA: dict[str, Any] = {
    "properties": {
        "type": {"type": "string"},
        "userId": {"type": ["string", "null"]},
        "event": {"type": ["string", "null"]},
        "traits": {"type": ["object", "null"]},
        "properties": {"type": ["object", "null"]},
    }
}


# -- plumbing ------------------------------------------------------------------------------


class Bodies:
    """Every SFMC request body the emulator received (the emulator keeps paths only)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []  # (method, path, body)

    def to(self, fragment: str) -> list[bytes]:
        return [body for _, path, body in self.seen if fragment in path]

    def text(self, fragment: str) -> str:
        return "\n".join(body.decode("utf-8", "replace") for body in self.to(fragment))


@pytest.fixture
def bodies(monkeypatch: pytest.MonkeyPatch) -> Bodies:
    """Record request bodies: the emulator serves from threads of this test process."""
    recorder = Bodies()
    original = EmulatorRequestHandler._call

    def call(self: EmulatorRequestHandler, handler_name: str, endpoint: str, request: Any) -> Any:
        recorder.seen.append((request.method, self.path, bytes(request.body)))
        return original(self, handler_name, endpoint, request)

    monkeypatch.setattr(EmulatorRequestHandler, "_call", call)
    return recorder


@pytest.fixture
def emulator() -> Iterator[SfmcEmulator]:
    with SfmcEmulator(
        data_extensions=DATA_EXTENSIONS,
        event_definitions=["APIEvent-defects"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    ) as started:
        yield started


def config_for(emulator: SfmcEmulator, **overrides: Any) -> dict[str, Any]:
    """Identify stream ``users`` into IDENT, no Contacts, fast retries."""
    settings: dict[str, Any] = {
        "identify_data_extension_key": IDENT,
        "do_not_create_or_update_contacts": True,
        "streams": {"users": {"type": "identify"}},
        "requests_per_second": 200,
    }
    settings.update(overrides)
    return base_config(emulator, **settings)


def run(
    tmp_path: Path,
    config: dict[str, Any],
    stdin: Iterable[str] | str | bytes,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> TargetRun:
    """Run the CLI (extra CLI arguments allowed) and wait for it."""
    if isinstance(stdin, bytes):
        data = stdin
    else:
        text = stdin if isinstance(stdin, str) else "".join(f"{line}\n" for line in stdin)
        data = text.encode("utf-8")
    proc = subprocess.run(
        target_command(write_config(tmp_path, config), *args),
        input=data,
        capture_output=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return TargetRun(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def schema(stream: str, properties: dict[str, Any], key_properties: list[str] | None = None) -> str:
    body = {"type": "SCHEMA", "stream": stream, "schema": properties}
    return json.dumps({**body, "key_properties": key_properties or []})


def record(stream: str, value: dict[str, Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": value})


def raw_record(stream: str, record_json: str) -> str:
    """A RECORD line whose record is given as JSON text (to keep number spellings)."""
    return f'{{"type": "RECORD", "stream": "{stream}", "record": {record_json}}}'


def state(value: dict[str, Any]) -> str:
    return json.dumps({"type": "STATE", "value": value})


def rows_by_key(emulator: SfmcEmulator, key: str = IDENT) -> dict[str, dict[str, Any]]:
    return {row["Contact Key"]: row for row in emulator.rows(key)}


def stream_summary(stderr: str, stream: str) -> str:
    match = re.search(rf"Summary for stream '{re.escape(stream)}': (.*)", stderr)
    assert match, f"no summary for stream {stream!r}:\n{stderr[-3000:]}"
    return match.group(1)


def assert_no_traceback(run_: TargetRun) -> None:
    assert TRACEBACK not in run_.stderr, run_.tail()


def assert_accounted(stderr: str, read: int) -> dict[str, Any]:
    counts = summary(stderr)
    assert counts["read"] == read, counts
    outcomes = counts["written"] + counts["merged"] + counts["skipped"] + counts["rejected"]
    assert outcomes == read, counts
    return counts


def contact_requests(bodies: Bodies) -> list[str]:
    """Contact Keys of the ``POST /contacts/v1/contacts`` requests, in arrival order."""
    return [
        json.loads(body)["contactKey"]
        for method, path, body in bodies.seen
        if method == "POST" and path.startswith("/contacts/v1/contacts")
    ]


# -- 1. BATCH messages ---------------------------------------------------------------------


def batch_records(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"user_id": f"{prefix}{i}", "email": f"{prefix}{i}@example.com", "plan": f"plan-{i}"}
        for i in range(count)
    ]


def batch_file(tmp_path: Path, records: list[dict[str, Any]], compression: str) -> Path:
    """A BATCH file: one JSON record per line, gzipped or plain."""
    lines = "".join(json.dumps(r) + "\n" for r in records).encode("utf-8")
    if compression == "gzip":
        path = tmp_path / "part.json.gz"
        path.write_bytes(gzip.compress(lines))
    else:
        path = tmp_path / "part.jsonl"
        path.write_bytes(lines)
    return path


def batch_message(path: Path, compression: str) -> str:
    encoding = {"format": "jsonl", "compression": compression}
    return json.dumps(
        {"type": "BATCH", "stream": "users", "encoding": encoding, "manifest": [path.as_uri()]}
    )


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_batch_message_records_are_loaded_and_counted(emulator, tmp_path, use_async):
    gzipped, plain = batch_records("g", 7), batch_records("p", 4)
    lines = [
        schema("users", USERS_SCHEMA),
        batch_message(batch_file(tmp_path, gzipped, "gzip"), "gzip"),
        batch_message(batch_file(tmp_path, plain, "none"), "none"),
        state({"bookmark": "after-batch"}),
    ]
    result = run(tmp_path, config_for(emulator, use_async_api=use_async), lines)

    assert result.returncode == 0, result.tail()
    stored = rows_by_key(emulator)
    assert set(stored) == {r["user_id"] for r in gzipped + plain}, result.tail()
    assert (stored["g3"]["Plan"], stored["p2"]["Email"]) == ("plan-3", "p2@example.com")
    counts = assert_accounted(result.stderr, read=len(gzipped) + len(plain))
    assert counts["written"] == len(gzipped) + len(plain)
    assert result.states == [{"bookmark": "after-batch"}]


def test_batch_message_naming_a_missing_file_fails_clearly(emulator, tmp_path):
    missing = tmp_path / "no-such-part.json.gz"  # never written
    lines = [
        schema("users", USERS_SCHEMA),
        batch_message(missing, "gzip"),
        state({"bookmark": "after-batch"}),
    ]
    result = run(tmp_path, config_for(emulator), lines)

    assert result.returncode == 1, result.tail()
    assert "no-such-part.json.gz" in result.stderr, result.tail()
    assert_no_traceback(result)
    assert result.states == []


# -- 2. a blank userId hides a valid user_id -----------------------------------------------


def test_blank_user_id_falls_back_to_the_next_user_id_property(emulator, tmp_path):
    properties = {
        "properties": {
            "userId": {"type": ["string", "null"]},
            "user_id": {"type": ["string", "null"]},
            "email": {"type": ["string", "null"]},
            "plan": {"type": ["string", "null"]},
        }
    }
    records = [
        {"userId": "  ", "user_id": "real1", "plan": "p1"},  # general path
        {"userId": "", "user_id": "real2", "email": "e@x.io", "plan": "p2"},  # lane
        {"userId": ":::", "user_id": "real3", "plan": "p3"},  # lane
    ]
    lines = [schema("users", properties), *(record("users", r) for r in records)]
    result = run(tmp_path, config_for(emulator), lines)

    assert result.returncode == 0, result.tail()
    stored = rows_by_key(emulator)
    assert set(stored) == {"real1", "real2", "real3"}, (sorted(stored), result.tail())
    assert {key: row["Plan"] for key, row in stored.items()} == {
        "real1": "p1",
        "real2": "p2",
        "real3": "p3",
    }
    assert summary(result.stderr)["skipped"] == 0


# -- 3. one numeric user id, two Contact Keys ----------------------------------------------


def test_numeric_user_id_is_one_contact_key_on_every_path(emulator, tmp_path):
    properties = {"properties": {"user_id": {"type": "number"}, "plan": {"type": "string"}}}
    lines = [
        schema("users", properties),
        raw_record("users", '{"user_id": 1e3, "plan": "first"}'),  # general path
        raw_record("users", '{"user_id": 1e3, "plan": "second"}'),  # fast path
        raw_record("users", '{"user_id": 1000.0, "plan": "third"}'),
    ]
    result = run(tmp_path, config_for(emulator), lines)

    assert result.returncode == 0, result.tail()
    stored = emulator.rows(IDENT)
    assert [(row["Contact Key"], row["Plan"]) for row in stored] == [("1000", "third")], stored


# -- 4. decimals below 1e-6 ----------------------------------------------------------------


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_tiny_decimal_is_sent_as_plain_digits(emulator, bodies, tmp_path, use_async):
    properties = {"properties": {"user_id": {"type": "string"}, "amount": {"type": "number"}}}
    lines = [
        schema("users", properties),
        raw_record("users", '{"user_id": "d1", "amount": 0.0000001}'),  # general path
        raw_record("users", '{"user_id": "d2", "amount": 0.0000001}'),  # fast path
    ]
    result = run(tmp_path, config_for(emulator, use_async_api=use_async), lines)

    assert result.returncode == 0, result.tail()
    assert set(rows_by_key(emulator)) == {"d1", "d2"}
    sent = bodies.text("/rowset") + bodies.text("/data/v1/async/dataextensions/")
    assert sent, bodies.seen
    assert "1E-7" not in sent.upper(), sent
    assert sent.count("0.0000001") == 2, sent


# -- 5. non-UTF-8 input --------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        b'{"type": "RECORD", "stream": "users", "record": {"user_id": "bad-\xff"}}\n',
        # Outside the record, where a record lane does not decode the line.
        b'{"type": "RECORD", "stream": "users", "record": {"user_id": "b"}, "x": "\xff"}\n',
    ],
    ids=["in-the-record", "beside-the-record"],
)
def test_non_utf8_byte_names_its_line(emulator, tmp_path, bad):
    head = schema("users", USERS_SCHEMA) + "\n" + record("users", {"user_id": "ok-1"}) + "\n"
    tail = (record("users", {"user_id": "ok-2"}) + "\n" + state({"chunk": 1}) + "\n").encode()
    result = run(tmp_path, config_for(emulator), head.encode() + bad + tail)

    assert result.returncode == 1, result.tail()
    assert "not valid UTF-8" in result.stderr, result.tail()
    assert re.search(r"\bline 3\b", result.stderr), result.tail()
    assert_no_traceback(result)
    assert result.states == []


# -- 6. bad settings from the environment --------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TARGET_SFMC_STREAMS", "{users: 1}"),
        ("TARGET_SFMC_REQUESTS_PER_SECOND", "ten"),
        ("TARGET_SFMC_USE_ASYNC_API", "maybe"),
    ],
    ids=["streams-not-json", "rps-not-a-number", "async-not-a-boolean"],
)
def test_bad_setting_from_the_environment_fails_naming_the_variable(
    emulator, tmp_path, variable, value
):
    lines = [schema("users", USERS_SCHEMA), record("users", {"user_id": "u1"}), state({"s": 1})]
    result = run(tmp_path, config_for(emulator), lines, "--config", "ENV", env={variable: value})

    assert result.returncode == 1, result.tail()
    assert variable in result.stderr, result.tail()
    assert_no_traceback(result)
    assert result.states == []
    assert emulator.rows(IDENT) == []


# -- 7. misspelt settings ------------------------------------------------------------------


def test_sdk_settings_are_accepted_but_a_misspelt_setting_fails(emulator, tmp_path):
    lines = [
        schema("users", USERS_SCHEMA),
        record("users", {"user_id": "u1", "plan": "pro"}),
        state({"s": 1}),
    ]
    sdk_settings = config_for(
        emulator,
        batch_size_rows=100,
        stream_maps={"users": {"plan": "plan.upper()"}},
        flattening_enabled=False,
        validate_records=True,
        add_record_metadata=False,
        load_method="upsert",
    )
    accepted = run(tmp_path, sdk_settings, lines)
    assert accepted.returncode == 0, accepted.tail()
    assert rows_by_key(emulator)["u1"]["Plan"] == "PRO"

    emulator.reset_log()
    misspelt = config_for(emulator, do_not_create_or_update_contact=True)
    del misspelt["do_not_create_or_update_contacts"]
    result = run(tmp_path, misspelt, lines)

    assert result.returncode == 1, result.tail()
    assert "do_not_create_or_update_contact" in result.stderr
    assert "did you mean 'do_not_create_or_update_contacts'" in result.stderr, result.tail()
    assert_no_traceback(result)
    assert result.states == []
    assert not [e for e in emulator.request_log() if "/contacts/" in e["path"]]


def test_unknown_setting_from_the_environment_fails_naming_the_variable(emulator, tmp_path):
    lines = [schema("users", USERS_SCHEMA), record("users", {"user_id": "u1"}), state({"s": 1})]
    variable = "TARGET_SFMC_DO_NOT_CREATE_OR_UPDATE_CONTACT"
    config = config_for(emulator)
    del config["do_not_create_or_update_contacts"]
    result = run(tmp_path, config, lines, "--config", "ENV", env={variable: "true"})

    assert result.returncode == 1, result.tail()
    assert variable in result.stderr, result.tail()
    assert_no_traceback(result)
    assert result.states == []
    assert not [e for e in emulator.request_log() if "/contacts/" in e["path"]]


# -- 8. a rejected record wipes out valid data for the same key ----------------------------


def rejection_config(emulator: SfmcEmulator, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    return config_for(
        emulator,
        row_error_policy="skip",
        dead_letter_path=str(tmp_path / "dead.jsonl"),
        **overrides,
    )


def dead_letters(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "dead.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def good_then_bad(key: str) -> list[dict[str, Any]]:
    return [
        {"user_id": key, "email": "good@x.com", "plan": "a"},
        {"user_id": key, "email": "not-an-email"},
    ]


def bad_then_good(key: str) -> list[dict[str, Any]]:
    return [
        {"user_id": key, "email": "not-an-email", "plan": "b"},
        {"user_id": key, "email": "good@x.com"},
    ]


def load_with_rejection(
    emulator: SfmcEmulator, tmp_path: Path, records: list[dict[str, Any]], **overrides: Any
) -> TargetRun:
    dead = tmp_path / "dead.jsonl"
    dead.unlink(missing_ok=True)
    lines = [schema("users", USERS_SCHEMA), *(record("users", r) for r in records)]
    return run(tmp_path, rejection_config(emulator, tmp_path, **overrides), lines)


def assert_good_row_kept(emulator: SfmcEmulator, tmp_path: Path, run_: TargetRun, key: str):
    assert run_.returncode == 0, run_.tail()
    row = rows_by_key(emulator).get(key)
    assert row is not None, run_.tail()
    assert (row["Email"], row.get("Plan")) == ("good@x.com", "a"), row
    assert summary(run_.stderr)["rejected"] == 1
    (letter,) = dead_letters(tmp_path)
    assert letter["row"]["Email"] == "not-an-email"
    assert "Plan" not in letter["row"]  # the refused record alone, not merged with the good one


def assert_bad_record_lent_nothing(
    emulator: SfmcEmulator, tmp_path: Path, run_: TargetRun, key: str
):
    assert run_.returncode == 0, run_.tail()
    row = rows_by_key(emulator)[key]
    assert row["Email"] == "good@x.com"
    assert row.get("Plan") != "b", row  # sequential upserts would refuse the bad record whole
    assert summary(run_.stderr)["rejected"] == 1
    (letter,) = dead_letters(tmp_path)
    assert letter["row"]["Email"] == "not-an-email"


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_rejected_later_record_keeps_the_earlier_valid_values(emulator, tmp_path, use_async):
    result = load_with_rejection(emulator, tmp_path, good_then_bad("u1"), use_async_api=use_async)
    assert_good_row_kept(emulator, tmp_path, result, "u1")

    # The same outcome when every record is its own batch.
    again = load_with_rejection(
        emulator, tmp_path, good_then_bad("u9"), use_async_api=use_async, batch_size_rows=1
    )
    assert_good_row_kept(emulator, tmp_path, again, "u9")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_rejected_earlier_record_lends_no_values_to_a_later_one(emulator, tmp_path, use_async):
    result = load_with_rejection(emulator, tmp_path, bad_then_good("u1"), use_async_api=use_async)
    assert_bad_record_lent_nothing(emulator, tmp_path, result, "u1")

    # The same outcome when every record is its own batch.
    again = load_with_rejection(
        emulator, tmp_path, bad_then_good("u9"), use_async_api=use_async, batch_size_rows=1
    )
    assert_bad_record_lent_nothing(emulator, tmp_path, again, "u9")


# -- 9. across streams the later record for a key wins -------------------------------------


def test_later_record_wins_across_streams_writing_one_data_extension(emulator, tmp_path):
    def users(key: str, plan: str) -> str:
        return record("users", {"user_id": key, "plan": plan})

    def events(key: str, plan: str) -> str:
        message = {"type": "identify", "userId": key, "traits": {"plan": plan}, "messageId": plan}
        return record("events", message)

    lines = [
        schema("users", USERS_SCHEMA),
        schema("events", SEGMENT_SCHEMA),
        # u2 ends with a users record, u3 with an events record.
        users("u2", "users-3"),
        events("u2", "events-4"),
        users("u2", "users-5"),
        events("u3", "events-1"),
        users("u3", "users-2"),
        events("u3", "events-3"),
    ]
    config = config_for(
        emulator, streams={"users": {"type": "identify"}, "events": {"type": "segment"}}
    )
    result = run(tmp_path, config, lines)

    assert result.returncode == 0, result.tail()
    plans = {key: row["Plan"] for key, row in rows_by_key(emulator).items()}
    assert plans == {"u2": "users-5", "u3": "events-3"}


# -- 10. contacts once per run -------------------------------------------------------------


def test_each_contact_is_created_once_per_run_across_streams(tmp_path, bodies):
    # Latency keeps each stream's contact request in flight while the other stream drains.
    with SfmcEmulator(
        data_extensions=DATA_EXTENSIONS,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        latency_ms=150,
    ) as emulator:
        lines = [
            schema("users", USERS_SCHEMA),
            schema("members", USERS_SCHEMA),
            schema("others", USERS_SCHEMA),
            record("users", {"user_id": "shared", "plan": "a"}),
            record("members", {"user_id": "shared", "email": "s@x.io"}),
            record("others", {"user_id": "alone", "plan": "c"}),
        ]
        config = config_for(
            emulator,
            do_not_create_or_update_contacts=False,
            streams={
                "users": {"type": "identify"},
                "members": {"type": "identify"},
                "others": {"type": "identify"},
            },
        )
        result = run(tmp_path, config, lines)

        assert result.returncode == 0, result.tail()
        assert set(rows_by_key(emulator)) == {"shared", "alone"}
        assert sorted(contact_requests(bodies)) == ["alone", "shared"]


# -- 11. batch_size_rows must be positive --------------------------------------------------


@pytest.mark.parametrize("size", [0, -5])
def test_batch_size_rows_must_be_positive(emulator, tmp_path, size):
    lines = [
        schema("users", USERS_SCHEMA),
        *(record("users", {"user_id": f"u{i}"}) for i in range(3)),
        state({"s": 1}),
    ]
    result = run(tmp_path, config_for(emulator, batch_size_rows=size), lines)

    assert result.returncode == 1, result.tail()
    assert "batch_size_rows" in result.stderr, result.tail()
    assert_no_traceback(result)
    assert result.states == []
    assert emulator.rows(IDENT) == []
    assert not [e for e in emulator.request_log() if "rowset" in e["path"]]


# -- 12. smaller ones ----------------------------------------------------------------------


def test_missing_client_secret_is_named_as_missing(emulator, tmp_path):
    config = config_for(emulator)
    del config["client_secret"]
    result = run(tmp_path, config, [schema("users", USERS_SCHEMA)])

    assert result.returncode == 1, result.tail()
    errors = result.stderr
    assert "client_secret" in errors, result.tail()
    assert "missing" in errors.lower(), result.tail()
    assert_no_traceback(result)


def test_property_names_without_letters_never_become_empty_columns(emulator, bodies, tmp_path):
    properties = {
        "properties": {
            "user_id": {"type": "string"},
            "": {"type": "string"},
            "_": {"type": "string"},
            "plan": {"type": "string"},
            "note": {"type": "string"},
        }
    }
    records = [
        {"user_id": f"e{i}", "": "empty-name", "_": "underscore", "plan": "p", "note": "n"}
        for i in range(3)
    ]
    lines = [schema("users", properties), *(record("users", r) for r in records)]
    result = run(tmp_path, config_for(emulator), lines)

    assert result.returncode == 0, result.tail()
    stored = rows_by_key(emulator)
    assert set(stored) == {"e0", "e1", "e2"}
    assert all((row["Plan"], row["Note"]) == ("p", "n") for row in stored.values())
    sent = [json.loads(body) for body in bodies.to("/rowset")]
    assert sent
    columns = {name for rowset in sent for item in rowset for name in item["values"]}
    assert "" not in columns, columns
    assert "ignored_attributes=" in stream_summary(result.stderr, "users"), result.tail()


def test_record_missing_a_key_property_names_it(emulator, tmp_path):
    properties = {"properties": {"id": {"type": "string"}, "user_id": {"type": "string"}}}
    lines = [
        schema("users", properties, key_properties=["id"]),
        record("users", {"id": "1", "user_id": "k1"}),
        record("users", {"user_id": "k2"}),
        state({"s": 1}),
    ]
    result = run(tmp_path, config_for(emulator), lines)

    assert result.returncode == 1, result.tail()
    assert "'id'" in result.stderr, result.tail()
    assert re.search(r"\bline 3\b", result.stderr), result.tail()
    assert_no_traceback(result)
    assert result.states == []


def test_lone_surrogate_escape_names_its_line_without_calling_it_truncated(emulator, tmp_path):
    lines = [
        schema("users", USERS_SCHEMA),
        record("users", {"user_id": "ok-1"}),
        '{"type": "RECORD", "stream": "users", "record": {"user_id": "x\\ud800y"}}',
        state({"s": 1}),
    ]
    result = run(tmp_path, config_for(emulator), lines)

    assert result.returncode == 1, result.tail()
    assert re.search(r"\bline 3\b", result.stderr), result.tail()
    assert "truncated" not in result.stderr.lower(), result.tail()
    assert_no_traceback(result)
    assert result.states == []


def test_records_dropped_by_stream_maps_are_counted_as_filtered(emulator, tmp_path):
    plans = ["keep", "drop", "keep", "drop", "drop"]
    lines = [
        schema("users", USERS_SCHEMA),
        schema("other", USERS_SCHEMA),
        *(record("users", {"user_id": f"u{i}", "plan": p}) for i, p in enumerate(plans)),
        *(record("other", {"user_id": f"o{i}"}) for i in range(2)),
        state({"s": 1}),
    ]
    config = config_for(
        emulator,
        # 'other' is configured, so that only the stream map drops its records.
        streams={"users": {"type": "identify"}, "other": {"type": "identify"}},
        stream_maps={"users": {"__filter__": "plan == 'keep'"}, "__else__": "__NULL__"},
    )
    result = run(tmp_path, config, lines)

    assert result.returncode == 0, result.tail()
    assert set(rows_by_key(emulator)) == {"u0", "u2"}
    counts = assert_accounted(result.stderr, read=len(plans) + 2)
    assert counts["written"] == 2
    assert "filtered=5" in counts["reasons"], counts


def test_segment_event_names_are_trimmed(emulator, tmp_path):
    config = config_for(
        emulator,
        streams={"events": {"type": "segment"}},
        conversion_events=[{"event": "Order Completed", "data_extension_key": ORDERS}],
    )
    message = {
        "type": "track",
        "userId": "buyer-1",
        "event": " Order Completed ",
        "properties": {"total": 12.5},
        "messageId": "m-1",
    }
    lines = [schema("events", SEGMENT_SCHEMA), record("events", message), state({"s": 1})]
    result = run(tmp_path, config, lines)

    assert result.returncode == 0, result.tail()
    assert [(r["Contact Key"], r["Total"]) for r in emulator.rows(ORDERS)] == [("buyer-1", 12.5)]
    counts = summary(result.stderr)
    assert (counts["written"], counts["skipped"]) == (1, 0), result.tail()
