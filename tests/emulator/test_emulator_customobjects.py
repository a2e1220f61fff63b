"""Emulator: the REST Data Extension API (search, read, fields, create, add fields)."""

from __future__ import annotations

import copy

import pytest
import requests

from target_sfmc.emulator import SfmcEmulator
from target_sfmc.emulator.cli import build_parser, fault_settings
from target_sfmc.emulator.samples import SAMPLE_DATA_EXTENSIONS

ROOT_FOLDER = 7023
USERS = {
    "name": "Website Users",
    "key": "USERS_KEY",
    "description": "Created by a pipeline",
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "isPrimaryKey": True},
        {"name": "Email", "type": "EmailAddress", "isNullable": True},
        {"name": "Tier", "type": "Text", "ordinal": 3},
        {"name": "Score", "type": "Decimal", "length": 10, "scale": 3, "ordinal": 2},
        {"name": "Joined", "type": "Date"},
    ],
}


def create(client, body):
    return client.post("/data/v1/customobjects", json=body)


def search(client, text=None, **params):
    if text is not None:
        params["$search"] = text
    return client.get("/data/v1/customobjects", params=params)


def refusal(status, message, errorcode):
    return status, {"message": message, "errorcode": errorcode, "documentation": ""}


def test_create_answers_201_with_the_data_extension(emulator, sfmc_client):
    client = sfmc_client(emulator)
    response = create(client, USERS)
    assert response.status_code == 201
    body = response.json()
    de = emulator.api.data_extension("USERS_KEY").de
    assert {k: body[k] for k in ("id", "key", "name", "description", "categoryId")} == {
        "id": de.id,
        "key": "USERS_KEY",
        "name": "Website Users",
        "description": "Created by a pipeline",
        "categoryId": ROOT_FOLDER,
    }
    assert (body["isSendable"], body["rowCount"], body["fieldCount"]) == (False, 0, 5)
    # Fields in ordinal order; a Text field without a length gets 50.
    assert [(f["name"], f["type"], f.get("length"), f["ordinal"]) for f in body["fields"]] == [
        ("Contact Key", "Text", 254, 0),
        ("Email", "EmailAddress", 254, 1),
        ("Score", "Decimal", 10, 2),
        ("Tier", "Text", 50, 3),
        ("Joined", "Date", None, 4),
    ]
    assert body["fields"][0]["isNullable"] is False
    assert body["fields"][2]["scale"] == 3
    assert client.get(f"/data/v1/customobjects/{de.id}").json() == body


def test_created_data_extension_behaves_like_one_from_the_file(emulator, sfmc_client):
    client = sfmc_client(emulator)
    de_id = create(client, USERS).json()["id"]
    row = {"keys": {"Contact Key": "u1"}, "values": {"Tier": "gold", "Score": "1.5"}}
    assert client.rowset("USERS_KEY", [row]).status_code == 200
    too_long = {"keys": {"Contact Key": "u2"}, "values": {"Tier": "x" * 51}}
    assert client.rowset("USERS_KEY", [too_long]).json()["errorcode"] == 10006
    request_id = client.async_upsert("USERS_KEY", [{"Contact Key": "u3", "Joined": "2024-01-02"}])
    assert client.wait_for_job(request_id.json()["requestId"])["resultStatus"] == "OK"
    assert emulator.rows("USERS_KEY") == [
        {"Contact Key": "u1", "Score": "1.5", "Tier": "gold"},
        {"Contact Key": "u3", "Joined": "2024-01-02"},
    ]
    assert client.get(f"/data/v1/customobjects/{de_id}").json()["rowCount"] == 2
    shown = requests.get(emulator.url + "/_emulator/data-extensions/users_key", timeout=10)
    assert shown.status_code == 200
    assert shown.json()["name"] == "Website Users"
    assert [f["name"] for f in shown.json()["fields"]][:2] == ["Contact Key", "Email"]
    listed = requests.get(emulator.url + "/_emulator/data-extensions", timeout=10).json()
    assert "USERS_KEY" in [d["key"] for d in listed]


def test_created_data_extension_survives_a_restart(tmp_path, sfmc_client):
    db = str(tmp_path / "sfmc.sqlite")
    with SfmcEmulator(db=db) as first:
        client = sfmc_client(first)
        assert create(client, USERS).status_code == 201
        client.rowset("USERS_KEY", [{"keys": {"Contact Key": "u1"}, "values": {"Tier": "a"}}])
    first.close()
    with SfmcEmulator(db=db) as second:
        client = sfmc_client(second)
        found = search(client, "Website").json()
        assert [item["key"] for item in found["items"]] == ["USERS_KEY"]
        assert second.rows("USERS_KEY") == [{"Contact Key": "u1", "Tier": "a"}]
        assert create(client, USERS).status_code == 409
    second.close()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"key": "users_key", "name": "Other"},
            refusal(
                409, "A data extension with the external key 'users_key' already exists.", 30004
            ),
        ),
        (
            {"key": "OTHER", "name": "website users"},
            refusal(409, "A data extension named 'website users' already exists.", 30004),
        ),
    ],
)
def test_create_refuses_a_key_or_name_in_use(emulator, sfmc_client, change, expected):
    client = sfmc_client(emulator)
    assert create(client, USERS).status_code == 201
    response = create(client, {**copy.deepcopy(USERS), **change})
    assert (response.status_code, response.json()) == expected


