"""Transport retries, auth token cache and the REST client, with requests_mock."""

from __future__ import annotations

import decimal
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from target_sfmc.auth import TokenProvider
from target_sfmc.client import SfmcClient
from target_sfmc.client_base import MAX_TOKEN_REFRESHES_PER_CALL
from target_sfmc.errors import RetriesExhaustedError, SfmcApiError
from target_sfmc.limiter import RateLimiter
from target_sfmc.settings import ClientSettings, is_loopback_url
from target_sfmc.transport import RetryPolicy, Transport

if TYPE_CHECKING:
    import requests_mock as rm

SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"
AUTH = "https://auth.sfmc.test"
REST = "https://rest.sfmc.test"
TOKEN_URL = f"{AUTH}/v2/token"
SECRET = "very-secret-client-secret-0123456789"
TOKEN = "eyJ-access-token-abcdefghijklmnop"
TOKEN_2 = "eyJ-second-token-qrstuvwxyz"
ROWSET_URL = f"{REST}/hub/v1/dataevents/key:DE1/rowset"


# Waits between retries, recorded instead of slept (backoff sleeps with time.sleep).
SLEEPS: list[float] = []


@pytest.fixture(autouse=True)
def _record_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    SLEEPS.clear()
    monkeypatch.setattr(time, "sleep", SLEEPS.append)


def fast_transport(max_attempts: int = 4) -> tuple[Transport, list[float]]:
    limiter = RateLimiter(1_000_000, 8)
    transport = Transport(
        limiter,
        retry=RetryPolicy(max_attempts=max_attempts, base_seconds=0.001),
        timeout_seconds=5,
        user_agent="target-sfmc-test",
    )
    return transport, SLEEPS


def make_client(**overrides: Any) -> tuple[SfmcClient, list[float]]:
    values: dict[str, Any] = {
        "client_id": "my-client-id",
        "client_secret": SECRET,
        "subdomain": SUBDOMAIN,
        "account_id": "5000123",
        "auth_url": AUTH,
        "rest_url": REST,
        "requests_per_second": 1_000_000,
        "max_concurrent_requests": 4,
        "retry_max_attempts": 4,
        "retry_backoff_seconds": 0.001,
        # Each client here stands alone; the shared token cache is tested in test_budget.py.
        "token_cache": False,
    }
    values.update(overrides)
    return SfmcClient(ClientSettings(**values)), SLEEPS


def token_body(value: str = TOKEN, **extra: Any) -> dict[str, Any]:
    return {"access_token": value, "expires_in": 1080, "token_type": "Bearer", **extra}


def rest_requests(mock: rm.Mocker) -> list[Any]:
    return [r for r in mock.request_history if r.url.startswith(REST)]


def token_requests(mock: rm.Mocker) -> list[Any]:
    return [r for r in mock.request_history if "token" in r.url.lower()]


# --- Transport --------------------------------------------------------------------------------


def test_429_honours_retry_after_header(requests_mock: rm.Mocker) -> None:
    transport, sleeps = fast_transport()
    requests_mock.get(
        "https://x.test/a",
        [
            {"status_code": 429, "headers": {"Retry-After": "7"}, "json": {"errorcode": 50100}},
            {"status_code": 200, "json": {"ok": True}},
        ],
    )
    response = transport.send("GET", "https://x.test/a", endpoint="a")
    assert response.status_code == 200
    assert sleeps == [7.0]
    assert transport.stats.retries == 1
    assert transport.stats.throttled == 1
    assert transport.stats.calls == 2
    assert transport.stats.by_endpoint == {"a": 2}


def test_429_honours_body_retry_after(requests_mock: rm.Mocker) -> None:
    transport, sleeps = fast_transport()
    requests_mock.get(
        "https://x.test/a",
        [
            {"status_code": 429, "json": {"errorcode": 50100, "retryAfter": 3}},
            {"status_code": 200, "json": {}},
        ],
    )
    assert transport.send("GET", "https://x.test/a", endpoint="a").status_code == 200
    assert sleeps == [3.0]


