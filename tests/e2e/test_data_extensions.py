"""Data Extensions as code, through the real CLI against the emulator.

Created from the SCHEMA (exact columns, types, keys, folder, sendable), kept in step
(``add_missing_fields``), nothing silently dropped (ignored attributes counted, values that
cannot fit rejected before any request), ``--plan`` (prints, writes nothing), ``--test``
(primary keys and field counts), the 403 fallback, and Journey entry ``Data`` carrying only
the entry event Data Extension's fields.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest
from cli_harness import write_config
from harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    EXAMPLES,
    base_config,
    run_target,
    singer_lines,
    summary,
)

from target_sfmc.emulator import SfmcEmulator

# Every endpoint that changes something in SFMC (the token request aside).
WRITES = {
    "rowset",
    "row_put",
    "async_upsert",
    "async_insert",
    "contacts",
    "event",
    "async_events",
    "customobjects_create",
    "customobject_add_fields",
}


def empty_emulator(**kwargs):
    return SfmcEmulator(
        data_extensions=[], client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **kwargs
    )


def example_config(emulator, **overrides):
    config = json.loads((EXAMPLES / "config.example.json").read_text())
    config.update(
        auth_url=emulator.url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        retry_backoff_ms=50,
    )
    config.update(overrides)
    return config


def demo_input() -> str:
    return (EXAMPLES / "users.singer").read_text() + (EXAMPLES / "events.singer").read_text()


def inspect(emulator, path):
    with urllib.request.urlopen(emulator.url + path, timeout=10) as answer:  # noqa: S310 - loopback
        return json.load(answer)


def definition(emulator, key):
    return inspect(emulator, f"/_emulator/data-extensions/{key}")


def data_extension_keys(emulator):
    return sorted(de["key"] for de in inspect(emulator, "/_emulator/data-extensions"))


def fields_of(emulator, key):
    """(name, type, size, primary key, nullable) per column, in order."""
    out = []
    for field in definition(emulator, key)["fields"]:
        size = field.get("length")
        if field["type"] == "Decimal":
            size = (field["precision"], field["scale"])
        out.append((field["name"], field["type"], size, field["primary_key"], field["nullable"]))
    return out


CONTEXT_COLUMNS = [
    ("App Name", "Text", 254, False, True),
    ("App Version", "Text", 254, False, True),
    ("App Build", "Text", 254, False, True),
    ("UTM Campaign", "Text", 254, False, True),
    ("UTM Source", "Text", 254, False, True),
    ("UTM Medium", "Text", 254, False, True),
    ("UTM Term", "Text", 254, False, True),
    ("UTM Content", "Text", 254, False, True),
    ("Locale", "Text", 254, False, True),
    ("User Agent", "Text", 254, False, True),
    ("IP Address", "Text", 254, False, True),
    ("Ad Tracking Enabled", "Boolean", None, False, True),
    ("Device Manufacturer", "Text", 254, False, True),
    ("Device-model", "Text", 254, False, True),
    ("Device Name", "Text", 254, False, True),
    ("Device Type", "Text", 254, False, True),
    ("Bluetooth Enabled", "Boolean", None, False, True),
    ("Network Carrier", "Text", 254, False, True),
    ("Cellular Enabled", "Boolean", None, False, True),
    ("Wifi Enabled", "Boolean", None, False, True),
    ("Screen Density", "Decimal", (18, 4), False, True),
    ("Screen Height", "Number", None, False, True),
    ("Screen Width", "Number", None, False, True),
]
# examples/users.singer: Contact Key + its properties ("address" is an object: no column).
USERS_COLUMNS = [
    ("Contact Key", "Text", 254, True, False),
    ("User Id", "Text", 254, False, True),
    ("Email", "EmailAddress", 254, False, True),
    ("First Name", "Text", 254, False, True),
    ("Last Name", "Text", 254, False, True),
    ("Plan", "Text", 254, False, True),
    ("Logins", "Number", None, False, True),
    ("Lifetime Value", "Decimal", (18, 4), False, True),
    ("Is Active", "Boolean", None, False, True),
    ("Created At", "Date", None, False, True),
]


@pytest.mark.parametrize("use_async_api", [False, True], ids=["sync", "async"])
def test_create_data_extensions_loads_the_demo_into_an_empty_sfmc(tmp_path, use_async_api):
    with empty_emulator() as emulator:
        config = example_config(emulator, create_data_extensions=True, use_async_api=use_async_api)
        run = run_target(tmp_path, config, demo_input())
        assert run.returncode == 0, run.tail()
        # users (identify) creates IDENTIFY; the Segment stream declares `context`, so its
        # context attributes are added, then the trait it first sends (trial_users).
        assert fields_of(emulator, "IDENTIFY") == [
            *USERS_COLUMNS,
            *CONTEXT_COLUMNS,
            ("Trial Users", "Boolean", None, False, True),
        ]
        identify = definition(emulator, "IDENTIFY")
        assert identify["category_id"] == 7023  # the root Data Extensions folder, found by SOAP
        assert identify["is_sendable"] is True
        assert identify["sendable_field"] == "Contact Key"
        assert identify["sendable_subscriber_field"] == "Subscriber Key"
        # Order Completed: its configured keys, then the context attributes (declared), then
        # the properties first seen in its records (undeclared in the Segment schema).
        assert fields_of(emulator, "ORDER_COMPLETED") == [
            ("Contact Key", "Text", 254, True, False),
            ("Order Id", "Text", 254, True, False),
            *CONTEXT_COLUMNS,
            ("Total", "Decimal", (18, 4), False, True),
            ("Currency", "Text", 254, False, True),
        ]
        assert not definition(emulator, "ORDER_COMPLETED").get("is_sendable")
        assert set(data_extension_keys(emulator)) == {"IDENTIFY", "ORDER_COMPLETED"}
        rows = {r["Contact Key"]: r for r in emulator.rows("IDENTIFY")}
        assert set(rows) == {"u1001", "u1002", "alan@example.com", "u2001"}
        assert rows["u1001"]["Plan"] == "enterprise"
        assert rows["u1001"]["User Id"] == "u:1001"
        assert rows["u2001"]["Trial Users"] is True
        orders = sorted(emulator.rows("ORDER_COMPLETED"), key=lambda r: r["Order Id"])
        assert [(o["Order Id"], o["Currency"]) for o in orders] == [("o-1", "EUR"), ("o-2", "EUR")]
        counts = summary(run.stderr)
        assert (counts["read"], counts["written"], counts["rejected"]) == (10, 7, 0)
        assert "ignored_attributes" not in run.stderr
        requests = emulator.request_counts()
        assert requests["customobjects_create"] == {201: 2}
        assert requests["soap"] == {200: 1}  # the root folder is looked up once per run


def users_stream(extra_property=None, records=None):
    schema = {
        "type": "object",
        "properties": {
            "user_id": {"type": "string"},
            "plan": {"type": ["string", "null"], "maxLength": 20},
        },
    }
    if extra_property:
        schema["properties"][extra_property] = {"type": ["string", "null"]}
    return singer_lines("users", schema, records or [], key_properties=["user_id"])


def users_config(emulator, **overrides):
    return base_config(
        emulator,
        identify_data_extension_key="USERS",
        do_not_create_or_update_contacts=True,
        streams={"users": {"type": "identify", "data_extension_name": "Website Users"}},
        **overrides,
    )


def test_a_new_property_is_added_with_add_missing_fields_and_filled(tmp_path):
    with empty_emulator() as emulator:
        first = run_target(
            tmp_path,
            users_config(emulator, create_data_extensions=True),
            users_stream(records=[{"user_id": "a", "plan": "pro"}]),
        )
        assert first.returncode == 0, first.tail()
        assert definition(emulator, "USERS")["name"] == "Website Users"
        assert [f[0] for f in fields_of(emulator, "USERS")] == ["Contact Key", "User Id", "Plan"]
        second = run_target(
            tmp_path,
            users_config(emulator, add_missing_fields=True),
            users_stream("loyalty_tier", [{"user_id": "a", "plan": "pro", "loyalty_tier": "gold"}]),
        )
        assert second.returncode == 0, second.tail()
        assert fields_of(emulator, "USERS")[-1] == ("Loyalty Tier", "Text", 254, False, True)
        assert emulator.rows("USERS") == [
            {"Contact Key": "a", "User Id": "a", "Plan": "pro", "Loyalty Tier": "gold"}
        ]
        assert emulator.request_counts()["customobject_add_fields"] == {202: 1}
        assert "ignored_attributes" not in second.stderr


def test_without_add_missing_fields_the_summary_names_the_ignored_attribute(tmp_path):
    with empty_emulator() as emulator:
        first = run_target(
            tmp_path,
            users_config(emulator, create_data_extensions=True),
            users_stream(records=[{"user_id": "a", "plan": "pro"}]),
        )
        assert first.returncode == 0, first.tail()
        records = [
            {"user_id": "a", "plan": "max", "loyalty_tier": "gold-secret-value"},
            {"user_id": "b", "plan": "pro", "loyalty_tier": "silver"},
        ]
        second = run_target(tmp_path, users_config(emulator), users_stream("loyalty_tier", records))
        assert second.returncode == 0, second.tail()
        assert "ignored_attributes=1 (Loyalty Tier)" in second.stderr
        warnings = [line for line in second.stderr.splitlines() if "Loyalty Tier" in line]
        assert len([w for w in warnings if "WARNING" in w]) == 1  # once per attribute name
        assert "gold-secret-value" not in second.stderr
        assert [f[0] for f in fields_of(emulator, "USERS")] == ["Contact Key", "User Id", "Plan"]
        rows = {r["Contact Key"]: r for r in emulator.rows("USERS")}
        assert rows["a"]["Plan"] == "max"
        assert "Loyalty Tier" not in rows["b"]
        assert summary(second.stderr)["written"] == 2
        assert "customobject_add_fields" not in emulator.request_counts()


def test_a_missing_data_extension_is_a_clear_error_naming_key_and_stream(tmp_path):
    with empty_emulator() as emulator:
        run = run_target(tmp_path, users_config(emulator), users_stream(records=[{"user_id": "a"}]))
        assert run.returncode == 1
        assert (
            "Data extension 'USERS' (stream 'users') does not exist in SFMC: check its external "
            "key, create it, or set create_data_extensions to true."
        ) in run.stderr
        assert not WRITES & set(emulator.request_counts())


def test_a_creation_sfmc_refuses_stops_the_run_with_its_message(tmp_path):
    with empty_emulator() as emulator:
        config = users_config(
            emulator, create_data_extensions=True, data_extension_folder_id=424242
        )
        run = run_target(tmp_path, config, users_stream(records=[{"user_id": "a"}]))
        assert run.returncode == 1
        assert "creating data extension 'USERS' (stream 'users')" in run.stderr
        assert "A valid categoryId must be provided" in run.stderr
        assert "rowset" not in emulator.request_counts()


def test_values_that_cannot_fit_are_rejected_before_any_request(tmp_path):
    users = {
        "key": "USERS",
        "fields": [
            {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
            {"name": "Plan", "type": "Text", "length": 5},
            {"name": "Logins", "type": "Number"},
            {"name": "Score", "type": "Decimal", "precision": 5, "scale": 2},
        ],
    }
    schema = {
        "properties": {
            "user_id": {"type": "string"},
            "plan": {"type": "string"},
            "logins": {"type": ["integer", "string"]},
            "score": {"type": "number"},
        }
    }
    records = [
        {"user_id": "ok", "plan": "pro", "logins": 3, "score": 1.5},
        {"user_id": "long", "plan": "enterprise"},
        {"user_id": "big", "logins": 2**31},
        {"user_id": "text", "logins": "many"},
        {"user_id": "digits", "score": 1234.5},
    ]
    dead = tmp_path / "dead.jsonl"
    with SfmcEmulator(
        data_extensions=[users], client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    ) as emulator:
        config = users_config(emulator, row_error_policy="skip", dead_letter_path=str(dead))
        run = run_target(tmp_path, config, singer_lines("users", schema, records))
        assert run.returncode == 0, run.tail()
        assert [r["Contact Key"] for r in emulator.rows("USERS")] == ["ok"]
        assert emulator.request_counts()["rowset"] == {200: 1}  # SFMC saw only the good row
        letters = {
            json.loads(line)["row"]["Contact Key"]: json.loads(line)
            for line in dead.read_text().splitlines()
        }
        assert letters["long"]["message"] == (
            "The value for column [Plan] is too long: the column is Text of 5 characters in "
            "data extension [USERS]."
        )
        assert "32-bit" in letters["big"]["message"]
        assert "is text that is not a whole number" in letters["text"]["message"]
        assert "too many digits before the point" in letters["digits"]["message"]
        assert summary(run.stderr)["rejected"] == 4
        assert "enterprise" not in run.stderr
        failing = run_target(
            tmp_path, users_config(emulator), singer_lines("users", schema, records[1:2])
        )
        assert failing.returncode == 1
        assert "The value for column [Plan] is too long" in failing.stderr


def test_without_the_read_permission_it_says_so_once_and_loads_as_before(tmp_path):
    users = {
        "key": "USERS",
        "fields": [
            {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
            {"name": "Plan", "type": "Text", "length": 20},
        ],
    }
    faults = {"forbidden_endpoints": ["customobjects_search", "customobject_fields"]}
    with SfmcEmulator(
        data_extensions=[users], client_id=CLIENT_ID, client_secret=CLIENT_SECRET, faults=faults
    ) as emulator:
        config = users_config(emulator, create_data_extensions=True, add_missing_fields=True)
        run = run_target(
            tmp_path,
            config,
            users_stream("loyalty_tier", [{"user_id": "a", "plan": "pro", "loyalty_tier": "x"}]),
        )
        assert run.returncode == 0, run.tail()
        refusals = [line for line in run.stderr.splitlines() if "HTTP 403" in line]
        assert len(refusals) == 1
        assert "Data Extensions Read permission" in refusals[0]
        assert emulator.rows("USERS") == [{"Contact Key": "a", "Plan": "pro"}]
        assert emulator.request_counts()["customobjects_search"] == {403: 1}
        assert "customobjects_create" not in emulator.request_counts()


def cli(tmp_path, config, *flags, text=""):
    config_path = str(write_config(tmp_path, config))
    return subprocess.run(
        [sys.executable, "-m", "target_sfmc", "--config", config_path, *flags],
        input=text,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def plan(tmp_path, config, text, *extra):
    return cli(tmp_path, config, "--plan", *extra, text=text)


def test_plan_prints_what_to_create_and_writes_nothing(tmp_path):
    with empty_emulator() as emulator:
        proc = plan(tmp_path, example_config(emulator, create_data_extensions=True), demo_input())
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = proc.stdout.splitlines()
        assert out[0] == "Stream 'users':"
        assert (
            "  data extension 'IDENTIFY': CREATE as 'IDENTIFY' in folder 7023, sendable "
            "(Contact Key relates to Subscriber Key)"
        ) in out
        assert "      Contact Key: Text(254) primary key" in out
        assert "      Lifetime Value: Decimal(18,4)" in out
        assert (
            "  data extension 'ORDER_COMPLETED': CREATE as 'ORDER_COMPLETED' in folder 7023" in out
        )
        assert out[-1] == "Plan: a load would succeed with the current settings."
        assert '"bookmarks"' not in proc.stdout  # no STATE while planning
        requests = emulator.request_counts()
        assert not WRITES & set(requests), requests
        assert data_extension_keys(emulator) == []


def test_plan_fails_with_one_line_why(tmp_path):
    with empty_emulator() as emulator:
        proc = plan(tmp_path, example_config(emulator), demo_input())
        assert proc.returncode == 1
        assert proc.stdout.splitlines()[-1] == (
            "Plan: a load would fail: data extension 'IDENTIFY' (stream 'users') does not exist; "
            "create it, fix its key, or set create_data_extensions to true. (and 2 more above)"
        )
        assert not WRITES & set(emulator.request_counts())


def test_plan_of_existing_data_extensions_names_additions_lacks_and_keys(
    example_emulator, tmp_path
):
    config = example_config(example_emulator)
    users = (EXAMPLES / "users.singer").read_text()
    proc = plan(tmp_path, config, users)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "Stream 'users':",
        "  data extension 'IDENTIFY': exists, 13 columns, primary key Contact Key",
        (
            "    not sent when a record carries them, the data extension lacks them "
            "(add_missing_fields is off): User Id"
        ),
        "Plan: a load would succeed with the current settings.",
    ]
    added = plan(tmp_path, {**config, "add_missing_fields": True}, users)
    assert added.returncode == 0
    assert "    ADD columns:\n      User Id: Text(254)\n" in added.stdout
    track = {
        **config,
        "streams": {"orders": {"type": "track", "data_extension_key": "ORDER_COMPLETED"}},
    }
    schema = {"properties": {"order_id": {"type": "string"}, "total": {"type": "number"}}}
    lines = singer_lines("orders", schema, [], ["order_id"])
    keyed = plan(tmp_path, track, "\n".join(lines) + "\n")
    assert keyed.returncode == 1
    assert keyed.stdout.splitlines()[-1] == (
        "Plan: a load would fail: data extension 'ORDER_COMPLETED' has primary key Contact Key, "
        "Order Id but stream 'orders' keys its rows by Order Id."
    )
    assert not WRITES & set(example_emulator.request_counts())


def test_plan_names_type_conflicts_and_fails_on_columns_no_value_fits(tmp_path):
    users = {
        "key": "USERS",
        "fields": [
            {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
            {"name": "Plan", "type": "Number"},
            {"name": "Nickname", "type": "Text", "length": 10},
            {"name": "Signed Up", "type": "Boolean"},
        ],
    }
    schema = {
        "properties": {
            "user_id": {"type": "string"},
            "plan": {"type": "string"},
            "nickname": {"type": "string", "maxLength": 30},
            "signed_up": {"type": "string", "format": "date-time"},
        }
    }
    text = "\n".join(singer_lines("users", schema, [])) + "\n"
    with SfmcEmulator(
        data_extensions=[users], client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    ) as emulator:
        proc = plan(tmp_path, users_config(emulator), text)
        assert proc.returncode == 1
        assert (
            "    type conflict: column 'Plan' of data extension 'USERS' is Number but the stream "
            "sends Text(254): text that is not a valid Number is rejected."
        ) in proc.stdout
        assert (
            "column 'Nickname' of data extension 'USERS' is Text(10) but the stream sends "
            "Text(30): values longer than 10 characters are rejected."
        ) in proc.stdout
        assert proc.stdout.splitlines()[-1] == (
            "Plan: a load would fail: no value of Signed Up can go into its column of data "
            "extension 'USERS' (stream 'users'), and row_error_policy is 'fail'."
        )
        skipping = plan(tmp_path, users_config(emulator, row_error_policy="skip"), text)
        assert skipping.returncode == 0, skipping.stdout


def test_plan_reads_the_input_file_and_audiences_from_records(tmp_path):
    lines = singer_lines(
        "audiences",
        {"properties": {"user_id": {"type": "string"}, "audience": {"type": "string"}}},
        [
            {"user_id": "a", "audience": "trial_users", "in_audience": True},
            {"user_id": "b", "audience": "VIP", "in_audience": False},
        ],
    )
    source = tmp_path / "input.singer"
    source.write_text("\n".join(lines) + "\n")
    with empty_emulator() as emulator:
        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            create_data_extensions=True,
            data_extension_folder_id=7040,
            streams={"audiences": {"type": "audience"}},
        )
        proc = plan(tmp_path, config, "", "--input", str(source))
        assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
        assert proc.stdout.splitlines()[1:5] == [
            (
                "  data extension 'IDENTIFY': CREATE as 'IDENTIFY' in folder 7040, sendable "
                "(Contact Key relates to Subscriber Key)"
            ),
            "      Contact Key: Text(254) primary key",
            "      Trial Users: Boolean",
            "      VIP: Boolean",
        ]
        assert "soap" not in emulator.request_counts()  # the folder is the setting


def test_audience_columns_are_created_as_audiences_arrive(tmp_path):
    lines = singer_lines(
        "audiences",
        {"properties": {"user_id": {"type": "string"}, "audience": {"type": "string"}}},
        [
            {"user_id": "a", "audience": "trial_users", "in_audience": True},
            {"user_id": "b", "audience": "VIP", "in_audience": False},
        ],
    )
    with empty_emulator() as emulator:
        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            create_data_extensions=True,
            do_not_create_or_update_contacts=True,
            streams={"audiences": {"type": "audience"}},
        )
        run = run_target(tmp_path, config, lines)
        assert run.returncode == 0, run.tail()
        assert fields_of(emulator, "IDENTIFY") == [
            ("Contact Key", "Text", 254, True, False),
            ("Trial Users", "Boolean", None, False, True),
            ("VIP", "Boolean", None, False, True),
        ]
        rows = {r["Contact Key"]: r for r in emulator.rows("IDENTIFY")}
        assert rows == {
            "a": {"Contact Key": "a", "Trial Users": True},
            "b": {"Contact Key": "b", "VIP": False},
        }


def test_connection_check_reports_primary_keys_and_field_counts(example_emulator, tmp_path):
    config = example_config(example_emulator)
    proc = cli(tmp_path, config, "--test")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "data extension 'IDENTIFY': 0 rows; primary keys: Contact Key; 13 fields" in proc.stderr
    assert (
        "data extension 'ORDER_COMPLETED': 0 rows; primary keys: Contact Key, Order Id; 7 fields"
        in proc.stderr
    )


# -- Journey entry Data validated against the entry event's Data Extension ------------------

EVENT_DE = {
    "key": "EVENT_DE",
    "fields": [
        {"name": "User Id", "type": "Text", "length": 50},
        {"name": "Plan", "type": "Text", "length": 10},
        {"name": "Order Total", "type": "Decimal", "precision": 18, "scale": 2},
    ],
}
EVENT_SCHEMA = {
    "properties": {
        "user_id": {"type": "string"},
        "plan": {"type": "string"},
        "order_total": {"type": "number"},
        "loyalty_tier": {"type": "string"},
    }
}


def event_emulator(**kwargs):
    return SfmcEmulator(
        data_extensions=[EVENT_DE],
        event_definitions=[{"key": "APIEvent-2", "data_extension": "EVENT_DE"}],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        **kwargs,
    )


def event_config(emulator, **overrides):
    return base_config(
        emulator,
        streams={"signups": {"type": "api_event", "event_definition_key": "APIEvent-2"}},
        **overrides,
    )


def test_entry_event_data_carries_only_the_entry_data_extension_fields(tmp_path):
    records = [
        {"user_id": "a", "plan": "pro", "order_total": 12.5, "loyalty_tier": "gold-secret"},
        {"user_id": "b", "plan": "free", "loyalty_tier": "silver"},
        {"user_id": "c", "plan": "much-too-long-plan"},
    ]
    dead = tmp_path / "dead.jsonl"
    with event_emulator() as emulator:
        config = event_config(emulator, row_error_policy="skip", dead_letter_path=str(dead))
        run = run_target(tmp_path, config, singer_lines("signups", EVENT_SCHEMA, records))
        assert run.returncode == 0, run.tail()
        events = {e["contactKey"]: e["data"] for e in emulator.events()}
        assert events == {
            "a": {"User Id": "a", "Plan": "pro", "Order Total": 12.5},
            "b": {"User Id": "b", "Plan": "free"},
        }
        assert "ignored_attributes=1 (Loyalty Tier)" in run.stderr
        assert (
            len([x for x in run.stderr.splitlines() if "Loyalty Tier" in x and "WARNING" in x]) == 1
        )
        assert "gold-secret" not in run.stderr
        (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
        assert letter["row"]["ContactKey"] == "c"
        assert letter["message"].startswith("The value for column [Plan] is too long")
        counts = summary(run.stderr)
        assert (counts["written"], counts["rejected"]) == (2, 1)
        requests = emulator.request_counts()
        assert requests["event_definition_get"] == {200: 1}  # once per run
        assert requests["customobject_fields"] == {200: 1}


def test_entry_event_definition_unreadable_is_said_once_and_sent_as_before(tmp_path):
    records = [
        {"user_id": "a", "plan": "pro", "loyalty_tier": "gold"},
        {"user_id": "b", "plan": "free"},
    ]
    faults = {"forbidden_endpoints": ["event_definition_get"]}
    dead = tmp_path / "dead.jsonl"
    with event_emulator(faults=faults) as emulator:
        config = event_config(emulator, row_error_policy="skip", dead_letter_path=str(dead))
        run = run_target(tmp_path, config, singer_lines("signups", EVENT_SCHEMA, records))
        assert run.returncode == 0, run.tail()
        refusals = [line for line in run.stderr.splitlines() if "HTTP 403" in line]
        assert len(refusals) == 1
        assert "event definition 'APIEvent-2'" in refusals[0]
        assert "Journeys" in refusals[0]
        # Sent as before: SFMC refuses the event carrying the field its DE lacks.
        assert [e["contactKey"] for e in emulator.events()] == ["b"]
        (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
        assert "Loyalty Tier" in letter["message"]
