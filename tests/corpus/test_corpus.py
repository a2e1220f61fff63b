"""Real taps' schemas, loaded through the real CLI into the emulator.

Every schema of ``schemas/`` (see ``schemas/index.json`` for where each comes from) is one
stream of a single CLI run, ``track`` into its own Data Extension whose columns are
declared from the schema; Stripe customers are also loaded as an ``identify`` stream and
the Segment export as a ``segment`` stream. The runs cover the sync and async APIs with
record validation on and off, and SDK flattening. What arrives is read twice: the rows the
emulator stored, and the JSON bodies SFMC received (for the exact digits of numbers, which
the emulator stores as floats).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from cli_harness import run_target, summary
from corpus_harness import Number, SentRows, config_for
from corpus_records import DATE_TIMES, CorpusStream, corpus, encode_line
from singer_sdk.helpers._flattening import flatten_record, flatten_schema

from target_sfmc.emulator import SfmcEmulator
from target_sfmc.mapping import title_case

if TYPE_CHECKING:
    from pathlib import Path

RECORDS_PER_STREAM = 30
STREAMS = corpus()
TRACKED = [stream for stream in STREAMS if stream.name != "segment_export"]
SEGMENT = next(stream for stream in STREAMS if stream.name == "segment_export")
# Keyless streams get a primary key from a property the generator makes unique.
PRIMARY_KEYS = {
    "pw_types": ["our_decimal"],
    "sdk_dates": ["email"],
    "csv_orders": ["_smart_source_lineno"],
}
IDENTIFY_SOURCE = next(stream for stream in STREAMS if stream.name == "stripe_customers")
IDENTIFY_STREAM = "stripe_customers_identify"
CONTACT_KEY = {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True}


def keys_of(stream: CorpusStream) -> list[str]:
    return PRIMARY_KEYS.get(stream.name, stream.key_properties)


# -- expectations -------------------------------------------------------------------------------


def instant(text: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(text)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def check_datetime(stored: Any, sent: Any, value: str) -> None:
    for text in (stored, sent):
        assert isinstance(text, str), text
        head, _, fraction = text[:19], text[19:20], text[20:-6]
        assert text[10] == "T", text
        assert text[-6] in "+-" and text[-3] == ":", f"no explicit offset: {text}"
        assert len(fraction) <= 3, f"more than milliseconds: {text}"
        del head
        expected = instant(value)
        truncated = expected.replace(microsecond=expected.microsecond // 1000 * 1000)
        assert instant(text) == truncated, (text, value)


def check_number(stored: Any, sent: Any, value: Decimal | int) -> None:
    assert isinstance(sent, Number), sent
    assert Decimal(sent) == Decimal(value), (sent, value)
    if isinstance(value, int) or isinstance(stored, int):
        assert Decimal(stored) == Decimal(value), (stored, value)
    else:
        # The emulator keeps floats: exact when the value has the digits a float holds.
        assert stored == float(value), (stored, value)


def check_cell(kind: str, stored: Any, sent: Any, value: Any) -> None:
    if kind == "date-time":
        check_datetime(stored, sent, value)
    elif kind in ("integer", "number"):
        check_number(stored, sent, value)
    elif kind == "boolean":
        assert stored is value and sent is value, (stored, sent, value)
    else:  # strings, dates (YYYY-MM-DD) and times (kept as text)
        assert stored == value and sent == value, (stored, sent, value)


def check_stream(
    stream: CorpusStream,
    records: list[dict[str, Any]],
    emulator: SfmcEmulator,
    sent_rows: SentRows,
    key: str,
    columns: list[tuple[str, str, str]],
    key_columns: list[tuple[str, str]],
) -> None:
    """Every record's row is in its DE with every value exactly as the record had it.

    ``columns`` are ``(column, record property, kind)``; ``key_columns`` ``(column, property)``.
    """
    stored_by_key = {
        tuple(str(row[column]) for column, _ in key_columns): row for row in emulator.rows(key)
    }
    sent_by_key: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in sent_rows.rows(key):
        sent_by_key.setdefault(tuple(str(row[column]) for column, _ in key_columns), {}).update(row)
    assert len(stored_by_key) == len(records), stream.name
    for record in records:
        record_key = tuple(str(record[prop]) for _, prop in key_columns)
        stored, sent = stored_by_key[record_key], sent_by_key[record_key]
        for column, prop, kind in columns:
            value = record.get(prop)
            if value is None or isinstance(value, dict | list):
                assert stored.get(column) is None, (stream.name, column)
                assert column not in sent, (stream.name, column)
                continue
            try:
                check_cell(kind, stored.get(column), sent.get(column), value)
            except AssertionError as exc:
                raise AssertionError(f"{stream.name}.{prop} ({kind}): {exc}") from None


# -- the Segment export -------------------------------------------------------------------------


def segment_messages(count: int) -> list[dict[str, Any]]:
    """Segment messages (identify, track, page) with the shapes Segment's spec describes."""
    rng = random.Random(7)  # noqa: S311 - reproducible data
    messages = []
    for index in range(count):
        kind = ("identify", "track", "track", "page")[index % 4]
        message: dict[str, Any] = {
            "type": kind,
            "messageId": f"msg-{index:05d}",
            "anonymousId": f"anon-{index}",
            "timestamp": DATE_TIMES[index % len(DATE_TIMES)],
            "sentAt": "2020-05-30T13:30:01.909Z",
            "receivedAt": None,
            "version": 2,
            "integrations": {"All": True, "Salesforce": False},
            "context": {
                "app": {"name": "InitechGlobal", "version": "545", "build": "3.0.1.545"},
                "campaign": {"name": "TPS Innovation Newsletter", "source": "Newsletter"},
                "device": {
                    "manufacturer": "Apple",
                    "model": "iPhone7,2",
                    "adTrackingEnabled": True,
                },
                "screen": {"width": 320, "height": 568, "density": Decimal("2.5")},
                "locale": "en-US",
                "ip": "8.8.8.8",
            },
        }
        if index % 3:
            message["userId"] = f"user:{index}"  # the colon is removed from Contact Keys
        if kind == "identify":
            message["traits"] = {
                "email": f"person{index}@example.com",
                "first_name": rng.choice(["Zoë", "Ana", "O'Brien"]),
                "logins": rng.randint(0, 10**6),
                "lifetime_value": Decimal(rng.randint(0, 10**9)) / 100,
            }
        elif kind == "track":
            message["event"] = "Order Completed" if index % 2 else "Signed Up"
            message["properties"] = {
                "order_id": f"o-{index}",
                "total": Decimal("1234567890123.4567891"),
                "currency": "EUR",
                "email": f"buyer{index}@example.com",
            }
        messages.append(message)
    return messages


