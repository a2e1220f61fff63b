"""Emulator: synchronous hub row endpoints (rowset and single-row PUT) and the row rules."""

from __future__ import annotations

import pytest

from target_sfmc.emulator.schema import data_extension_id

TYPES_DE = {
    "key": "TYPES",
    "fields": [
        {"name": "Id", "type": "Number", "primary_key": True},
        {"name": "Label", "type": "Text", "length": 5},
        {"name": "Notes", "type": "Text"},
        {"name": "Email", "type": "EmailAddress"},
        {"name": "Count", "type": "Number"},
        {"name": "Amount", "type": "Decimal", "precision": 6, "scale": 2},
        {"name": "Flag", "type": "Boolean"},
        {"name": "When", "type": "Date"},
        {"name": "Phone", "type": "Phone"},
        {"name": "Locale", "type": "Locale"},
        {"name": "Required", "type": "Text", "nullable": False},
    ],
}


@pytest.fixture
def types_client(emulator_factory, sample_data_extensions, sfmc_client):
    emulator = emulator_factory(data_extensions=[*sample_data_extensions, TYPES_DE])
    return sfmc_client(emulator)


def identify_row(key, **values):
    return {"keys": {"Contact Key": key}, "values": values}


def error_messages(response):
    return [e["message"] for e in response.json()["additionalErrors"]]


def col_error(column, reason):
    return f"{column}: The value for column [{column}] {reason}"


def test_rowset_upserts_and_echoes(emulator, sfmc_client):
    client = sfmc_client(emulator)
    rows = [
        identify_row("u1", Email="u1@example.com", Logins=3, **{"Is Active": True}),
        identify_row("u2", Plan="pro", Score="12.50"),
    ]
    response = client.rowset("IDENTIFY", rows)
    assert response.status_code == 200
    assert response.json() == rows
    assert emulator.rows("IDENTIFY") == [
        {"Contact Key": "u1", "Email": "u1@example.com", "Logins": 3, "Is Active": True},
        {"Contact Key": "u2", "Plan": "pro", "Score": "12.50"},
    ]


def test_column_names_are_case_insensitive(emulator, sfmc_client):
    client = sfmc_client(emulator)
    response = client.rowset(
        "identify",
        [
            {
                "keys": {"CONTACT KEY": "u1"},
                "values": {"email": "u1@example.com", "fIrSt nAmE": "Ann"},
            }
        ],
    )
    assert response.status_code == 200
    assert emulator.rows("IDENTIFY") == [
        {"Contact Key": "u1", "Email": "u1@example.com", "First Name": "Ann"}
    ]


def test_unknown_columns_are_ignored(emulator, sfmc_client):
    client = sfmc_client(emulator)
    response = client.rowset("IDENTIFY", [identify_row("u1", Plan="pro", Nonexistent="xyz")])
    assert response.status_code == 200
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Plan": "pro"}]


@pytest.mark.parametrize("values", [{"Nonexistent": "xyz"}, {}])
def test_row_without_any_known_value_column_is_rejected(emulator, sfmc_client, values):
    client = sfmc_client(emulator)
    response = client.rowset("IDENTIFY", [{"keys": {"Contact Key": "u1"}, "values": values}])
    assert response.status_code == 400
    body = response.json()
    assert body["errorcode"] == 10006
    assert body["message"] == (
        f"Unable to save rows for data extension ID {data_extension_id('IDENTIFY')}"
    )
    assert body["additionalErrors"][0] == {
        "message": "At least one existing field is required in the values property",
        "errorcode": 10000,
        "documentation": "",
    }
    assert emulator.rows("IDENTIFY") == []


BAD_VALUES = [
    ("Label", "abcdef", "exceeds the column's maximum length."),
    ("Email", "not-an-email", "is not a valid email address. Parse error [InvalidEmailAddress]"),
    ("Email", "a@b", "is not a valid email address. Parse error [InvalidEmailAddress]"),
    ("Count", 1.5, "is not a valid number."),
    ("Count", 2**31, "is not a valid number."),
    ("Count", "12a", "is not a valid number."),
    ("Count", True, "is not a valid number."),
    ("Amount", "1.234", "is not a valid decimal."),
    ("Amount", 12345.5, "is not a valid decimal."),
    ("Amount", "abc", "is not a valid decimal."),
    ("Flag", "maybe", "is not a valid boolean."),
    ("Flag", 5, "is not a valid boolean."),
    ("When", "2020-13-01", "is not a valid date."),
    ("When", "05/30/2020", "is not a valid date."),
    ("When", "2020-05-30T13:30:00+25:00", "is not a valid date."),
    (
        "Phone",
        "call me",
        "is not a valid phone number. Parse error [ExactTarget.Core.Validation.ValidationResult[]]",
    ),
    ("Locale", "english", "is not a valid locale."),
    ("Required", None, "does not allow null value."),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_VALUES)
