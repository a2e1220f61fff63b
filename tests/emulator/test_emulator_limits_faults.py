"""Emulator: rate limiting and fault injection."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from target_sfmc.emulator import FaultConfig
from target_sfmc.emulator.ratelimit import SlidingWindowLimiter
from target_sfmc.emulator.rows import DEADLOCK_MESSAGE

DOCS = "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm"
RATE_LIMITED = {
    "message": "Rate limit exceeded",
    "errorcode": 50100,
    "retryAfter": 1,
    "documentation": DOCS,
}
DEFINITION_PATH = "/interaction/v1/eventDefinitions/key:APIEvent-1"


def test_rate_limit_answers_429_with_retry_after(emulator_factory, sfmc_client):
    emulator = emulator_factory(rate_limit=2)
    client = sfmc_client(emulator, authenticate=False)
    token = client.fetch_token()  # the token call counts too
    assert token.status_code == 200
    client.session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    responses = [client.get(DEFINITION_PATH) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 429, 429]
    limited = responses[1]
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == RATE_LIMITED
    log = emulator.request_log()
    assert [(e["endpoint"], e["status"]) for e in log] == [
        ("token", 200),
        ("event_definition_get", 200),
        ("event_definition_get", 429),
        ("event_definition_get", 429),
    ]
    assert all(isinstance(e["time"], float) for e in log)
    assert emulator.request_counts()["event_definition_get"] == {200: 1, 429: 2}


def test_sliding_window_counts_only_admitted_requests():
    limiter = SlidingWindowLimiter(2)
    assert limiter.allow(10.0)
    assert limiter.allow(10.5)
    assert not limiter.allow(10.9)  # would be the 3rd within [9.9, 10.9]
    assert not limiter.allow(10.95)
    assert limiter.allow(11.01)  # 10.0 left the window; the rejected ones never counted
    assert not limiter.allow(11.4)
    assert limiter.allow(11.6)
    assert SlidingWindowLimiter(None).allow(0.0)


@pytest.mark.parametrize(
    ("fault", "status", "body", "retry_after"),
    [
        ("error_500", 500, {"message": "Internal Server Error", "documentation": ""}, None),
        (
            "error_503",
            503,
            {
                "message": "Service Unavailable",
                "errorcode": 50300,
                "retryAfter": 1,
                "documentation": DOCS,
            },
            "1",
        ),
        ("error_429", 429, RATE_LIMITED, "1"),
    ],
)
def test_error_faults(emulator_factory, sfmc_client, fault, status, body, retry_after):
    emulator = emulator_factory(faults={fault: 1.0})
    client = sfmc_client(emulator)  # token endpoint is not faulted by default
    response = client.rowset("IDENTIFY", [{"keys": {"Contact Key": "u1"}, "values": {"Plan": "x"}}])
    assert response.status_code == status
    assert response.json() == body
    assert response.headers.get("Retry-After") == retry_after
    assert emulator.rows("IDENTIFY") == []


def test_token_endpoint_faulted_only_when_asked(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"error_503": 1.0, "fault_token_endpoint": True})
    client = sfmc_client(emulator, authenticate=False)
    assert client.fetch_token().status_code == 503


def test_dropped_connections_apply_the_write_or_not(emulator_factory, sfmc_client):
    emulator = emulator_factory()
    client = sfmc_client(emulator)
    emulator.set_faults(drop_connection=1.0, seed=7)
    for i in range(16):
        with pytest.raises(requests.ConnectionError):
            client.rowset("IDENTIFY", [{"keys": {"Contact Key": f"u{i}"}, "values": {"Plan": "x"}}])
    applied = len(emulator.rows("IDENTIFY"))
    assert 0 < applied < 16  # both outcomes happen (fixed by the seed)
    assert emulator.request_counts()["rowset"] == {0: 16}
    # Same seed, same decisions.
    emulator.set_faults(drop_connection=1.0, seed=7)
    for i in range(16):
        with pytest.raises(requests.ConnectionError):
            client.rowset("IDENTIFY", [{"keys": {"Contact Key": f"v{i}"}, "values": {"Plan": "x"}}])
    assert len(emulator.rows("IDENTIFY")) == 2 * applied
    emulator.set_faults()
    assert client.get(DEFINITION_PATH).status_code == 200


def test_seeded_faults_are_reproducible(emulator_factory, sfmc_client):
    emulator = emulator_factory()
    client = sfmc_client(emulator)

    def statuses():
        emulator.set_faults(error_500=0.3, error_503=0.3, seed=42)
        return [client.get(DEFINITION_PATH).status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert {200, 500, 503} <= set(first)


def test_latency_is_added_and_requests_are_served_concurrently(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"latency_ms": 400})
    client = sfmc_client(emulator)
    started = time.monotonic()
    assert client.get(DEFINITION_PATH).status_code == 200
    assert time.monotonic() - started >= 0.4
    token = client.session.headers["Authorization"]
    statuses: list[int] = []
    finished: list[float] = []

    def call():
        response = requests.get(
            client.url(DEFINITION_PATH), headers={"Authorization": token}, timeout=10
        )
        statuses.append(response.status_code)
        finished.append(time.time())

    emulator.reset_log()
    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    # Served concurrently: every request arrived before the first answer was sent back
    # (an ordering check, not a duration threshold).
    arrivals = [entry["time"] for entry in emulator.request_log()]
    assert len(arrivals) == 4
    assert max(arrivals) < min(finished)


def test_early_token_expiry(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"token_expiry_s": 1})
    client = sfmc_client(emulator)
    assert client.fetch_token().json()["expires_in"] == 1079
    assert client.get(DEFINITION_PATH).status_code == 200
    time.sleep(1.1)
    assert client.get(DEFINITION_PATH).status_code == 401


def test_async_job_error_applies_nothing(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"async_error": 1.0})
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}, {"Contact Key": "u2"}])
    request_id = request_id.json()["requestId"]
    status = client.wait_for_job(request_id)
    assert status["requestStatus"] == "Error"
    assert status["hasErrors"] is True
    results = client.results(request_id)
    assert results["count"] == 2
    assert all(item["status"] == "Error" for item in results["items"])
    assert emulator.rows("IDENTIFY") == []


def test_async_deadlocked_rows_are_not_applied(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"async_deadlock": 1.0})
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
    status = client.wait_for_job(request_id)
    assert (status["requestStatus"], status["hasErrors"]) == ("Complete", True)
    assert client.results(request_id)["items"] == [
        {"errorCode": 2, "message": DEADLOCK_MESSAGE, "status": "Error"}
    ]
    assert DEADLOCK_MESSAGE.endswith("Rerun the transaction.")
    assert emulator.rows("IDENTIFY") == []


def test_async_deadlocks_are_reproducible_with_a_seed(emulator_factory, sfmc_client):
    emulator = emulator_factory()
    client = sfmc_client(emulator)
    items = [{"Contact Key": f"u{i}"} for i in range(40)]

    def pattern():
        emulator.set_faults(async_deadlock=0.5, seed=3)
        request_id = client.async_upsert("IDENTIFY", items).json()["requestId"]
        client.wait_for_job(request_id)
        return [i["status"] for i in client.results(request_id, **{"$pageSize": 100})["items"]]

    first = pattern()
    assert first == pattern()
    assert {"OK", "Error"} == set(first)


def test_faults_replaced_through_admin_call_and_never_hit_admin(emulator_factory, sfmc_client):
    emulator = emulator_factory()
    client = sfmc_client(emulator)
    admin = requests.post(emulator.url + "/_emulator/faults", json={"error_500": 1.0}, timeout=10)
    assert admin.status_code == 200
    assert admin.json()["error_500"] == 1.0
    assert emulator.fault_config == FaultConfig(error_500=1.0)
    assert client.get(DEFINITION_PATH).status_code == 500
    assert requests.get(emulator.url + "/_emulator/health", timeout=10).status_code == 200
    bad = requests.post(emulator.url + "/_emulator/faults", json={"error_500": 2}, timeout=10)
    assert bad.status_code == 400
    unknown = requests.post(emulator.url + "/_emulator/faults", json={"boom": 1}, timeout=10)
    assert unknown.status_code == 400
    requests.post(emulator.url + "/_emulator/faults", json={}, timeout=10)
    assert client.get(DEFINITION_PATH).status_code == 200
    assert all(not e["path"].startswith("/_emulator") for e in emulator.request_log())


def test_fault_config_validation():
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultConfig.from_dict({"error_500": 1.5})
    with pytest.raises(ValueError, match="Unknown fault"):
        FaultConfig.from_dict({"error_999": 0.1})
    assert FaultConfig.from_dict({"seed": 5, "latency_ms": 10}).to_dict()["latency_ms"] == 10