def _with_field(**field):
    body = copy.deepcopy(USERS)
    body["key"] = body["name"] = "NEW"
    body["fields"].append({"name": "Extra", **field})
    return body


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            _with_field(type="Text", length=4001),
            refusal(400, "Field 'Extra': length must be between 1 and 4000.", 10005),
        ),
        (
            _with_field(type="Text", length=0),
            refusal(400, "Field 'Extra': length must be between 1 and 4000.", 10005),
        ),
        (_with_field(type="Blob"), refusal(400, "fieldType is invalid", 10005)),
        (_with_field(type="email"), refusal(400, "fieldType is invalid", 10005)),
        (
            _with_field(type="Text", length=10, isPrimaryKey=True, isNullable=True),
            refusal(400, "Field 'Extra': a primary key field cannot be nullable.", 10005),
        ),
        (
            _with_field(type="Text", isPrimaryKey=True),
            refusal(
                400, "A text field with no length specified cannot be used as a primary key", 10005
            ),
        ),
        (
            _with_field(type="Decimal", length=30, scale=2),
            refusal(400, "Field 'Extra': length must be between 1 and 29.", 10005),
        ),
        (
            _with_field(name="email", type="Text"),
            refusal(409, "Field 'email' already exists.", 30004),
        ),
        (
            {**_with_field(type="Text"), "categoryId": 89344},
            refusal(400, "A valid categoryId must be provided", 10005),
        ),
        ({"name": "NEW", "fields": []}, refusal(400, "At least one field is required.", 10002)),
        ({"key": "NEW", "fields": USERS["fields"]}, refusal(400, "Name is required.", 10002)),
        (
            {
                **_with_field(type="Text"),
                "isSendable": True,
                "sendableCustomObjectField": "Contact Key",
                "sendableSubscriberField": {"name": "_SubscriberKey"},
            },
            refusal(400, "Invalid Message Format", 10004),
        ),
    ],
)
def test_create_refuses_what_sfmc_refuses(emulator, sfmc_client, body, expected):
    response = create(sfmc_client(emulator), body)
    assert (response.status_code, response.json()) == expected
    assert emulator.api.data_extension("NEW") is None


def test_create_without_a_key_a_folder_and_sendable(emulator, sfmc_client):
    client = sfmc_client(emulator)
    body = {k: v for k, v in copy.deepcopy(USERS).items() if k != "key"}
    body.update(
        {
            "categoryId": 7040,
            "isSendable": True,
            "sendableCustomObjectField": "Contact Key",
            "sendableSubscriberField": "Subscriber Key",
        }
    )
    created = create(client, body).json()
    assert len(created["key"]) == 36
    assert created["categoryId"] == 7040
    assert (
        created["isSendable"],
        created["sendableCustomObjectField"],
        created["sendableSubscriberField"],
    ) == (True, "Contact Key", "Subscriber Key")
    assert emulator.api.data_extension(created["key"]).de.is_sendable


def test_search_is_required(emulator, sfmc_client):
    client = sfmc_client(emulator)
    for text in (None, "", "*", "%"):
        response = search(client, text)
        assert (response.status_code, response.json()) == refusal(
            400, "$search is a required parameter", 10005
        )


def test_search_by_key_and_name(emulator, sfmc_client):
    client = sfmc_client(emulator)
    de_id = create(client, USERS).json()["id"]
    client.rowset("USERS_KEY", [{"keys": {"Contact Key": "u1"}, "values": {"Tier": "a"}}])
    by_key = search(client, "users_k").json()
    assert (by_key["count"], by_key["page"]) == (1, 1)
    item = by_key["items"][0]
    assert {k: item[k] for k in ("id", "key", "name", "categoryId", "rowCount")} == {
        "id": de_id,
        "key": "USERS_KEY",
        "name": "Website Users",
        "categoryId": ROOT_FOLDER,
        "rowCount": 1,
    }
    assert "fields" not in item
    assert [i["key"] for i in search(client, "WEBSITE").json()["items"]] == ["USERS_KEY"]
    assert search(client, "nothing like it").json() == {
        "count": 0,
        "page": 1,
        "pageSize": 50,
        "items": [],
    }
    # Sample DEs are named by their keys: IDENTIFY, ORDER_COMPLETED.
    page = search(client, "E", **{"$page": 2, "$pageSize": 1}).json()
    assert (page["count"], page["pageSize"], [i["key"] for i in page["items"]]) == (
        3,
        1,
        ["ORDER_COMPLETED"],
    )


def test_search_matching_names_only(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"search_matches_name_only": True})
    client = sfmc_client(emulator)
    create(client, USERS)
    assert search(client, "USERS_KEY").json()["count"] == 0
    assert search(client, "Website Users").json()["count"] == 1
    args = build_parser().parse_args(["--fault-search-matches-name-only"])
    assert fault_settings(args) == {"search_matches_name_only": True}


