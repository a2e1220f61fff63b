"""Emulator: inspection/admin endpoints, routing errors, persistence and the Python API."""

from __future__ import annotations

import json

import pytest
import requests

from target_sfmc.emulator import DefinitionError, SfmcEmulator
from target_sfmc.emulator.schema import parse_data_extension


def admin_get(emulator, path):
    response = requests.get(emulator.url + path, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_inspection_endpoints(emulator, sfmc_client):
    client = sfmc_client(emulator)
    client.rowset("IDENTIFY", [{"keys": {"Contact Key": "u1"}, "values": {"Plan": "pro"}}])
    client.post("/contacts/v1/contacts", json={"contactKey": "u1", "attributeSets": []})
    client.post(
        "/interaction/v1/events",
        json={"ContactKey": "u1", "EventDefinitionKey": "APIEvent-1", "Data": {"A": 1}},
    )
    assert admin_get(emulator, "/_emulator/health") == {"status": "ok"}
    assert admin_get(emulator, "/_emulator/data-extensions/IDENTIFY/rows") == [
        {"Contact Key": "u1", "Plan": "pro"}
    ]
    assert [c["contactKey"] for c in admin_get(emulator, "/_emulator/contacts")] == ["u1"]
    assert [e["data"] for e in admin_get(emulator, "/_emulator/events")] == [{"A": 1}]
    log = admin_get(emulator, "/_emulator/requests")
    assert [r["endpoint"] for r in log["requests"]] == ["token", "rowset", "contacts", "event"]
    assert log["counts"] == {
        "token": {"200": 1},
        "rowset": {"200": 1},
        "contacts": {"200": 1},
        "event": {"201": 1},
    }
    assert log["requests"][1]["path"] == "/hub/v1/dataevents/key:IDENTIFY/rowset"
    assert log["requests"][1]["method"] == "POST"
    missing = requests.get(emulator.url + "/_emulator/data-extensions/NOPE/rows", timeout=10)
    assert missing.status_code == 404


def test_reset_log(emulator, sfmc_client):
    sfmc_client(emulator)
    assert emulator.request_counts() == {"token": {200: 1}}
    assert requests.post(emulator.url + "/_emulator/reset-log", timeout=10).status_code == 200
    assert emulator.request_log() == []
    assert emulator.request_counts() == {}
    sfmc_client(emulator)
    emulator.reset_log()
    assert emulator.request_counts() == {}


def test_admin_creates_data_extensions_and_event_definitions(emulator, sfmc_client):
    client = sfmc_client(emulator)
    definition = {
        "key": "PAGE_VIEWS",
        "fields": [
            {"name": "Uuid", "type": "Text", "length": 36, "primary_key": True},
            {"name": "Url", "type": "Text"},
        ],
    }
    created = requests.post(
        emulator.url + "/_emulator/data-extensions", json=definition, timeout=10
    )
    assert created.status_code == 201
    assert created.json()["key"] == "PAGE_VIEWS"
    response = client.rowset("PAGE_VIEWS", [{"keys": {"Uuid": "m1"}, "values": {"Url": "/a"}}])
    assert response.status_code == 200
    assert emulator.rows("page_views") == [{"Uuid": "m1", "Url": "/a"}]
    bad = requests.post(
        emulator.url + "/_emulator/data-extensions",
        json={"key": "X", "fields": [{"name": "A", "type": "Blob"}]},
        timeout=10,
    )
    assert bad.status_code == 400
    assert "unknown type" in bad.json()["message"]
    event = requests.post(
        emulator.url + "/_emulator/event-definitions", json={"key": "APIEvent-2"}, timeout=10
    )
    assert event.status_code == 201
    assert client.get("/interaction/v1/eventDefinitions/key:APIEvent-2").status_code == 200
    listed = admin_get(emulator, "/_emulator/data-extensions")
    assert [d["key"] for d in listed] == ["IDENTIFY", "ORDER_COMPLETED", "PAGE_VIEWS"]


def test_python_api_adds_definitions(emulator, sfmc_client):
    client = sfmc_client(emulator)
    assert emulator.issued_tokens() == [client.session.headers["Authorization"].split()[1]]
    emulator.add_data_extension({"key": "K", "fields": [{"name": "Id", "primary_key": True}]})
    emulator.add_event_definition("Later")
    assert client.rowset("K", [{"keys": {"Id": "1"}, "values": {"id": "1"}}]).status_code == 200
    assert client.get("/interaction/v1/eventDefinitions/key:Later").status_code == 200
    assert emulator.row_count("k") == 1
    with pytest.raises(KeyError):
        emulator.rows("UNKNOWN")
    with pytest.raises(KeyError):
        emulator.row_count("UNKNOWN")


def test_unknown_route_and_wrong_method(emulator, sfmc_client):
    client = sfmc_client(emulator)
    unknown = client.get("/nothing/here")
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "Service Not Found", "errorcode": 0}
    wrong = client.get("/hub/v1/dataevents/key:IDENTIFY/rowset")
    assert wrong.status_code == 405
    assert wrong.headers["Allow"] == "POST"
    assert emulator.request_counts()["rowset"] == {405: 1}
    assert emulator.request_counts()["unknown"] == {404: 1}


