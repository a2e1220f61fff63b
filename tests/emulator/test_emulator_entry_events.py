"""Emulator: journey entry events bound to a Data Extension; the reads that reveal its fields."""

from __future__ import annotations

import json
import sqlite3
import uuid

import pytest
import requests

from target_sfmc.emulator import DefinitionError, SfmcEmulator
from target_sfmc.emulator.cli import main
from target_sfmc.emulator.samples import SAMPLE_DATA_EXTENSIONS
from target_sfmc.emulator.schema import load_definition_file
from target_sfmc.emulator.store import Store

EVENT_DE = {
    "key": "EVENT_DE",
    "name": "Order Event Entry",
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254},
        {"name": "Email", "type": "EmailAddress"},
        {"name": "Order Total", "type": "Decimal", "precision": 18, "scale": 2},
        {"name": "Plan", "type": "Text", "length": 10},
        {"name": "Placed At", "type": "Date"},
    ],
}
BOUND = {"key": "APIEvent-2", "data_extension": "EVENT_DE"}


@pytest.fixture
def definitions_file(tmp_path):
    path = tmp_path / "des.json"
    path.write_text(
        json.dumps(
            {
                "data_extensions": [*SAMPLE_DATA_EXTENSIONS, EVENT_DE],
                "event_definitions": ["APIEvent-1", BOUND],
            }
        )
    )
    return path


@pytest.fixture
def bound(definitions_file):
    emulator = SfmcEmulator.from_file(definitions_file)
    emulator.start()
    yield emulator
    emulator.close()


def fire(client, data, key="APIEvent-2", contact="u1"):
    return client.post(
        "/interaction/v1/events",
        json={"ContactKey": contact, "EventDefinitionKey": key, "Data": data},
    )


def test_definition_file_accepts_keys_and_bound_objects(definitions_file):
    loaded = load_definition_file(definitions_file)
    assert loaded.event_definitions == ["APIEvent-1", BOUND]


@pytest.mark.parametrize(
    "entry",
    [
        {"key": "E"},  # fine: bound to nothing
        {"key": "", "data_extension": "EVENT_DE"},
        {"key": "E", "data_extension": 5},
        {"key": "E", "dataExtension": "EVENT_DE"},
        7,
    ],
)
def test_definition_file_rejects_malformed_event_definitions(tmp_path, entry):
    path = tmp_path / "des.json"
    path.write_text(json.dumps({"data_extensions": [], "event_definitions": [entry]}))
    if entry == {"key": "E"}:
        assert load_definition_file(path).event_definitions == [entry]
        return
    with pytest.raises(DefinitionError):
        load_definition_file(path)


def test_event_definition_bound_to_an_unknown_data_extension_is_refused():
    with pytest.raises(DefinitionError, match="NOPE"):
        SfmcEmulator(event_definitions=[{"key": "E", "data_extension": "NOPE"}])


def test_event_data_with_the_entry_fields_is_accepted_and_stored(bound, sfmc_client):
    client = sfmc_client(bound)
    data = {"email": "u1@example.com", "Order Total": 12.5, "PLAN": "pro"}
    response = fire(client, data)
    assert response.status_code == 201
    assert [(e["eventDefinitionKey"], e["data"]) for e in bound.events()] == [("APIEvent-2", data)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"Plan": "pro", "Loyalty Tier": "gold"},
            "Field 'Loyalty Tier' does not exist in data extension 'EVENT_DE'.",
        ),
        (
            {"Email": "not-an-email"},
            (
                "Email: The value for column [Email] is not a valid email address. "
                "Parse error [InvalidEmailAddress]"
            ),
        ),
        (
            {"Plan": "much too long for ten"},
            "Plan: The value for column [Plan] exceeds the column's maximum length.",
        ),
        (
            {"Placed At": "yesterday"},
            "Placed At: The value for column [Placed At] is not a valid date.",
        ),
    ],
)
def test_event_data_is_validated_against_the_entry_data_extension(
    bound, sfmc_client, data, message
):
    response = fire(sfmc_client(bound), data)
    assert response.status_code == 400
    assert response.json() == {
        "message": f"Data Validation or Conversion Error: {message}",
        "errorcode": 10000,
        "documentation": "",
    }
    assert bound.events() == []


def test_unbound_definition_takes_any_data(bound, sfmc_client):
    response = fire(sfmc_client(bound), {"Anything": {"nested": True}}, key="APIEvent-1")
    assert response.status_code == 201


