"""Emulator: journeys that entry events bring contacts into, and contactexit taking them out."""

from __future__ import annotations

import json

import pytest
import requests

from target_sfmc.emulator import DefinitionError, SfmcEmulator
from target_sfmc.emulator.cli import build_parser, fault_settings
from target_sfmc.emulator.journeys import (
    DUPLICATE_REQUEST,
    INVALID_JOURNEY,
    NOT_IN_JOURNEY,
)
from target_sfmc.emulator.samples import SAMPLE_DATA_EXTENSIONS
from target_sfmc.emulator.schema import load_definition_file

EXIT = "/interaction/v1/interactions/contactexit"
JOURNEYS = [
    {"key": "WELCOME", "event_definition_key": "APIEvent-1"},
    {"key": "NURTURE", "event_definition_key": "APIEvent-1"},
    {"key": "WINBACK", "event_definition_key": "APIEvent-2"},
]


@pytest.fixture
def journeys_emulator(emulator_factory):
    return emulator_factory(
        event_definitions=["APIEvent-1", "APIEvent-2"],
        journeys=JOURNEYS,
        inactive_contacts=["sleepy"],
    )


def enter(client, contact, key="APIEvent-1"):
    response = client.post(
        "/interaction/v1/events",
        json={"ContactKey": contact, "EventDefinitionKey": key, "Data": {}},
    )
    assert response.status_code in {201, 400}, response.text
    return response


def exit_contacts(client, *pairs, **extra):
    body = [{"ContactKey": ck, "DefinitionKey": journey, **extra} for ck, journey in pairs]
    return client.post(EXIT, json=body)


def test_an_entry_event_brings_the_contact_into_every_journey_of_its_definition(
    journeys_emulator, sfmc_client
):
    client = sfmc_client(journeys_emulator)
    enter(client, "u1")
    enter(client, "u2", key="APIEvent-2")
    enter(client, "u1")  # entering again keeps one membership
    assert journeys_emulator.journey_members("WELCOME") == ["u1"]
    assert journeys_emulator.journey_members("nurture") == ["u1"]
    assert journeys_emulator.journey_members("WINBACK") == ["u2"]


def test_batch_entry_events_add_the_queued_members_only(journeys_emulator, sfmc_client):
    client = sfmc_client(journeys_emulator)
    response = client.post(
        "/interaction/v1/async/events",
        json={
            "eventDefinitionKey": "APIEvent-1",
            "members": [{"contactKey": "a"}, {"contactKey": "sleepy"}, {"contactKey": "b"}],
        },
    )
    assert response.status_code == 202
    assert journeys_emulator.journey_members("WELCOME") == ["a", "b"]


def test_a_refused_entry_event_adds_no_member(journeys_emulator, sfmc_client):
    client = sfmc_client(journeys_emulator)
    assert enter(client, "sleepy").status_code == 400
    assert journeys_emulator.journey_members("WELCOME") == []


def test_contactexit_removes_the_contact_and_answers_202_without_errors(
    journeys_emulator, sfmc_client
):
    client = sfmc_client(journeys_emulator)
    enter(client, "u1")
    enter(client, "u2")
    response = exit_contacts(client, ("u1", "WELCOME"))
    assert response.status_code == 202
    assert response.json() == {"errors": []}
    assert journeys_emulator.journey_members("WELCOME") == ["u2"]
    assert journeys_emulator.journey_members("NURTURE") == ["u1", "u2"]  # another journey
    (welcome, *_) = [j for j in journeys_emulator.journeys() if j["key"] == "WELCOME"]
    assert welcome == {
        "key": "WELCOME",
        "event_definition_key": "APIEvent-1",
        "members": ["u2"],
        "exited": ["u1"],
    }


def test_an_unknown_journey_is_reported_per_contact(journeys_emulator, sfmc_client):
    client = sfmc_client(journeys_emulator)
    enter(client, "u1")
    response = exit_contacts(client, ("u1", "NOPE"), ("u1", "WELCOME"))
    assert response.status_code == 202
    assert response.json() == {
        "errors": [
            {
                "contactKey": "u1",
                "definitionKey": "NOPE",
                "status": [{"version": 1, "message": INVALID_JOURNEY}],
            }
        ]
    }
    assert journeys_emulator.journey_members("WELCOME") == []


def test_a_contact_not_in_the_journey_is_accepted_quietly_unless_the_mode_says(
    journeys_emulator, sfmc_client
):
    client = sfmc_client(journeys_emulator)
    response = exit_contacts(client, ("ghost", "WELCOME"))
    assert response.status_code == 202
    assert response.json() == {"errors": []}
    journeys_emulator.set_faults(contactexit_reports_absent=True)
    response = exit_contacts(client, ("ghost", "WELCOME"))
    assert response.json()["errors"] == [
        {
            "contactKey": "ghost",
            "definitionKey": "WELCOME",
            "status": [{"version": 1, "message": NOT_IN_JOURNEY}],
        }
    ]