def test_503_honours_retry_after(requests_mock: rm.Mocker) -> None:
    transport, sleeps = fast_transport()
    requests_mock.get(
        "https://x.test/a",
        [
            {"status_code": 503, "headers": {"Retry-After": "2.5"}},
            {"status_code": 200, "json": {}},
        ],
    )
    assert transport.send("GET", "https://x.test/a", endpoint="a").status_code == 200
    assert sleeps == [2.5]
    assert transport.stats.throttled == 0


def test_429_without_retry_after_uses_backoff(requests_mock: rm.Mocker) -> None:
    transport, sleeps = fast_transport()
    requests_mock.get(
        "https://x.test/a",
        [{"status_code": 429, "text": "slow down"}, {"status_code": 200, "json": {}}],
    )
    assert transport.send("GET", "https://x.test/a", endpoint="a").status_code == 200
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.001


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520, 596])
def test_5xx_is_retried_then_succeeds(requests_mock: rm.Mocker, status: int) -> None:
    transport, sleeps = fast_transport()
    requests_mock.post(
        "https://x.test/a",
        [{"status_code": status}, {"status_code": status}, {"status_code": 200, "json": {}}],
    )
    response = transport.send("POST", "https://x.test/a", endpoint="a", body=b"{}")
    assert response.status_code == 200
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2
    assert all(0 <= s <= 0.002 for s in sleeps)


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.ConnectionError,
        requests.exceptions.ReadTimeout,
        requests.exceptions.ChunkedEncodingError,
        requests.exceptions.ContentDecodingError,
    ],
    ids=["connection", "timeout", "dropped-mid-answer", "garbled-answer"],
)
def test_network_errors_are_retried(requests_mock: rm.Mocker, exc: type[Exception]) -> None:
    transport, _ = fast_transport()
    requests_mock.get("https://x.test/a", [{"exc": exc}, {"status_code": 200, "json": {}}])
    assert transport.send("GET", "https://x.test/a", endpoint="a").status_code == 200


def test_attempts_are_bounded(requests_mock: rm.Mocker) -> None:
    transport, sleeps = fast_transport(max_attempts=3)
    requests_mock.get("https://x.test/a", status_code=500)
    with pytest.raises(RetriesExhaustedError, match="3 attempts"):
        transport.send("GET", "https://x.test/a", endpoint="a")
    assert requests_mock.call_count == 3
    assert len(sleeps) == 2


def test_bounded_attempts_on_connection_errors(requests_mock: rm.Mocker) -> None:
    transport, _ = fast_transport(max_attempts=2)
    requests_mock.get("https://x.test/a", exc=requests.exceptions.ConnectionError)
    with pytest.raises(RetriesExhaustedError):
        transport.send("GET", "https://x.test/a", endpoint="a")
    assert requests_mock.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409])
def test_other_4xx_are_returned_without_retry(requests_mock: rm.Mocker, status: int) -> None:
    transport, sleeps = fast_transport()
    requests_mock.get("https://x.test/a", status_code=status, json={"errorcode": 1})
    assert transport.send("GET", "https://x.test/a", endpoint="a").status_code == status
    assert requests_mock.call_count == 1
    assert sleeps == []


@given(
    base=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=60),
    attempt=st.integers(min_value=1, max_value=40),
)
def test_backoff_delay_is_bounded(base: float, cap: float, attempt: int) -> None:
    delay = RetryPolicy(max_attempts=8, base_seconds=base, cap_seconds=cap).delay(attempt)
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1)) + 1e-9


# --- Auth -------------------------------------------------------------------------------------


