"""Emulator: Contacts API, Journey events (single and batch) and the read endpoints."""

from __future__ import annotations

import pytest
import requests

from target_sfmc.emulator.cli import build_parser, fault_settings


def test_contacts_are_created_once(emulator, sfmc_client):
    client = sfmc_client(emulator)
    first = client.post("/contacts/v1/contacts", json={"contactKey": "u1", "attributeSets": []})
    assert first.status_code == 200
    body = first.json()
    assert body["operationStatus"] == "OK"
    assert body["rowsAffected"] == 1
    assert body["contactKey"] == "u1"
    assert body["isNewContactKey"] is True
    assert body["hasErrors"] is False
    assert body["resultMessages"] == []
    again = client.post("/contacts/v1/contacts", json={"contactKey": "u1", "attributeSets": []})
    assert again.json()["isNewContactKey"] is False
    assert again.json()["contactId"] == body["contactId"]
    assert [c["contactKey"] for c in emulator.contacts()] == ["u1"]


@pytest.mark.parametrize("body", [{"attributeSets": []}, {"contactKey": "", "attributeSets": []}])
def test_contacts_require_a_contact_key(emulator, sfmc_client, body):
    response = sfmc_client(emulator).post("/contacts/v1/contacts", json=body)
    assert response.status_code == 400
    assert response.json()["errorcode"] == 10002
    assert emulator.contacts() == []


@pytest.mark.parametrize(
    "body",
    [
        {"ContactKey": "u1", "EventDefinitionKey": "APIEvent-1", "Data": {"Plan": "pro"}},
        {"contactKey": "u1", "eventDefinitionKey": "APIEvent-1", "data": {"Plan": "pro"}},
    ],
)
def test_event_is_recorded_with_case_insensitive_properties(emulator, sfmc_client, body):
    response = sfmc_client(emulator).post("/interaction/v1/events", json=body)
    assert response.status_code == 201
    instance_id = response.json()["eventInstanceId"]
    assert emulator.events() == [
        {
            "contactKey": "u1",
            "eventDefinitionKey": "APIEvent-1",
            "data": {"Plan": "pro"},
            "eventInstanceId": instance_id,
            "created_at": emulator.events()[0]["created_at"],
        }
    ]


def test_event_with_unknown_definition_key(emulator, sfmc_client):
    response = sfmc_client(emulator).post(
        "/interaction/v1/events",
        json={"ContactKey": "u1", "EventDefinitionKey": "Nope", "Data": {}},
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": "Event definition key 'Nope' was not found.",
        "errorcode": 30003,
        "documentation": "",
    }
    assert emulator.events() == []


def test_event_for_inactive_contact(emulator_factory, sfmc_client):
    emulator = emulator_factory(inactive_contacts=["sleepy"])
    response = sfmc_client(emulator).post(
        "/interaction/v1/events",
        json={"ContactKey": "sleepy", "EventDefinitionKey": "APIEvent-1", "Data": {}},
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": "Contact 'sleepy' is not active.",
        "errorcode": 30001,
        "documentation": "",
    }
    assert emulator.events() == []


def test_event_requires_contact_key(emulator, sfmc_client):
    response = sfmc_client(emulator).post(
        "/interaction/v1/events", json={"EventDefinitionKey": "APIEvent-1", "Data": {}}
    )
    assert response.status_code == 400
    assert response.json()["errorcode"] == 10002


def test_async_events_report_each_member_in_order(emulator_factory, sfmc_client):
    emulator = emulator_factory(inactive_contacts=["sleepy"])
    client = sfmc_client(emulator)
    response = client.post(
        "/interaction/v1/async/events",
        json={
            "eventDefinitionKey": "apievent-1",
            "members": [
                {"contactKey": "a", "data": {"X": 1}},
                {"contactKey": "sleepy", "data": {}},
                {"data": {}},
                {"ContactKey": "b"},
            ],
        },
    )
    assert response.status_code == 202
    body = response.json()
    assert body["count"] == 4
    assert body["notQueuedCount"] == 2
    members = body["members"]
    assert [m["contactKey"] for m in members] == ["a", "sleepy", None, "b"]
    assert "eventInstanceId" in members[0]
    assert "eventInstanceId" in members[3]
    assert members[1]["errorcode"] == 30001
    assert members[1]["message"] == "Contact 'sleepy' is not active."
    assert members[2]["errorcode"] == 10002
    events = emulator.events()
    assert [(e["contactKey"], e["eventDefinitionKey"], e["data"]) for e in events] == [
        ("a", "APIEvent-1", {"X": 1}),
        ("b", "APIEvent-1", {}),
    ]
    assert [e["eventInstanceId"] for e in events] == [
        members[0]["eventInstanceId"],
        members[3]["eventInstanceId"],
    ]


