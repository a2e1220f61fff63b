"""Emulator: token endpoints and bearer checks."""

from __future__ import annotations

import time

import requests

NOT_AUTHORIZED = {
    "documentation": "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm",
    "errorcode": 0,
    "message": "Not Authorized",
}
INVALID_CLIENT = {
    "error": "invalid_client",
    "error_description": (
        "Client authentication failed. Make sure that the client ID and client secret are valid "
        "and that the package is installed and enabled."
    ),
    "error_uri": "https://developer.salesforce.com/docs",
}


def test_token_json_success_and_rest_instance_url_is_followable(emulator, sfmc_client):
    client = sfmc_client(emulator, authenticate=False)
    response = client.fetch_token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1079
    assert "data_extensions_write" in body["scope"].split()
    assert body["rest_instance_url"] == emulator.url + "/"
    assert body["soap_instance_url"] == emulator.url + "/"
    # A client joining rest_instance_url naively (double slash) still reaches the API.
    follow = requests.get(
        body["rest_instance_url"] + "/interaction/v1/eventDefinitions/key:APIEvent-1",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert follow.status_code == 200


def test_token_form_encoded_success(emulator):
    response = requests.post(
        emulator.url + "/v2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "test-client-id",
            "client_secret": "test-client-secret",
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.json()["access_token"]


def test_token_bad_or_missing_credentials_is_invalid_client(emulator, sfmc_client):
    bad = sfmc_client(emulator, authenticate=False, client_secret="wrong").fetch_token()
    assert bad.status_code == 401
    assert bad.json() == INVALID_CLIENT
    missing = requests.post(
        emulator.url + "/v2/token", json={"grant_type": "client_credentials"}, timeout=10
    )
    assert missing.status_code == 401
    assert missing.json()["error"] == "invalid_client"


def test_token_wrong_grant_type(emulator, sfmc_client):
    response = sfmc_client(emulator, authenticate=False).fetch_token(grant_type="password")
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_token_account_id_mismatch_is_invalid_grant(emulator_factory, sfmc_client):
    emulator = emulator_factory(account_id="12345")
    client = sfmc_client(emulator, authenticate=False)
    wrong = client.fetch_token(account_id="999")
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "The account specified is not authorized for the client.",
        "error_uri": "https://developer.salesforce.com/docs",
    }
    assert client.fetch_token(account_id="12345").status_code == 200
    assert client.fetch_token(account_id=12345).status_code == 200
    assert client.fetch_token().status_code == 200  # no account_id: accepted


def test_legacy_request_token(emulator):
    ok = requests.post(
        emulator.url + "/v1/requestToken",
        json={"clientId": "test-client-id", "clientSecret": "test-client-secret"},
        timeout=10,
    )
    assert ok.status_code == 200
    assert ok.json()["expiresIn"] == 3600
    token = ok.json()["accessToken"]
    use = requests.get(
        emulator.url + "/interaction/v1/eventDefinitions/key:APIEvent-1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert use.status_code == 200
    bad = requests.post(
        emulator.url + "/v1/requestToken",
        json={"clientId": "test-client-id", "clientSecret": "nope"},
        timeout=10,
    )
    assert bad.status_code == 401
    assert bad.json() == {"message": "Unauthorized", "errorcode": 1, "documentation": ""}


def test_missing_unknown_or_malformed_bearer_is_not_authorized(emulator):
    path = emulator.url + "/hub/v1/dataevents/key:IDENTIFY/rowset"
    row = [{"keys": {"Contact Key": "a"}, "values": {"Plan": "x"}}]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        response = requests.post(path, json=row, headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.json() == NOT_AUTHORIZED
    assert emulator.rows("IDENTIFY") == []


def test_token_expires_after_ttl_and_a_new_one_works(emulator_factory, sfmc_client):
    emulator = emulator_factory(token_ttl=1)
    client = sfmc_client(emulator)
    path = "/interaction/v1/eventDefinitions/key:APIEvent-1"
    assert client.fetch_token().json()["expires_in"] == 1
    assert client.get(path).status_code == 200
    time.sleep(1.1)
    expired = client.get(path)
    assert expired.status_code == 401
    assert expired.json() == NOT_AUTHORIZED
    client.authenticate()
    assert client.get(path).status_code == 200