def test_type_rules_reject_bad_values(types_client, column, value, reason):
    row = {"keys": {"Id": 1}, "values": {"Required": "x", column: value}}
    response = types_client.rowset("TYPES", [row])
    assert response.status_code == 400
    assert response.json()["errorcode"] == 10006
    assert error_messages(response) == [col_error(column, reason)]
    assert types_client.emulator.rows("TYPES") == []


GOOD_VALUES = [
    ("Label", "abcde"),
    ("Label", 12345),
    ("Notes", "x" * 4000),
    ("Email", "first.last+tag@sub.example.co.uk"),
    ("Count", -(2**31)),
    ("Count", "42"),
    ("Amount", "1234.50"),
    ("Amount", 1234.5),
    ("Amount", "-0.01"),
    ("Amount", 12),
    ("Flag", False),
    ("Flag", "Yes"),
    ("Flag", "0"),
    ("When", "2020-05-30"),
    ("When", "2020-05-30T13:30:00Z"),
    ("When", "2020-05-30T13:30:00.123456-05:00"),
    ("When", "2020-05-30 13:30"),
    ("Phone", "+1 (555) 010-9999"),
    ("Locale", "en-US"),
    ("Locale", "fr"),
]


@pytest.mark.parametrize(("column", "value"), GOOD_VALUES)
def test_type_rules_accept_good_values_and_keep_json_type(types_client, column, value):
    row = {"keys": {"Id": 1}, "values": {"Required": "x", column: value}}
    response = types_client.rowset("TYPES", [row])
    assert response.status_code == 200, response.json()
    stored = types_client.emulator.rows("TYPES")[0][column]
    assert stored == value
    assert type(stored) is type(value)


def test_text_length_defaults_to_4000(types_client):
    row = {"keys": {"Id": 1}, "values": {"Required": "x", "Notes": "x" * 4001}}
    response = types_client.rowset("TYPES", [row])
    assert error_messages(response) == [col_error("Notes", "exceeds the column's maximum length.")]


def test_all_problems_of_the_failing_row_are_reported(types_client):
    row = {"keys": {"Id": 1}, "values": {"Required": "x", "Email": "bad", "Flag": "maybe"}}
    response = types_client.rowset("TYPES", [row])
    assert len(error_messages(response)) == 2


def test_primary_key_must_be_present_and_not_null_in_keys(emulator, sfmc_client):
    client = sfmc_client(emulator)
    null_message = col_error("Contact Key", "does not allow null value.")
    for keys in ({}, {"Contact Key": None}, {"Contact Key": ""}):
        response = client.rowset("IDENTIFY", [{"keys": keys, "values": {"Plan": "x"}}])
        assert response.status_code == 400
        assert error_messages(response) == [null_message]
    # The key only in values is not enough for the hub API.
    response = client.rowset("IDENTIFY", [{"values": {"Contact Key": "u1", "Plan": "x"}}])
    assert error_messages(response) == [null_message]
    assert emulator.rows("IDENTIFY") == []


def test_keys_naming_a_non_primary_key_column_is_rejected(emulator, sfmc_client):
    client = sfmc_client(emulator)
    response = client.rowset("IDENTIFY", [{"keys": {"Email": "a@b.co"}, "values": {"Plan": "x"}}])
    assert response.status_code == 400
    assert response.json() == {
        "message": "Primary key 'Email' does not exist.",
        "errorcode": 10000,
        "documentation": "",
    }


def test_non_nullable_column_required_on_insert_but_not_on_update(types_client):
    missing = types_client.rowset("TYPES", [{"keys": {"Id": 1}, "values": {"Label": "a"}}])
    assert missing.status_code == 400
    assert error_messages(missing) == [col_error("Required", "does not allow null value.")]
    created = types_client.rowset("TYPES", [{"keys": {"Id": 1}, "values": {"Required": "r"}}])
    assert created.status_code == 200
    updated = types_client.rowset("TYPES", [{"keys": {"Id": "1"}, "values": {"Label": "b"}}])
    assert updated.status_code == 200
    assert types_client.emulator.rows("TYPES") == [{"Id": 1, "Label": "b", "Required": "r"}]


def test_upsert_updates_provided_columns_and_keeps_the_others(emulator, sfmc_client):
    client = sfmc_client(emulator)
    client.rowset("IDENTIFY", [identify_row("User-1", Email="a@example.com", Plan="free")])
    # Text primary keys compare case-insensitively, like SQL Server.
    response = client.rowset("IDENTIFY", [identify_row("user-1", Plan="pro", Logins=2)])
    assert response.status_code == 200
    assert emulator.rows("IDENTIFY") == [
        {"Contact Key": "User-1", "Email": "a@example.com", "Plan": "pro", "Logins": 2}
    ]


