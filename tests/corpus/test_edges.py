"""Edge values and bad input from real taps, each through the CLI against the emulator."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from cli_harness import run_target, summary
from corpus_harness import Number, SentRows, config_for, started_emulator
from corpus_records import encode_line

if TYPE_CHECKING:
    from pathlib import Path

ID = {"name": "Id", "type": "Number", "primary_key": True}


def track(emulator, key: str = "T", **settings: Any) -> dict[str, Any]:
    return config_for(
        emulator, streams={"s": {"type": "track", "data_extension_key": key}}, **settings
    )


def lines_for(schema: dict, records: list[dict], key_properties=("id",)) -> list[str]:
    lines = [
        encode_line(
            {"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": key_properties}
        )
    ]
    lines += [encode_line({"type": "RECORD", "stream": "s", "record": r}) for r in records]
    lines.append(encode_line({"type": "STATE", "value": {"done": True}}))
    return lines


def de(*fields: dict, key: str = "T") -> dict[str, Any]:
    return {"key": key, "fields": [ID, *fields]}


def by_id(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    return {int(row["Id"]): row for row in rows}


# -- numbers ------------------------------------------------------------------------------------

AMOUNT = {"name": "Amount", "type": "Decimal", "precision": 18, "scale": 2}
MONEY_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "amount": {"type": ["number", "null"], "multipleOf": 0.01},
    },
}


def test_a_multiple_of_001_amount_loads_instead_of_crashing(tmp_path: Path, emulators):
    emulator = emulators([de(AMOUNT)])
    sent = SentRows(emulator)
    records = [
        {"id": 1, "amount": Decimal("12.34")},
        {"id": 2, "amount": Decimal("19.01")},
        {"id": 3, "amount": Decimal("0.1")},
        {"id": 4, "amount": None},
    ]

    run = run_target(tmp_path, track(emulator), lines_for(MONEY_SCHEMA, records))

    assert run.returncode == 0, run.tail()
    assert "Traceback" not in run.stderr
    assert summary(run.stderr)["written"] == 4
    assert run.states == [{"done": True}]
    stored = by_id(emulator.rows("T"))
    assert [stored[i].get("Amount") for i in (1, 2, 3, 4)] == [12.34, 19.01, 0.1, None]
    assert {int(row["Id"]): row.get("Amount") for row in sent.rows("T")} == {
        1: "12.34",
        2: "19.01",
        3: "0.1",
        4: None,
    }


def test_an_amount_that_is_not_a_multiple_stops_the_run_naming_the_line_and_field(
    tmp_path: Path, emulators
):
    emulator = emulators([de(AMOUNT)])
    records = [{"id": 1, "amount": Decimal("12.34")}, {"id": 2, "amount": Decimal("12.345")}]

    run = run_target(tmp_path, track(emulator), lines_for(MONEY_SCHEMA, records))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "Input line 3" in run.stderr
    assert "'amount' does not satisfy the 'multipleOf' rule" in run.stderr
    assert "12.345" not in run.stderr
    assert run.states == []


BIG = {"name": "Big", "type": "Decimal", "precision": 29, "scale": 0}
NEGATIVE = {"name": "Negative", "type": "Decimal", "precision": 29, "scale": 0}


def test_integers_beyond_2_to_the_53_arrive_exactly(tmp_path: Path, emulators):
    emulator = emulators([de(BIG, NEGATIVE)])
    sent = SentRows(emulator)
    schema = {
        "properties": {
            "id": {"type": "integer"},
            "big": {"type": ["null", "integer"], "minimum": -(2**63), "maximum": 2**63 - 1},
            "negative": {"type": "integer"},
        }
    }
    records = [
        {"id": 1, "big": 2**63 - 1, "negative": -(2**53 + 1)},
        {"id": 2, "big": 2**53 + 1, "negative": -(2**70 + 1)},
    ]

    run = run_target(tmp_path, track(emulator), lines_for(schema, records))

    assert run.returncode == 0, run.tail()
    stored = by_id(emulator.rows("T"))
    assert stored[1]["Big"] == 2**63 - 1
    assert stored[2]["Negative"] == -(2**70 + 1)
    tokens = {int(row["Id"]): (row["Big"], row["Negative"]) for row in sent.rows("T")}
    assert tokens == {
        1: (str(2**63 - 1), str(-(2**53 + 1))),
        2: (str(2**53 + 1), str(-(2**70 + 1))),
    }


VALUE = {"name": "Value", "type": "Decimal", "precision": 29, "scale": 7}
PLAIN_SCHEMA = {"properties": {"id": {"type": "integer"}, "value": {"type": "number"}}}


@pytest.fixture(scope="module")
def exponent_values(tmp_path_factory) -> dict[int, tuple[Any, Any]]:
    """One run sending 1E+21 and 1E-7 as a tap writes them: id -> (token sent, stored)."""
    with started_emulator([de(VALUE)]) as emulator:
        sent = SentRows(emulator)
        records = [{"id": 1, "value": Decimal("1E+21")}, {"id": 2, "value": Decimal("1E-7")}]
        run = run_target(
            tmp_path_factory.mktemp("exponents"), track(emulator), lines_for(PLAIN_SCHEMA, records)
        )
        assert run.returncode == 0, run.tail()
        tokens = {int(row["Id"]): row["Value"] for row in sent.rows("T")}
        return {key: (tokens[key], row["Value"]) for key, row in by_id(emulator.rows("T")).items()}


def test_1e21_is_sent_as_plain_digits(exponent_values):
    token, stored = exponent_values[1]
    assert token == "1000000000000000000000"
    assert stored == 10**21


def test_1e_minus_7_is_sent_as_plain_digits(exponent_values):
    token, stored = exponent_values[2]
    assert isinstance(token, Number)
    assert token == "0.0000001"
    assert stored == 1e-7


def test_nan_and_infinity_from_a_tap_are_row_errors(tmp_path: Path, emulators):
    emulator = emulators([de(VALUE)])
    dead = tmp_path / "dead.jsonl"
    lines = lines_for(PLAIN_SCHEMA, [{"id": 1, "value": Decimal("1.5")}])
    lines.insert(2, '{"type": "RECORD", "stream": "s", "record": {"id": 2, "value": NaN}}')
    lines.insert(3, '{"type": "RECORD", "stream": "s", "record": {"id": 3, "value": -Infinity}}')

    config = track(emulator, row_error_policy="skip", dead_letter_path=str(dead))
    run = run_target(tmp_path, config, lines)

    assert run.returncode == 0, run.tail()
    counts = summary(run.stderr)
    assert (counts["read"], counts["written"], counts["rejected"]) == (3, 1, 2)
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert all("not finite" in letter["message"] for letter in letters)
    assert [row["Id"] for row in emulator.rows("T")] == [1]


# -- dates and times ----------------------------------------------------------------------------

WHEN = [{"name": name, "type": "Date"} for name in ("At", "Naive At", "Day")]
WHEN_SCHEMA = {
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": ["null", "string"], "format": "date-time"},
        "naive_at": {"type": ["string", "null"], "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "clock": {"type": ["null", "string"], "format": "time"},
    }
}
WHEN_RECORDS = [
    {
        "id": 1,
        "at": "2020-05-30T13:30:00.123456+05:30",
        "naive_at": "2019-07-04T12:00:00.999999",
        "day": "2020-02-29",
        "clock": "23:59:59.999999",
    },
    {
        "id": 2,
        "at": "2021-12-31T23:59:59.9999-08:00",
        "naive_at": "2019-07-04 12:00:00",
        "day": "1999-12-31",
        "clock": "08:15+02:00",
    },
    {"id": 3, "at": "2020-01-01T00:00:00Z", "naive_at": None, "day": "2038-01-19", "clock": None},
]
WHEN_STORED = {
    1: (
        "2020-05-30T13:30:00.123+05:30",
        "2019-07-04T12:00:00.999+00:00",
        "2020-02-29",
        "23:59:59.999999",
    ),
    2: ("2021-12-31T23:59:59.999-08:00", "2019-07-04T12:00:00+00:00", "1999-12-31", "08:15+02:00"),
    3: ("2020-01-01T00:00:00+00:00", None, "2038-01-19", None),
}


@pytest.mark.parametrize("validate_records", [True, False], ids=["validated", "unvalidated"])
def test_dates_times_and_date_times_are_sent_as_sfmc_stores_them(
    tmp_path: Path, emulators, validate_records
):
    # A flat schema takes the reader's fast lane; a nested property sends the general way.
    nested_schema = json.loads(json.dumps(WHEN_SCHEMA))
    nested_schema["properties"]["extra"] = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
    }
    nested_records = [{**record, "extra": {"a": "x"}} for record in WHEN_RECORDS]
    clock = {"name": "Clock", "type": "Text", "length": 40}
    emulator = emulators([de(*WHEN, clock, key="FLAT"), de(*WHEN, clock, key="NESTED")])
    lines = lines_for(WHEN_SCHEMA, WHEN_RECORDS)
    lines += [
        line.replace('"stream":"s"', '"stream":"n"')
        for line in lines_for(nested_schema, nested_records)
    ]
    streams = {
        "s": {"type": "track", "data_extension_key": "FLAT"},
        "n": {"type": "track", "data_extension_key": "NESTED"},
    }

    config = config_for(emulator, streams=streams, validate_records=validate_records)
    run = run_target(tmp_path, config, lines)

    assert run.returncode == 0, run.tail()
    for key in ("FLAT", "NESTED"):
        stored = {
            record_id: (row.get("At"), row.get("Naive At"), row.get("Day"), row.get("Clock"))
            for record_id, row in by_id(emulator.rows(key)).items()
        }
        assert stored == WHEN_STORED, key


# -- bad input from a tap that breaks its own schema --------------------------------------------

COUNT_SCHEMA = {"properties": {"id": {"type": "integer"}, "count": {"type": ["null", "integer"]}}}
COUNT_RECORDS = [
    {"id": 1, "count": 5},
    {"id": 2, "count": "not-a-number-secret"},
    {"id": 3, "count": 7},
]


def test_a_string_where_the_schema_says_integer_stops_a_validated_run(tmp_path: Path, emulators):
    # The record fails its schema: one error naming the line and the field, never the value.
    emulator = emulators([de({"name": "Count", "type": "Number"})])

    run = run_target(tmp_path, track(emulator), lines_for(COUNT_SCHEMA, COUNT_RECORDS))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert "Input line 3" in run.stderr
    assert "'count' does not satisfy the 'type' rule" in run.stderr
    assert "not-a-number-secret" not in run.stderr
    assert run.states == []


def test_without_validation_sfmc_refuses_the_row_and_the_others_load(tmp_path: Path, emulators):
    emulator = emulators([de({"name": "Count", "type": "Number"})])
    dead = tmp_path / "dead.jsonl"
    config = track(
        emulator, validate_records=False, row_error_policy="skip", dead_letter_path=str(dead)
    )

    run = run_target(tmp_path, config, lines_for(COUNT_SCHEMA, COUNT_RECORDS))

    assert run.returncode == 0, run.tail()
    counts = summary(run.stderr)
    assert (counts["read"], counts["written"], counts["rejected"]) == (3, 2, 1)
    (letter,) = [json.loads(line) for line in dead.read_text().splitlines()]
    assert letter["reason"] == "rejected"
    assert "Count" in letter["message"]
    # The value cannot fit the Number column: refused before any request.
    assert "is text that is not a whole number" in letter["message"]
    assert sorted(row["Id"] for row in emulator.rows("T")) == [1, 3]
    assert run.states == [{"done": True}]


def test_without_validation_a_refused_row_fails_the_run_by_default(tmp_path: Path, emulators):
    emulator = emulators([de({"name": "Count", "type": "Number"})])

    config = track(emulator, validate_records=False)
    run = run_target(tmp_path, config, lines_for(COUNT_SCHEMA, COUNT_RECORDS))

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert summary(run.stderr)["rejected"] == 1
    assert "is text that is not a whole number" in run.stderr
    assert "not-a-number-secret" not in run.stderr
    assert run.states == []


# -- a schema the target cannot use -------------------------------------------------------------

UNRESOLVABLE = {
    "definitions": {"ts": {"type": "string", "format": "date-time"}},
    "properties": {
        "id": {"type": "integer"},
        "created": {"$ref": "#/definitions/timestamp"},
    },
}


@pytest.fixture(scope="module")
def unresolvable_runs(tmp_path_factory) -> dict[bool, Any]:
    """validate_records -> the run of a stream whose schema has an unresolvable $ref."""
    runs = {}
    for validate_records in (True, False):
        with started_emulator([de({"name": "Created", "type": "Date"})]) as emulator:
            records = [{"id": 1, "created": "2020-05-30T13:30:00"}]
            config = track(emulator, validate_records=validate_records)
            runs[validate_records] = run_target(
                tmp_path_factory.mktemp("unresolvable"), config, lines_for(UNRESOLVABLE, records)
            )
    return runs


def error_lines(run) -> list[str]:
    return [line for line in run.stderr.splitlines() if "| ERROR" in line]


@pytest.mark.parametrize("validate_records", [True, False], ids=["validated", "unvalidated"])
def test_an_unresolvable_reference_is_one_clear_error(unresolvable_runs, validate_records):
    run = unresolvable_runs[validate_records]

    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert len(error_lines(run)) == 1, error_lines(run)
    assert run.states == []


def test_validating_an_unresolvable_reference_names_the_stream(unresolvable_runs):
    (error,) = error_lines(unresolvable_runs[True])
    assert "stream 's'" in error


def test_loading_an_unresolvable_date_reference_names_the_property(unresolvable_runs):
    (error,) = error_lines(unresolvable_runs[False])
    assert "'created'" in error
    assert "#/definitions/timestamp" in error


def test_validating_an_unresolvable_reference_names_the_property(unresolvable_runs):
    (error,) = error_lines(unresolvable_runs[True])
    assert "'created'" in error


def test_loading_an_unresolvable_date_reference_names_the_stream(unresolvable_runs):
    (error,) = error_lines(unresolvable_runs[False])
    assert "stream 's'" in error


# -- records in BATCH messages ------------------------------------------------------------------


def test_records_in_a_batch_message_are_loaded(tmp_path: Path, emulators):
    emulator = emulators([de(VALUE)])
    part = tmp_path / "part-1.jsonl"
    part.write_text('{"id": 1, "value": 1.5}\n{"id": 2, "value": 2.25}\n')
    lines = lines_for(PLAIN_SCHEMA, [])
    batch = {
        "type": "BATCH",
        "stream": "s",
        "encoding": {"format": "jsonl", "compression": "none"},
        "manifest": [part.as_uri()],
    }
    lines.insert(1, json.dumps(batch))

    run = run_target(tmp_path, track(emulator), lines)

    assert run.returncode == 0, run.tail()
    assert summary(run.stderr)["written"] == 2
    assert sorted(row["Id"] for row in emulator.rows("T")) == [1, 2]