def test_db_file_persists_across_restarts(tmp_path, sample_data_extensions):
    db = str(tmp_path / "sfmc.sqlite")
    with SfmcEmulator(
        data_extensions=sample_data_extensions, event_definitions=["E"], db=db
    ) as first:
        token = requests.post(
            first.url + "/v2/token",
            json={
                "grant_type": "client_credentials",
                "client_id": "test-client-id",
                "client_secret": "test-client-secret",
            },
            timeout=10,
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        requests.post(
            first.url + "/hub/v1/dataevents/key:IDENTIFY/rowset",
            json=[{"keys": {"Contact Key": "u1"}, "values": {"Plan": "pro", "Logins": 2}}],
            headers=auth,
            timeout=10,
        ).raise_for_status()
        requests.post(
            first.url + "/contacts/v1/contacts", json={"contactKey": "u1"}, headers=auth, timeout=10
        ).raise_for_status()
        requests.post(
            first.url + "/interaction/v1/events",
            json={"ContactKey": "u1", "EventDefinitionKey": "E", "Data": {}},
            headers=auth,
            timeout=10,
        ).raise_for_status()
    first.close()
    # The file redefines IDENTIFY (new column); its rows are kept.
    identify = sample_data_extensions[0]
    identify["fields"].append({"name": "Tier", "type": "Text"})
    definitions = tmp_path / "des.json"
    definitions.write_text(json.dumps({"data_extensions": [identify]}))
    with SfmcEmulator.from_file(definitions, db=db) as second:
        assert second.rows("IDENTIFY") == [{"Contact Key": "u1", "Plan": "pro", "Logins": 2}]
        assert [c["contactKey"] for c in second.contacts()] == ["u1"]
        assert [e["eventDefinitionKey"] for e in second.events()] == ["E"]
        assert second.rows("ORDER_COMPLETED") == []  # kept from the database
        assert any(f.name == "Tier" for f in second.api.data_extension("IDENTIFY").de.fields)
    second.close()


def test_definition_parsing_defaults_and_errors():
    de = parse_data_extension(
        {
            "key": "D",
            "fields": [
                {"name": "K", "type": "Text", "primary_key": True, "nullable": True},
                {"name": "T", "type": "text"},
                {"name": "Amount", "type": "Decimal"},
                {"name": "E", "type": "EmailAddress"},
            ],
        }
    )
    key, text, amount, email = de.fields
    assert (key.nullable, key.length) == (False, 4000)
    assert (text.type, text.nullable) == ("Text", True)
    assert (amount.precision, amount.scale) == (18, 2)
    assert email.length == 254
    assert de.column("k") is key
    for bad in (
        {"fields": [{"name": "A"}]},
        {"key": "D", "fields": []},
        {"key": "D", "fields": [{"name": "A"}, {"name": "a"}]},
        {"key": "D", "fields": [{"name": "A", "type": "Decimal", "precision": 4, "scale": 5}]},
    ):
        with pytest.raises(DefinitionError):
            parse_data_extension(bad)