SEGMENT_DATA_EXTENSIONS = [
    {
        "key": "SEGMENT_IDENTIFY",
        "fields": [
            CONTACT_KEY,
            {"name": "Email", "type": "EmailAddress", "length": 254},
            {"name": "First Name", "type": "Text", "length": 100},
            {"name": "Logins", "type": "Number"},
            {"name": "Lifetime Value", "type": "Decimal", "precision": 18, "scale": 2},
            {"name": "UTM Campaign", "type": "Text", "length": 100},
            {"name": "Device-model", "type": "Text", "length": 100},
            {"name": "Screen Density", "type": "Decimal", "precision": 5, "scale": 2},
        ],
    },
    {
        "key": "SEGMENT_ORDERS",
        "fields": [
            {"name": "Uuid", "type": "Text", "length": 64, "primary_key": True},
            {"name": "Contact Key", "type": "Text", "length": 254},
            {"name": "Order Id", "type": "Text", "length": 50},
            {"name": "Total", "type": "Decimal", "precision": 29, "scale": 7},
            {"name": "Currency", "type": "Text", "length": 3},
            {"name": "App Name", "type": "Text", "length": 100},
        ],
    },
]


def check_segment(messages: list[dict[str, Any]], emulator: SfmcEmulator) -> None:
    identified = {row["Contact Key"]: row for row in emulator.rows("SEGMENT_IDENTIFY")}
    orders = {row["Uuid"]: row for row in emulator.rows("SEGMENT_ORDERS")}
    for message in messages:
        contact = (message.get("userId") or "").replace(":", "")
        if message["type"] == "identify":
            row = identified[contact or message["traits"]["email"]]
            assert row["Email"] == message["traits"]["email"]
            assert row["First Name"] == message["traits"]["first_name"]
            assert row["Logins"] == message["traits"]["logins"]
            assert row["UTM Campaign"] == "TPS Innovation Newsletter"
            assert row["Device-model"] == "iPhone7,2"
        elif message.get("event") == "Order Completed":
            row = orders[message["messageId"]]
            assert row["Order Id"] == message["properties"]["order_id"]
            assert row["App Name"] == "InitechGlobal"
            assert row.get("Contact Key") == (contact or message["properties"]["email"])
    expected_orders = sum(message.get("event") == "Order Completed" for message in messages)
    assert len(orders) == expected_orders