def test_async_events_limits_and_unknown_definition(emulator, sfmc_client):
    client = sfmc_client(emulator)
    too_many = client.post(
        "/interaction/v1/async/events",
        json={"eventDefinitionKey": "APIEvent-1", "members": [{"contactKey": "a"}] * 101},
    )
    assert too_many.status_code == 400
    assert too_many.json() == {
        "message": "Interaction Count Limit Exceeded",
        "errorcode": 10000,
        "documentation": "",
    }
    unknown = client.post(
        "/interaction/v1/async/events",
        json={"eventDefinitionKey": "Nope", "members": [{"contactKey": "a"}]},
    )
    assert unknown.status_code == 400
    assert unknown.json()["errorcode"] == 30003
    assert emulator.events() == []


def test_customobjectdata_rowset_read(emulator, sfmc_client):
    client = sfmc_client(emulator)
    rows = [
        {"keys": {"Contact Key": f"u{i}"}, "values": {"Plan": "pro", "Logins": i}} for i in range(3)
    ]
    client.rowset("IDENTIFY", rows)
    page = client.get(
        "/data/v1/customobjectdata/key/IDENTIFY/rowset", params={"$page": 2, "$pageSize": 2}
    )
    assert page.status_code == 200
    body = page.json()
    assert body["customObjectKey"] == "IDENTIFY"
    assert (body["page"], body["pageSize"], body["count"]) == (2, 2, 3)
    assert body["items"] == [
        {"keys": {"contact key": "u2"}, "values": {"plan": "pro", "logins": 2}}
    ]
    assert "self" in body["links"]
    missing = client.get("/data/v1/customobjectdata/key/NOPE/rowset")
    assert missing.status_code == 404
    assert missing.json() == {
        "message": "Data Extension not found",
        "errorcode": 30003,
        "documentation": "",
    }


def test_event_definition_read(emulator, sfmc_client):
    client = sfmc_client(emulator)
    found = client.get("/interaction/v1/eventDefinitions/key:APIEvent-1")
    assert found.status_code == 200
    body = found.json()
    assert (body["key"], body["type"], body["status"]) == ("APIEvent-1", "APIEvent", "Active")
    assert body["id"]
    missing = client.get("/interaction/v1/eventDefinitions/key:Nope")
    assert missing.status_code == 404
    assert missing.json()["errorcode"] == 30003


EMAIL_SET = {
    "name": "Email Addresses",
    "items": [
        {
            "values": [
                {"name": "Email Address", "value": "u1@example.com"},
                {"name": "HTML Enabled", "value": True},
            ]
        }
    ],
}


def test_contacts_with_empty_attribute_sets_are_accepted_by_default(emulator, sfmc_client):
    response = sfmc_client(emulator).post(
        "/contacts/v1/contacts", json={"contactKey": "u1", "attributeSets": []}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "attribute_sets",
    [[], None, [{"name": "Email Demographics", "items": []}], ["Email Addresses"]],
)
def test_contacts_mode_requiring_attribute_sets_refuses_creation(
    emulator_factory, sfmc_client, attribute_sets
):
    emulator = emulator_factory(faults={"contacts_require_attribute_sets": True})
    body = {"contactKey": "u1"}
    if attribute_sets is not None:
        body["attributeSets"] = attribute_sets
    response = sfmc_client(emulator).post("/contacts/v1/contacts", json=body)
    assert response.status_code == 400
    answer = response.json()
    assert (answer["operationStatus"], answer["hasErrors"], answer["contactKey"]) == (
        "FAIL",
        True,
        "u1",
    )
    assert answer["resultMessages"] == [
        {
            "resultType": "Validation",
            "resultClass": "Error",
            "resultCode": "AttributeSetRequired",
            "message": (
                "At least one of the attribute sets Email Addresses, MobileConnect Demographics, "
                "MobilePush Demographics or LINE is required to create a contact."
            ),
        }
    ]
    assert emulator.contacts() == []


def test_contacts_mode_requiring_attribute_sets_accepts_them(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"contacts_require_attribute_sets": True})
    client = sfmc_client(emulator)
    created = client.post(
        "/contacts/v1/contacts", json={"contactKey": "u1", "attributeSets": [EMAIL_SET]}
    )
    assert created.status_code == 200
    assert created.json()["isNewContactKey"] is True
    # An existing contact is updated without attribute sets.
    again = client.post("/contacts/v1/contacts", json={"contactKey": "u1", "attributeSets": []})
    assert again.status_code == 200
    assert again.json()["isNewContactKey"] is False
    assert [c["contactKey"] for c in emulator.contacts()] == ["u1"]


def test_contacts_mode_flag_and_admin_call(emulator, sfmc_client):
    args = build_parser().parse_args(["--fault-contacts-require-attribute-sets"])
    assert fault_settings(args) == {"contacts_require_attribute_sets": True}
    url = emulator.url + "/_emulator/faults"
    requests.post(url, json={"contacts_require_attribute_sets": True}, timeout=10)
    client = sfmc_client(emulator)
    body = {"contactKey": "u2", "attributeSets": []}
    assert client.post("/contacts/v1/contacts", json=body).status_code == 400
    requests.post(url, json={}, timeout=10)
    assert client.post("/contacts/v1/contacts", json=body).status_code == 200