def test_read_needs_the_object_id(emulator, sfmc_client):
    client = sfmc_client(emulator)
    for ref in ("IDENTIFY", "key:IDENTIFY"):
        response = client.get(f"/data/v1/customobjects/{ref}")
        assert (response.status_code, response.json()) == refusal(400, "Id is invalid", 10001)


def add_fields(client, de_id, fields):
    return client.post(f"/data/v1/customobjectsasync/{de_id}/fields", json={"fields": fields})


def test_add_fields(emulator, sfmc_client):
    client = sfmc_client(emulator)
    de_id = create(client, USERS).json()["id"]
    client.rowset("USERS_KEY", [{"keys": {"Contact Key": "u1"}, "values": {"Tier": "a"}}])
    response = add_fields(
        client,
        de_id,
        [
            {"name": "Loyalty Points", "type": "Number"},
            {
                "name": "Region",
                "type": "Text",
                "length": 20,
                "isNullable": False,
                "defaultValue": "EU",
            },
        ],
    )
    assert response.status_code == 202
    assert response.json()["resultMessages"] == []
    assert response.json()["requestId"]
    fields = client.get(f"/data/v1/customobjects/{de_id}/fields").json()["fields"]
    assert [(f["name"], f["ordinal"]) for f in fields][-2:] == [
        ("Loyalty Points", 5),
        ("Region", 6),
    ]
    assert fields[-1]["defaultValue"] == "EU"
    # The existing row got the default; a new row without the column gets it too.
    new = {"keys": {"Contact Key": "u2"}, "values": {"Loyalty Points": 7}}
    assert client.rowset("USERS_KEY", [new]).status_code == 200
    assert emulator.rows("USERS_KEY") == [
        {"Contact Key": "u1", "Tier": "a", "Region": "EU"},
        {"Contact Key": "u2", "Loyalty Points": 7, "Region": "EU"},
    ]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ({"name": "TIER", "type": "Text"}, refusal(409, "Field 'TIER' already exists.", 30004)),
        (
            {"name": "Id2", "type": "Text", "length": 10, "isPrimaryKey": True},
            refusal(
                400,
                "Field 'Id2': a primary key field can only be added to an empty data extension.",
                10005,
            ),
        ),
        (
            {"name": "Must", "type": "Text", "isNullable": False},
            refusal(
                400,
                "Field 'Must': a field that does not allow null needs a default value when the "
                "data extension holds rows.",
                10005,
            ),
        ),
        ({"name": "Bad", "type": "Picture"}, refusal(400, "fieldType is invalid", 10005)),
        ({"name": "Bad", "type": "Number", "defaultValue": "many"}, (400, None)),
    ],
)
def test_add_fields_refuses_what_sfmc_refuses(emulator, sfmc_client, field, expected):
    client = sfmc_client(emulator)
    de_id = create(client, USERS).json()["id"]
    client.rowset("USERS_KEY", [{"keys": {"Contact Key": "u1"}, "values": {"Tier": "a"}}])
    response = add_fields(client, de_id, [field])
    assert response.status_code == expected[0]
    if expected[1] is not None:
        assert response.json() == expected[1]
    assert len(emulator.api.data_extension("USERS_KEY").de.fields) == 5


def test_add_fields_to_an_empty_data_extension_may_add_keys(emulator, sfmc_client):
    client = sfmc_client(emulator)
    de_id = create(client, USERS).json()["id"]
    response = add_fields(
        client, de_id, [{"name": "Site", "type": "Text", "length": 10, "isPrimaryKey": True}]
    )
    assert response.status_code == 202
    de = emulator.api.data_extension("USERS_KEY").de
    assert [f.name for f in de.primary_keys] == ["Contact Key", "Site"]


def test_sample_data_extensions_are_readable_through_the_api(emulator, sfmc_client):
    client = sfmc_client(emulator)
    item = search(client, "IDENTIFY").json()["items"][0]
    read = client.get(f"/data/v1/customobjects/{item['id']}").json()
    assert [f["name"] for f in read["fields"]] == [
        f["name"] for f in SAMPLE_DATA_EXTENSIONS[0]["fields"]
    ]


def test_rowset_reads_page_through_every_row_once(emulator, sfmc_client):
    client = sfmc_client(emulator)
    rows = [{"keys": {"Contact Key": f"u{i:02}"}, "values": {"Logins": i}} for i in range(23)]
    for start in range(0, 23, 10):
        assert client.rowset("IDENTIFY", rows[start : start + 10]).status_code == 200
    seen, page = [], 1
    while True:
        body = client.get(
            "/data/v1/customobjectdata/key/IDENTIFY/rowset", params={"$page": page, "$pageSize": 5}
        ).json()
        assert (body["page"], body["pageSize"], body["count"]) == (page, 5, 23)
        seen.extend(item["keys"]["contact key"] for item in body["items"])
        if "next" not in body["links"]:
            break
        assert body["links"]["next"].endswith(f"$page={page + 1}")
        page += 1
    assert page == 5
    assert seen == [f"u{i:02}" for i in range(23)]