# -- one run of the whole corpus ----------------------------------------------------------------


def tracked_columns(stream: CorpusStream) -> tuple[list[dict], list[tuple[str, str, str]]]:
    columns = stream.columns(keys_of(stream))
    return [column.field for column in columns], [(c.name, c.prop, c.kind) for c in columns]


def identify_columns() -> tuple[list[dict], list[tuple[str, str, str]]]:
    fields, checks = [CONTACT_KEY], []
    for column in IDENTIFY_SOURCE.columns([]):
        if column.prop == "id":
            continue
        field = dict(column.field)
        if column.prop == "email":
            field = {"name": "Email", "type": "EmailAddress", "length": 254}
        fields.append(field)
        checks.append((column.name, column.prop, column.kind))
    return fields, checks


def corpus_input(records: dict[str, list[dict]], messages: list[dict]) -> str:
    lines = []
    for stream in TRACKED:
        lines.append(
            encode_line(
                {
                    "type": "SCHEMA",
                    "stream": stream.name,
                    "schema": stream.schema,
                    "key_properties": stream.key_properties,
                }
            )
        )
        lines += [
            encode_line({"type": "RECORD", "stream": stream.name, "record": r})
            for r in records[stream.name]
        ]
    lines.append(
        encode_line(
            {
                "type": "SCHEMA",
                "stream": IDENTIFY_STREAM,
                "schema": IDENTIFY_SOURCE.schema,
                "key_properties": ["id"],
            }
        )
    )
    lines += [
        encode_line({"type": "RECORD", "stream": IDENTIFY_STREAM, "record": r})
        for r in records[IDENTIFY_SOURCE.name]
    ]
    lines.append(
        encode_line(
            {
                "type": "SCHEMA",
                "stream": SEGMENT.name,
                "schema": SEGMENT.schema,
                "key_properties": [],
            }
        )
    )
    lines += [
        encode_line({"type": "RECORD", "stream": SEGMENT.name, "record": m}) for m in messages
    ]
    lines.append(
        encode_line(
            {"type": "STATE", "value": {"bookmarks": {"corpus": {"position": Decimal("1.5")}}}}
        )
    )
    return "\n".join(lines) + "\n"


def corpus_config(emulator: SfmcEmulator, **settings: Any) -> dict[str, Any]:
    streams: dict[str, Any] = {
        stream.name: {
            "type": "track",
            "data_extension_key": stream.data_extension_key,
            "primary_keys": [title_case(name) for name in keys_of(stream)],
        }
        for stream in TRACKED
    }
    streams[IDENTIFY_STREAM] = {
        "type": "identify",
        "data_extension_key": "STRIPE_CONTACTS",
        "user_id_property": "id",
    }
    streams[SEGMENT.name] = {"type": "segment"}
    return config_for(
        emulator,
        identify_data_extension_key="SEGMENT_IDENTIFY",
        conversion_events=[
            {
                "event": "order completed",
                "data_extension_key": "SEGMENT_ORDERS",
                "uuid_primary_key": True,
            }
        ],
        streams=streams,
        **settings,
    )


