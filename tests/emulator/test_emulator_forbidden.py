"""The ``forbidden_endpoints`` mode: an installed package without a permission gets 403."""

from __future__ import annotations

import requests

from target_sfmc.emulator.cli import build_parser, fault_settings

INSUFFICIENT = {"message": "Insufficient Privileges", "errorcode": 20002, "documentation": ""}


def test_forbidden_endpoints_answer_403_and_others_work(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"forbidden_endpoints": ["customobjects_search"]})
    client = sfmc_client(emulator)
    search = client.get("/data/v1/customobjects?$search=IDENTIFY")
    assert (search.status_code, search.json()) == (403, INSUFFICIENT)
    assert client.get("/interaction/v1/eventDefinitions/key:nope").status_code == 404
    assert emulator.request_counts()["customobjects_search"] == {403: 1}


def test_a_bad_token_is_still_401_on_a_forbidden_endpoint(emulator_factory):
    emulator = emulator_factory(faults={"forbidden_endpoints": ["customobjects_search"]})
    answer = requests.get(
        emulator.url + "/data/v1/customobjects?$search=X",
        headers={"Authorization": "Bearer nope"},
        timeout=10,
    )
    assert answer.status_code == 401


def test_forbidden_endpoints_from_the_cli_and_admin_api(emulator):
    args = build_parser().parse_args(
        ["--fault-forbidden-endpoint", "soap", "--fault-forbidden-endpoint", "contacts"]
    )
    assert fault_settings(args) == {"forbidden_endpoints": ["soap", "contacts"]}
    url = emulator.url + "/_emulator/faults"
    changed = requests.patch(url, json={"forbidden_endpoints": ["event"]}, timeout=10)
    assert changed.status_code == 200
    assert requests.get(url, timeout=10).json()["forbidden_endpoints"] == ["event"]
    assert requests.patch(url, json={"forbidden_endpoints": "event"}, timeout=10).status_code == 400