def test_batch_events_refuse_members_with_fields_the_entry_lacks(bound, sfmc_client):
    response = sfmc_client(bound).post(
        "/interaction/v1/async/events",
        json={
            "eventDefinitionKey": "apievent-2",
            "members": [
                {"contactKey": "a", "data": {"Plan": "pro"}},
                {"contactKey": "b", "data": {"Plan": "pro", "Unknown": 1}},
                {"contactKey": "c"},
            ],
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["notQueuedCount"] == 1
    assert body["members"][1] == {
        "contactKey": "b",
        "errorcode": 10000,
        "message": (
            "Data Validation or Conversion Error: Field 'Unknown' does not exist in "
            "data extension 'EVENT_DE'."
        ),
    }
    assert [e["contactKey"] for e in bound.events()] == ["a", "c"]


def test_event_definition_names_its_entry_data_extension(bound, sfmc_client):
    client = sfmc_client(bound)
    body = client.get("/interaction/v1/eventDefinitions/key:apievent-2").json()
    de_id = bound.api.data_extension("EVENT_DE").de.id
    assert (body["eventDefinitionKey"], body["type"]) == ("APIEvent-2", "APIEvent")
    assert (body["dataExtensionId"], body["dataExtensionName"]) == (de_id, "Order Event Entry")
    unbound = client.get("/interaction/v1/eventDefinitions/key:APIEvent-1").json()
    assert "dataExtensionId" not in unbound


def test_entry_data_extension_fields_are_readable_by_id(bound, sfmc_client):
    client = sfmc_client(bound)
    de_id = client.get("/interaction/v1/eventDefinitions/key:APIEvent-2").json()["dataExtensionId"]
    response = client.get(f"/data/v1/customobjects/{de_id}/fields")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == de_id
    fields = body["fields"]
    assert [(f["name"], f["type"], f["ordinal"]) for f in fields] == [
        ("Contact Key", "Text", 0),
        ("Email", "EmailAddress", 1),
        ("Order Total", "Decimal", 2),
        ("Plan", "Text", 3),
        ("Placed At", "Date", 4),
    ]
    assert fields[0]["length"] == 254
    assert (fields[2]["length"], fields[2]["scale"]) == (18, 2)
    assert "length" not in fields[4]
    assert all(f["isPrimaryKey"] is False and f["isNullable"] is True for f in fields)
    assert len({f["id"] for f in fields}) == 5
    identify = client.get(
        f"/data/v1/customobjects/{bound.api.data_extension('IDENTIFY').de.id}/fields"
    )
    key_field = identify.json()["fields"][0]
    assert (key_field["name"], key_field["isPrimaryKey"], key_field["isNullable"]) == (
        "Contact Key",
        True,
        False,
    )


def test_fields_need_the_object_id(bound, sfmc_client):
    client = sfmc_client(bound)
    for ref in ("EVENT_DE", "key:EVENT_DE"):
        response = client.get(f"/data/v1/customobjects/{ref}/fields")
        assert response.status_code == 400
        assert response.json() == {
            "message": "Id is invalid",
            "errorcode": 10001,
            "documentation": "",
        }
    unknown = uuid.uuid4()
    missing = client.get(f"/data/v1/customobjects/{unknown}/fields")
    assert missing.status_code == 404
    assert missing.json()["errorcode"] == 30003


def test_admin_binds_event_definitions(emulator, sfmc_client):
    emulator.add_data_extension(EVENT_DE)
    url = emulator.url + "/_emulator/event-definitions"
    created = requests.post(url, json=BOUND, timeout=10)
    assert (created.status_code, created.json()) == (201, BOUND)
    assert (
        requests.post(url, json={"key": "X", "data_extension": "NOPE"}, timeout=10).status_code
        == 400
    )
    assert requests.get(url, timeout=10).json() == [
        {"key": "APIEvent-1", "data_extension": None},
        BOUND,
    ]
    assert fire(sfmc_client(emulator), {"Nope": 1}).status_code == 400
    emulator.add_event_definition("APIEvent-2")  # unbinds it
    assert fire(sfmc_client(emulator), {"Nope": 1}).status_code == 201


def test_database_of_an_older_emulator_opens(tmp_path):
    path = str(tmp_path / "old.sqlite")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE event_definitions (key_folded TEXT PRIMARY KEY, key TEXT NOT NULL)")
    conn.execute("INSERT INTO event_definitions VALUES ('old', 'Old')")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.event_definition("OLD") == ("Old", None)
    store.add_event_definition("New", "EVENT_DE")
    assert store.event_definition("new") == ("New", "EVENT_DE")
    store.close()


def test_cli_refuses_an_event_definition_bound_to_an_unknown_data_extension(tmp_path, capsys):
    path = tmp_path / "des.json"
    path.write_text(
        json.dumps({"data_extensions": [], "event_definitions": [BOUND]}), encoding="utf-8"
    )
    assert main(["--port", "0", "--data-extensions", str(path)]) == 2
    assert "EVENT_DE" in capsys.readouterr().err