def test_the_same_contact_twice_in_one_request_is_a_duplicate(journeys_emulator, sfmc_client):
    client = sfmc_client(journeys_emulator)
    enter(client, "u1")
    response = exit_contacts(client, ("u1", "WELCOME"), ("u1", "welcome"))
    assert [e["status"][0]["message"] for e in response.json()["errors"]] == [DUPLICATE_REQUEST]


def test_versions_limit_the_exit(journeys_emulator, sfmc_client):
    client = sfmc_client(journeys_emulator)
    enter(client, "u1")
    assert exit_contacts(client, ("u1", "WELCOME"), Versions=[2]).json() == {"errors": []}
    assert journeys_emulator.journey_members("WELCOME") == ["u1"]
    exit_contacts(client, ("u1", "WELCOME"), Versions=[1, 2])
    assert journeys_emulator.journey_members("WELCOME") == []


def test_request_level_refusals(journeys_emulator, sfmc_client):
    client = sfmc_client(journeys_emulator)
    too_many = exit_contacts(client, *[(f"c{i}", "WELCOME") for i in range(51)])
    assert too_many.status_code == 400
    assert too_many.json()["errorcode"] == 10005
    assert exit_contacts(client, *[(f"c{i}", "WELCOME") for i in range(50)]).status_code == 202
    assert client.post(EXIT, json={"ContactKey": "u1"}).status_code == 400
    assert client.post(EXIT, data=b"not json").status_code == 400
    assert client.post(EXIT, json=[]).status_code == 400
    missing_key = client.post(EXIT, json=[{"DefinitionKey": "WELCOME"}]).json()
    assert missing_key["errors"][0]["status"][0]["message"].endswith("ContactKey is required.")
    anonymous = requests.post(journeys_emulator.url + EXIT, json=[], timeout=10)
    assert anonymous.status_code == 401


def test_admin_lists_and_creates_journeys(journeys_emulator, sfmc_client):
    url = journeys_emulator.url + "/_emulator/journeys"
    created = requests.post(
        url, json={"key": "LATE", "event_definition_key": "apievent-2"}, timeout=10
    )
    assert created.status_code == 201
    assert created.json() == {"key": "LATE", "event_definition_key": "APIEvent-2"}
    unknown = requests.post(url, json={"key": "X", "event_definition_key": "NOPE"}, timeout=10)
    assert unknown.status_code == 400
    assert "does not exist" in unknown.json()["message"]
    assert requests.post(url, json=["x"], timeout=10).status_code == 400
    enter(sfmc_client(journeys_emulator), "u9", key="APIEvent-2")
    listed = {j["key"]: j for j in requests.get(url, timeout=10).json()}
    assert listed["LATE"]["members"] == ["u9"]
    assert listed["WINBACK"]["members"] == ["u9"]
    assert set(listed) == {"LATE", "NURTURE", "WELCOME", "WINBACK"}


def test_definition_file_journeys_and_persistence(tmp_path, sfmc_client):
    path = tmp_path / "defs.json"
    path.write_text(
        json.dumps(
            {
                "data_extensions": SAMPLE_DATA_EXTENSIONS,
                "event_definitions": ["APIEvent-1"],
                "journeys": [{"key": "WELCOME", "event_definition_key": "APIEvent-1"}],
            }
        )
    )
    assert load_definition_file(path).journeys == [
        {"key": "WELCOME", "event_definition_key": "APIEvent-1"}
    ]
    db = str(tmp_path / "emu.db")
    with SfmcEmulator.from_file(path, db=db) as first:
        enter(sfmc_client(first), "u1")
    first.close()
    with SfmcEmulator(db=db) as second:
        assert second.journey_members("WELCOME") == ["u1"]
    second.close()


@pytest.mark.parametrize(
    "journeys",
    [
        [{"key": "J"}],
        [{"key": "J", "event_definition_key": "APIEvent-1", "extra": 1}],
        ["J"],
        {"key": "J"},
    ],
)
def test_malformed_journeys_are_refused(tmp_path, journeys):
    path = tmp_path / "defs.json"
    path.write_text(json.dumps({"data_extensions": [], "journeys": journeys}))
    with pytest.raises(DefinitionError):
        load_definition_file(path)


def test_a_journey_needs_a_known_definition():
    with pytest.raises(DefinitionError, match="does not exist"):
        SfmcEmulator(journeys=[{"key": "J", "event_definition_key": "NOPE"}])


def test_cli_switch_sets_the_mode():
    args = build_parser().parse_args(["--fault-contactexit-reports-absent"])
    assert fault_settings(args) == {"contactexit_reports_absent": True}