def test_token_request_body_carries_account_id(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    requests_mock.post(TOKEN_URL, json=token_body())
    requests_mock.get(f"{REST}/ping", json={"ok": 1})
    assert client.call("GET", "/ping", endpoint="ping") == {"ok": 1}
    (token_request,) = token_requests(requests_mock)
    assert token_request.json() == {
        "grant_type": "client_credentials",
        "client_id": "my-client-id",
        "client_secret": SECRET,
        "account_id": "5000123",
    }
    (rest,) = rest_requests(requests_mock)
    assert rest.headers["Authorization"] == f"Bearer {TOKEN}"


def test_token_request_without_account_id(requests_mock: rm.Mocker) -> None:
    client, _ = make_client(account_id=None)
    requests_mock.post(TOKEN_URL, json=token_body())
    requests_mock.get(f"{REST}/ping", json={})
    client.call("GET", "/ping", endpoint="ping")
    assert "account_id" not in token_requests(requests_mock)[0].json()


def test_default_hosts_come_from_subdomain(requests_mock: rm.Mocker) -> None:
    client, _ = make_client(auth_url=None, rest_url=None)
    requests_mock.post(
        f"https://{SUBDOMAIN}.auth.marketingcloudapis.com/v2/token", json=token_body()
    )
    requests_mock.get(f"https://{SUBDOMAIN}.rest.marketingcloudapis.com/ping", json={"a": 1})
    assert client.call("GET", "/ping", endpoint="ping") == {"a": 1}


def test_legacy_v1_is_used_without_subdomain(requests_mock: rm.Mocker) -> None:
    client, _ = make_client(subdomain=None, auth_url=None, rest_url=None)
    requests_mock.post(
        "https://auth.exacttargetapis.com/v1/requestToken",
        json={"accessToken": TOKEN, "expiresIn": 3479},
    )
    requests_mock.get("https://www.exacttargetapis.com/ping", json={"legacy": True})
    assert client.call("GET", "/ping", endpoint="ping") == {"legacy": True}
    body = requests_mock.request_history[0].json()
    assert body == {"clientId": "my-client-id", "clientSecret": SECRET}
    assert requests_mock.request_history[1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_v2_is_used_with_subdomain_even_with_auth_url(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    assert not client.settings.uses_legacy_auth
    legacy = requests_mock.post(f"{AUTH}/v1/requestToken", json={"accessToken": "x"})
    requests_mock.post(TOKEN_URL, json=token_body())
    requests_mock.get(f"{REST}/ping", json={})
    client.call("GET", "/ping", endpoint="ping")
    assert legacy.call_count == 0


def test_rest_instance_url_from_token_is_used_without_rest_url(requests_mock: rm.Mocker) -> None:
    client, _ = make_client(rest_url=None)
    requests_mock.post(TOKEN_URL, json=token_body(rest_instance_url="https://instance.rest.test/"))
    requests_mock.get("https://instance.rest.test/ping", json={"from": "instance"})
    assert client.call("GET", "/ping", endpoint="ping") == {"from": "instance"}


def test_rest_url_setting_wins_over_rest_instance_url(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    requests_mock.post(TOKEN_URL, json=token_body(rest_instance_url="https://instance.rest.test/"))
    requests_mock.get(f"{REST}/ping", json={"from": "setting"})
    assert client.call("GET", "/ping", endpoint="ping") == {"from": "setting"}


def test_token_is_cached_across_calls(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    token = requests_mock.post(TOKEN_URL, json=token_body())
    requests_mock.get(f"{REST}/ping", json={})
    for _ in range(5):
        client.call("GET", "/ping", endpoint="ping")
    assert token.call_count == 1


def test_token_request_is_retried_on_5xx(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    token = requests_mock.post(
        TOKEN_URL, [{"status_code": 500}, {"status_code": 200, "json": token_body()}]
    )
    requests_mock.get(f"{REST}/ping", json={})
    client.call("GET", "/ping", endpoint="ping")
    assert token.call_count == 2


def _provider(requests_mock: rm.Mocker, clock: list[float], expires_in: int) -> TokenProvider:
    transport, _ = fast_transport()
    requests_mock.post(
        TOKEN_URL,
        [
            {"json": {"access_token": "t1", "expires_in": expires_in}},
            {"json": {"access_token": "t2", "expires_in": expires_in}},
            {"json": {"access_token": "t3", "expires_in": expires_in}},
        ],
    )
    return TokenProvider(
        transport,
        auth_base_url=AUTH + "/",
        client_id="id",
        client_secret=SECRET,
        account_id=None,
        legacy=False,
        clock=lambda: clock[0],
    )


def test_token_is_refreshed_five_minutes_before_expiry(requests_mock: rm.Mocker) -> None:
    clock = [0.0]
    provider = _provider(requests_mock, clock, expires_in=3600)
    assert provider.get().value == "t1"
    clock[0] = 3299.0  # 301 s before expiry
    assert provider.get().value == "t1"
    clock[0] = 3301.0  # 299 s before expiry: inside the five-minute margin
    assert provider.get().value == "t2"
    clock[0] = 3301.0 + 3299.0
    assert provider.get().value == "t2"
    assert requests_mock.call_count == 2


def test_default_sfmc_token_is_refreshed_minutes_before_expiry(requests_mock: rm.Mocker) -> None:
    clock = [0.0]
    provider = _provider(requests_mock, clock, expires_in=1080)
    assert provider.get().value == "t1"
    clock[0] = 1080.0 - 330.0  # 5.5 minutes left: still cached
    assert provider.get().value == "t1"
    clock[0] = 1080.0 - 240.0  # 4 minutes left: refreshed
    assert provider.get().value == "t2"
    assert requests_mock.call_count == 2


def test_short_lived_token_is_refreshed_before_expiry(requests_mock: rm.Mocker) -> None:
    clock = [0.0]
    provider = _provider(requests_mock, clock, expires_in=60)
    assert provider.get().value == "t1"
    clock[0] = 30.0
    assert provider.get().value == "t1"
    clock[0] = 59.0
    assert provider.get().value == "t2"


def test_invalidate_only_drops_the_rejected_token(requests_mock: rm.Mocker) -> None:
    clock = [0.0]
    provider = _provider(requests_mock, clock, expires_in=1080)
    assert provider.get().value == "t1"
    provider.invalidate("some-older-token")
    assert provider.get().value == "t1"
    provider.invalidate("t1")
    assert provider.get().value == "t2"


def test_auth_failure_is_a_clear_error(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    requests_mock.post(
        TOKEN_URL,
        status_code=401,
        json={"error": "invalid_client", "error_description": "Client authentication failed."},
    )
    with pytest.raises(SfmcApiError) as info:
        client.call("GET", "/ping", endpoint="ping")
    assert info.value.status == 401
    assert info.value.error_code == "invalid_client"
    assert "Client authentication failed." in str(info.value)
    assert requests_mock.call_count == 1


def test_token_response_without_token_is_an_error(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    requests_mock.post(TOKEN_URL, json={"expires_in": 1080})
    with pytest.raises(SfmcApiError, match="no access token"):
        client.call("GET", "/ping", endpoint="ping")


# --- Client -----------------------------------------------------------------------------------


def test_401_refreshes_the_token_once_and_retries(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    token = requests_mock.post(
        TOKEN_URL, [{"json": token_body(TOKEN)}, {"json": token_body(TOKEN_2)}]
    )
    requests_mock.post(
        ROWSET_URL,
        [
            {"status_code": 401, "json": {"message": "Not Authorized"}},
            {"status_code": 200, "json": []},
        ],
    )
    client.upsert_rowset("DE1", b"[]")
    assert token.call_count == 2
    first, second = rest_requests(requests_mock)
    assert first.headers["Authorization"] == f"Bearer {TOKEN}"
    assert second.headers["Authorization"] == f"Bearer {TOKEN_2}"


def test_repeated_401_is_an_error_without_a_loop(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    token = requests_mock.post(TOKEN_URL, json=token_body(TOKEN))
    rowset = requests_mock.post(
        ROWSET_URL, status_code=401, json={"errorcode": 0, "message": "Not Authorized"}
    )
    with pytest.raises(SfmcApiError) as info:
        client.upsert_rowset("DE1", b"[]")
    assert info.value.status == 401
    # Each 401 refreshes the token once, a bounded number of times per call.
    assert token.call_count == 1 + MAX_TOKEN_REFRESHES_PER_CALL
    assert rowset.call_count == 1 + MAX_TOKEN_REFRESHES_PER_CALL


def test_400_is_not_retried_and_names_code_and_message(requests_mock: rm.Mocker) -> None:
    client, sleeps = make_client()
    requests_mock.post(TOKEN_URL, json=token_body())
    rowset = requests_mock.post(
        ROWSET_URL,
        status_code=400,
        json={"message": "Data Extension not found", "errorcode": 10000, "documentation": ""},
    )
    with pytest.raises(SfmcApiError) as info:
        client.upsert_rowset("DE1", b"[]")
    error = info.value
    assert rowset.call_count == 1
    assert sleeps == []
    assert error.status == 400
    assert error.error_code == 10000
    assert error.sfmc_message == "Data Extension not found"
    assert "10000" in str(error)
    assert "Data Extension not found" in str(error)
    assert "rowset" in str(error)
    named = error.with_context("data extension 'DE1' (stream users)")
    assert "data extension 'DE1' (stream users)" in str(named)
    assert named.error_code == 10000


def test_400_with_additional_errors_keeps_them(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    requests_mock.post(TOKEN_URL, json=token_body())
    rowset = requests_mock.post(
        ROWSET_URL,
        status_code=400,
        json={
            "message": "Unable to save rows for data extension ID 123",
            "errorcode": 10006,
            "additionalErrors": [
                {"message": "The value for column [Age] is not a valid number", "errorcode": 10001}
            ],
        },
    )
    with pytest.raises(SfmcApiError) as info:
        client.upsert_rowset("DE1", b"[]")
    assert rowset.call_count == 1
    assert info.value.error_code == 10006
    assert info.value.message_for_row == "The value for column [Age] is not a valid number"
    assert "Age" in str(info.value)


def test_bare_10006_unable_to_save_rows_is_retried(requests_mock: rm.Mocker) -> None:
    client, sleeps = make_client()
    requests_mock.post(TOKEN_URL, json=token_body())
    rowset = requests_mock.post(
        ROWSET_URL,
        [
            {
                "status_code": 400,
                "json": {
                    "message": "Unable to save rows for data extension ID 1",
                    "errorcode": 10006,
                },
            },
            {
                "status_code": 400,
                "json": {
                    "message": "Unable to save rows for data extension ID 1",
                    "errorcode": 10006,
                    "additionalErrors": [],
                },
            },
            {"status_code": 200, "json": []},
        ],
    )
    client.upsert_rowset("DE1", b"[]")
    assert rowset.call_count == 3
    assert len(sleeps) == 2


def test_bare_10006_is_bounded(requests_mock: rm.Mocker) -> None:
    client, _ = make_client(retry_max_attempts=2)
    requests_mock.post(TOKEN_URL, json=token_body())
    rowset = requests_mock.post(
        ROWSET_URL,
        status_code=400,
        json={"message": "Unable to save rows for data extension ID 1", "errorcode": 10006},
    )
    # Retried a bounded number of times, then SFMC's answer is the caller's to read (the
    # sync loader then tells the refused rows apart).
    with pytest.raises(SfmcApiError) as raised:
        client.upsert_rowset("DE1", b"[]")
    assert raised.value.error_code == 10006
    assert rowset.call_count == 2


def test_rest_5xx_exhaustion_raises(requests_mock: rm.Mocker) -> None:
    client, _ = make_client(retry_max_attempts=3)
    requests_mock.post(TOKEN_URL, json=token_body())
    rowset = requests_mock.post(ROWSET_URL, status_code=500)
    with pytest.raises(RetriesExhaustedError):
        client.upsert_rowset("DE1", b"[]")
    assert rowset.call_count == 3


def test_payloads_and_paths(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    requests_mock.post(TOKEN_URL, json=token_body())
    contacts = requests_mock.post(f"{REST}/contacts/v1/contacts", json={"ok": True})
    events = requests_mock.post(f"{REST}/interaction/v1/events", status_code=201, json={})
    rowset = requests_mock.post(f"{REST}/hub/v1/dataevents/key:A%20B%2FC/rowset", json=[])
    client.create_contact("u1")
    client.fire_event("u1", "APIEvent-1", {"Price": decimal.Decimal("10.10"), "Flag": True})
    client.upsert_rowset("A B/C", b'[{"keys":{},"values":{}}]')
    assert contacts.last_request.json() == {"contactKey": "u1", "attributeSets": []}
    assert events.last_request.text == (
        '{"ContactKey":"u1","EventDefinitionKey":"APIEvent-1","Data":{"Price":10.10,"Flag":true}}'
    )
    assert rowset.call_count == 1
    assert rowset.last_request.headers["Content-Type"].startswith("application/json")


def test_empty_success_body_is_none(requests_mock: rm.Mocker) -> None:
    client, _ = make_client()
    requests_mock.post(TOKEN_URL, json=token_body())
    requests_mock.get(f"{REST}/ping", status_code=204, content=b"")
    assert client.call("GET", "/ping", endpoint="ping") is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8080", True),
        ("http://127.0.0.1", True),
        ("http://[::1]:1", True),
        ("http://localhost.evil.test", False),
        ("https://example.com", False),
        ("http://10.0.0.1", False),
    ],
)
def test_is_loopback_url(url: str, expected: bool) -> None:  # noqa: FBT001
    assert is_loopback_url(url) is expected


# --- Secrets ----------------------------------------------------------------------------------


def _assert_no_secrets(text: str) -> None:
    assert SECRET not in text
    assert TOKEN not in text
    assert TOKEN_2 not in text


def test_secrets_never_in_errors_or_logs(
    requests_mock: rm.Mocker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []

    # Token refresh on 401, then a 429 retry, then a final 400.
    client, _ = make_client(retry_max_attempts=2)
    requests_mock.post(TOKEN_URL, [{"json": token_body(TOKEN)}, {"json": token_body(TOKEN_2)}])
    requests_mock.post(
        ROWSET_URL,
        [
            {"status_code": 401, "json": {"message": "Not Authorized"}},
            {"status_code": 429, "headers": {"Retry-After": "0"}},
            {"status_code": 400, "json": {"errorcode": 10000, "message": "Bad request"}},
        ],
    )
    with pytest.raises(SfmcApiError) as api_error:
        client.upsert_rowset("DE1", b"[]")
    messages += [str(api_error.value), repr(api_error.value)]

    # Retries exhausted.
    requests_mock.post(ROWSET_URL, status_code=503)
    with pytest.raises(RetriesExhaustedError) as exhausted:
        client.upsert_rowset("DE1", b"[]")
    messages += [str(exhausted.value), repr(exhausted.value)]

    # Bad credentials.
    bad, _ = make_client()
    requests_mock.post(
        TOKEN_URL,
        status_code=401,
        json={"error": "invalid_client", "error_description": "Client authentication failed."},
    )
    with pytest.raises(SfmcApiError) as auth_error:
        bad.call("GET", "/ping", endpoint="ping")
    messages += [str(auth_error.value), repr(auth_error.value)]

    # Token endpoint down.
    down, _ = make_client(retry_max_attempts=2)
    requests_mock.post(TOKEN_URL, exc=requests.exceptions.ConnectionError("boom"))
    with pytest.raises(RetriesExhaustedError) as down_error:
        down.call("GET", "/ping", endpoint="ping")
    messages += [str(down_error.value), repr(down_error.value)]

    assert caplog.records, "expected some log output"
    _assert_no_secrets(caplog.text)
    for record in caplog.records:
        _assert_no_secrets(record.getMessage())
        _assert_no_secrets(json.dumps([str(a) for a in (record.args or ())]))
    for message in messages:
        _assert_no_secrets(message)