@pytest.mark.parametrize(
    ("use_async_api", "validate_records"),
    [(False, True), (False, False), (True, True), (True, False)],
    ids=["sync-validated", "sync-unvalidated", "async-validated", "async-unvalidated"],
)
def test_every_corpus_schema_loads_exactly(
    tmp_path: Path, emulators, use_async_api, validate_records
):
    records = {
        stream.name: stream.records(RECORDS_PER_STREAM, unique=keys_of(stream))
        for stream in TRACKED
    }
    messages = segment_messages(RECORDS_PER_STREAM)
    data_extensions = [
        {"key": stream.data_extension_key, "fields": tracked_columns(stream)[0]}
        for stream in TRACKED
    ]
    data_extensions.append({"key": "STRIPE_CONTACTS", "fields": identify_columns()[0]})
    data_extensions += SEGMENT_DATA_EXTENSIONS
    emulator = emulators(data_extensions)
    sent_rows = SentRows(emulator)
    config = corpus_config(emulator, use_async_api=use_async_api, validate_records=validate_records)

    run = run_target(tmp_path, config, corpus_input(records, messages))

    assert run.returncode == 0, run.tail()
    assert "Traceback" not in run.stderr, run.tail()
    counts = summary(run.stderr)
    total = RECORDS_PER_STREAM * (len(TRACKED) + 2)
    assert counts["read"] == total
    assert (
        counts["read"]
        == counts["written"] + counts["merged"] + counts["skipped"] + counts["rejected"]
    )
    assert counts["rejected"] == 0, run.tail()
    assert run.states[-1] == {"bookmarks": {"corpus": {"position": 1.5}}}
    for stream in TRACKED:
        _, checks = tracked_columns(stream)
        key_columns = [(title_case(name), name) for name in keys_of(stream)]
        check_stream(
            stream,
            records[stream.name],
            emulator,
            sent_rows,
            stream.data_extension_key,
            checks,
            key_columns,
        )
    _, checks = identify_columns()
    check_stream(
        IDENTIFY_SOURCE,
        records[IDENTIFY_SOURCE.name],
        emulator,
        sent_rows,
        "STRIPE_CONTACTS",
        checks,
        [("Contact Key", "id")],
    )
    check_segment(messages, emulator)


NESTED = [
    "stripe_customers",
    "shopify_orders",
    "hubspot_contacts",
    "github_issue_events",
    "countries",
    "sdk_dates",
]


def test_nested_values_arrive_flattened_when_flattening_is_on(tmp_path: Path, emulators):
    streams = [stream for stream in TRACKED if stream.name in NESTED]
    records = {
        stream.name: stream.records(RECORDS_PER_STREAM, unique=keys_of(stream))
        for stream in streams
    }
    data_extensions, expectations = [], {}
    for stream in streams:
        flat_schema = flatten_schema(stream.schema, max_level=3, separator="__")
        flat = CorpusStream.__new__(CorpusStream)
        flat.entry, flat.schema, flat.key_properties = (
            stream.entry,
            flat_schema,
            stream.key_properties,
        )
        flat.properties = {
            name: flat._classify(name, d) for name, d in flat_schema["properties"].items()
        }
        columns = flat.columns(keys_of(stream))
        # Two flattened keys can share a Title Case name (a__b_c, a__b__c): the later key in
        # the record wins, so such a column has no single expected value here.
        names = [column.name for column in columns]
        columns = [column for column in columns if names.count(column.name) == 1]
        data_extensions.append(
            {"key": stream.data_extension_key, "fields": [c.field for c in columns]}
        )
        expectations[stream.name] = [(c.name, c.prop, c.kind) for c in columns]
    emulator = emulators(data_extensions)
    sent_rows = SentRows(emulator)
    config = corpus_config(emulator, flattening_enabled=True, flattening_max_depth=3)
    config["streams"] = {name: spec for name, spec in config["streams"].items() if name in NESTED}
    lines = []
    for stream in streams:
        lines.append(
            encode_line(
                {
                    "type": "SCHEMA",
                    "stream": stream.name,
                    "schema": stream.schema,
                    "key_properties": stream.key_properties,
                }
            )
        )
        lines += [
            encode_line({"type": "RECORD", "stream": stream.name, "record": r})
            for r in records[stream.name]
        ]

    run = run_target(tmp_path, config, lines)

    assert run.returncode == 0, run.tail()
    counts = summary(run.stderr)
    assert counts["read"] == counts["written"] == RECORDS_PER_STREAM * len(streams), run.tail()
    flattened_somewhere = False
    for stream in streams:
        flat_records = [
            flatten_record(
                r,
                flatten_schema(stream.schema, max_level=3, separator="__"),
                max_level=3,
                separator="__",
            )
            for r in records[stream.name]
        ]
        nested_columns = [c for c in expectations[stream.name] if "__" in c[1]]
        flattened_somewhere |= any(
            r.get(prop) is not None for r in flat_records for _, prop, _ in nested_columns
        )
        key_columns = [(title_case(name), name) for name in keys_of(stream)]
        check_stream(
            stream,
            flat_records,
            emulator,
            sent_rows,
            stream.data_extension_key,
            expectations[stream.name],
            key_columns,
        )
    assert flattened_somewhere
