"""Emulator: how Date columns store date-times (as sent, or as SFMC's ``datetime`` does)."""

from __future__ import annotations

import pytest
import requests

from target_sfmc.emulator import FaultConfig
from target_sfmc.emulator.cli import build_parser, fault_settings

SFMC_DATES = {"date_storage": "sfmc"}
STORED = [
    ("2020-05-30T13:30:00.123456+00:00", "2020-05-30T07:30:00.123"),
    ("2020-05-30T13:30:00.9999999Z", "2020-05-30T07:30:00.999"),  # truncated, not rounded up
    ("2020-05-30T13:30:00.5-05:00", "2020-05-30T12:30:00.500"),
    ("2020-01-01T03:00:00+00:00", "2019-12-31T21:00:00.000"),
    ("2020-07-01T12:00:00+02:00", "2020-07-01T04:00:00.000"),  # no daylight saving
    ("2020-05-30T13:30:00", "2020-05-30T13:30:00.000"),  # no offset: taken as system time
    ("2020-05-30 13:30", "2020-05-30T13:30:00.000"),
    ("2020-05-30", "2020-05-30T00:00:00.000"),
]


@pytest.mark.parametrize(("sent", "stored"), STORED)
def test_sfmc_date_storage_on_the_hub_api(emulator_factory, sfmc_client, sent, stored):
    emulator = emulator_factory(faults=SFMC_DATES)
    client = sfmc_client(emulator)
    row = {"keys": {"Contact Key": "u1"}, "values": {"Created At": sent, "Plan": "a"}}
    response = client.rowset("IDENTIFY", [row])
    assert response.status_code == 200
    assert response.json() == [row]  # the answer echoes the request
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Created At": stored, "Plan": "a"}]
    read = client.get("/data/v1/customobjectdata/key/IDENTIFY/rowset").json()
    assert read["items"][0]["values"]["created at"] == stored


def test_sfmc_date_storage_on_the_async_api(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults=SFMC_DATES)
    client = sfmc_client(emulator)
    items = [
        {"Contact Key": f"u{i}", "Created At": sent} for i, (sent, _stored) in enumerate(STORED)
    ]
    items.append({"contact key": "other spelling", "created at": "2020-05-30T13:30:00.1239Z"})
    request_id = client.async_upsert("IDENTIFY", items).json()["requestId"]
    assert client.wait_for_job(request_id)["resultStatus"] == "OK"
    assert [row["Created At"] for row in emulator.rows("IDENTIFY")] == [
        *(stored for _sent, stored in STORED),
        "2020-05-30T07:30:00.123",
    ]


def test_dates_are_kept_as_sent_by_default(emulator, sfmc_client):
    client = sfmc_client(emulator)
    sent = "2020-05-30T13:30:00.123456+00:00"
    row = {"keys": {"Contact Key": "u1"}, "values": {"Created At": sent}}
    assert client.rowset("IDENTIFY", [row]).status_code == 200
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Created At": sent}]


def test_date_primary_keys_compare_by_stored_instant(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults=SFMC_DATES)
    emulator.add_data_extension(
        {
            "key": "DAILY",
            "fields": [
                {"name": "Day", "type": "Date", "primary_key": True},
                {"name": "N", "type": "Number"},
            ],
        }
    )
    client = sfmc_client(emulator)
    rows = [
        {"keys": {"Day": "2020-05-30T13:30:00Z"}, "values": {"N": 1}},
        {"keys": {"Day": "2020-05-30T07:30:00"}, "values": {"N": 2}},  # the same system time
    ]
    assert client.rowset("DAILY", rows).status_code == 200
    assert emulator.rows("DAILY") == [{"Day": "2020-05-30T07:30:00.000", "N": 2}]


def test_invalid_dates_are_still_refused(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults=SFMC_DATES)
    row = {"keys": {"Contact Key": "u1"}, "values": {"Created At": "30/05/2020"}}
    response = sfmc_client(emulator).rowset("IDENTIFY", [row])
    assert response.status_code == 400
    assert response.json()["additionalErrors"][0]["message"] == (
        "Created At: The value for column [Created At] is not a valid date."
    )


def test_date_storage_flag_and_admin_call(emulator, sfmc_client):
    args = build_parser().parse_args(["--fault-date-storage", "sfmc"])
    assert FaultConfig.from_dict(fault_settings(args)) == FaultConfig(date_storage="sfmc")
    url = emulator.url + "/_emulator/faults"
    assert requests.post(url, json={"date_storage": "sfmc"}, timeout=10).status_code == 200
    assert requests.post(url, json={"date_storage": "utc"}, timeout=10).status_code == 400
    row = {"keys": {"Contact Key": "u1"}, "values": {"Created At": "2020-05-30"}}
    sfmc_client(emulator).rowset("IDENTIFY", [row])
    assert emulator.rows("IDENTIFY")[0]["Created At"] == "2020-05-30T00:00:00.000"