def test_rowset_applies_rows_until_the_first_failing_row(emulator, sfmc_client):
    client = sfmc_client(emulator)
    rows = [
        identify_row("ok-1", Plan="a"),
        identify_row("ok-2", Plan="b"),
        identify_row("bad", Email="not-an-email"),
        identify_row("ok-3", Plan="c"),
        identify_row("bad-2", Logins="x"),
    ]
    response = client.rowset("IDENTIFY", rows)
    assert response.status_code == 400
    body = response.json()
    assert body["errorcode"] == 10006
    # Only the first failing row is described, and nothing says which row it was.
    assert error_messages(response) == [
        col_error("Email", "is not a valid email address. Parse error [InvalidEmailAddress]")
    ]
    assert "bad" not in str(body).replace("data extension", "")
    assert [r["Contact Key"] for r in emulator.rows("IDENTIFY")] == ["ok-1", "ok-2"]


def test_rowset_unknown_data_extension_key(emulator, sfmc_client):
    response = sfmc_client(emulator).rowset("NOPE", [identify_row("u1", Plan="x")])
    assert response.status_code == 400
    assert response.json() == {
        "message": "Data Extension with external key NOPE not found.",
        "errorcode": 10000,
        "documentation": "",
    }


@pytest.mark.parametrize("body", [b"{not json", b'{"keys": {}}', b"[1, 2]", b'[{"keys": []}]'])
def test_rowset_malformed_body_is_invalid_message_format(emulator, sfmc_client, body):
    client = sfmc_client(emulator)
    response = client.post(
        "/hub/v1/dataevents/key:IDENTIFY/rowset",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errorcode"] == 10004
    assert response.json()["message"] == "Invalid Message Format"


def test_rowset_by_data_extension_id(emulator, sfmc_client):
    client = sfmc_client(emulator)
    de_id = data_extension_id("IDENTIFY")
    response = client.post(
        f"/hub/v1/dataevents/{de_id}/rowset", json=[identify_row("u1", Plan="x")]
    )
    assert response.status_code == 200
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Plan": "x"}]


def test_single_row_put_with_composite_url_encoded_key(emulator, sfmc_client):
    client = sfmc_client(emulator)
    response = client.put(
        "/hub/v1/dataevents/key:ORDER_COMPLETED/rows/Contact%20Key:user%201,Order%20Id:o-1",
        json={"values": {"Total": "19.99", "Currency": "EUR"}},
    )
    assert response.status_code == 200
    assert response.json() == {
        "keys": {"Contact Key": "user 1", "Order Id": "o-1"},
        "values": {"Total": "19.99", "Currency": "EUR"},
    }
    assert emulator.rows("ORDER_COMPLETED") == [
        {"Contact Key": "user 1", "Order Id": "o-1", "Total": "19.99", "Currency": "EUR"}
    ]
    bad = client.put(
        "/hub/v1/dataevents/key:ORDER_COMPLETED/rows/Contact%20Key:u,Order%20Id:o-2",
        json={"values": {"Total": "abc"}},
    )
    assert bad.status_code == 400
    assert error_messages(bad) == [col_error("Total", "is not a valid decimal.")]


def test_composite_primary_key_identifies_rows(emulator, sfmc_client):
    client = sfmc_client(emulator)
    rows = [
        {"keys": {"Contact Key": "u1", "Order Id": "o1"}, "values": {"Total": 1}},
        {"keys": {"Contact Key": "u1", "Order Id": "o2"}, "values": {"Total": 2}},
        {"keys": {"Contact Key": "u1", "Order Id": "O1"}, "values": {"Products": 3}},
    ]
    assert client.rowset("ORDER_COMPLETED", rows).status_code == 200
    assert emulator.rows("ORDER_COMPLETED") == [
        {"Contact Key": "u1", "Order Id": "o1", "Total": 1, "Products": 3},
        {"Contact Key": "u1", "Order Id": "o2", "Total": 2},
    ]
    missing_second_key = client.rowset(
        "ORDER_COMPLETED", [{"keys": {"Contact Key": "u1"}, "values": {"Total": 1}}]
    )
    assert error_messages(missing_second_key) == [
        col_error("Order Id", "does not allow null value.")
    ]


def test_data_extension_without_primary_key_takes_every_row_as_new(emulator, sfmc_client):
    fields = [{"name": "Message", "type": "Text"}, {"name": "N", "type": "Number"}]
    emulator.add_data_extension({"key": "LOG", "fields": fields})
    client = sfmc_client(emulator)
    rows = [{"keys": {}, "values": {"Message": "a", "N": 1}}, {"values": {"message": "a"}}]
    assert client.rowset("LOG", rows).status_code == 200
    request_id = client.async_upsert("LOG", [{"Message": "b"}]).json()["requestId"]
    assert client.wait_for_job(request_id)["requestStatus"] == "Complete"
    assert emulator.rows("LOG") == [{"Message": "a", "N": 1}, {"Message": "a"}, {"Message": "b"}]
