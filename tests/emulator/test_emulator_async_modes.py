"""Emulator: untidy real-SFMC behaviours of the async DE API, switched on as modes."""

from __future__ import annotations

import time

import pytest
import requests

from target_sfmc.emulator import FaultConfig
from target_sfmc.emulator.cli import build_parser, fault_settings

ROWS = 60
OK_UPSERT = {"message": "Upserted DataExtensionObject", "status": "OK"}


def _job_with_known_outcomes(client, rows=ROWS):
    """Submit rows whose result statuses tell their positions apart; return (id, statuses)."""
    items = [{"Contact Key": f"u{i}", "Logins": "x" if i % 7 == 0 else i} for i in range(rows)]
    request_id = client.async_upsert("IDENTIFY", items).json()["requestId"]
    client.wait_for_job(request_id)
    expected = ["Error" if i % 7 == 0 else "OK" for i in range(rows)]
    return request_id, expected


def _statuses(page):
    return [item["status"] for item in page["items"]]


def _page(client, request_id, **params):
    body = client.results(request_id, **params)
    return body["page"], body["pageSize"], body["count"], _statuses(body)


def test_results_paging_honours_both_spellings_by_default(emulator, sfmc_client):
    client = sfmc_client(emulator)
    request_id, expected = _job_with_known_outcomes(client)
    assert _page(client, request_id) == (1, 50, ROWS, expected[:50])
    assert _page(client, request_id, page=2) == (2, 50, ROWS, expected[50:])
    assert _page(client, request_id, page=3, pageSize=7) == (3, 7, ROWS, expected[14:21])
    assert _page(client, request_id, **{"$page": 2, "$pageSize": 25}) == (
        2,
        25,
        ROWS,
        expected[25:50],
    )


def test_results_paging_ignored_serves_page_one_of_50(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"results_paging": "ignored"})
    client = sfmc_client(emulator)
    request_id, expected = _job_with_known_outcomes(client)
    first = (1, 50, ROWS, expected[:50])
    for params in ({}, {"page": 2}, {"$page": 2, "$pageSize": 100}, {"page": 2, "pageSize": 10}):
        assert _page(client, request_id, **params) == first, params
    # Not validated either: a parameter that is ignored cannot be wrong.
    assert _page(client, request_id, **{"$page": "x"}) == first


def test_results_paging_plain_only(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"results_paging": "plain_only"})
    client = sfmc_client(emulator)
    request_id, expected = _job_with_known_outcomes(client)
    assert _page(client, request_id, page=2) == (2, 50, ROWS, expected[50:])
    assert _page(client, request_id, page=2, pageSize=20) == (2, 20, ROWS, expected[20:40])
    assert _page(client, request_id, **{"$page": 2, "$pageSize": 20}) == (
        1,
        50,
        ROWS,
        expected[:50],
    )


def test_results_paging_dollar_only(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"results_paging": "dollar_only"})
    client = sfmc_client(emulator)
    request_id, expected = _job_with_known_outcomes(client)
    assert _page(client, request_id, **{"$page": 2, "$pageSize": 20}) == (
        2,
        20,
        ROWS,
        expected[20:40],
    )
    assert _page(client, request_id, page=2, pageSize=20) == (1, 50, ROWS, expected[:50])


def test_results_page_cap_serves_smaller_pages_than_asked(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"results_page_cap": 20})
    client = sfmc_client(emulator)
    request_id, expected = _job_with_known_outcomes(client)
    assert _page(client, request_id, **{"$pageSize": 1000}) == (1, 20, ROWS, expected[:20])
    assert _page(client, request_id, **{"$page": 3, "$pageSize": 1000}) == (
        3,
        20,
        ROWS,
        expected[40:60],
    )
    assert _page(client, request_id, **{"$pageSize": 5}) == (1, 5, ROWS, expected[:5])


def test_paging_modes_through_the_admin_call(emulator, sfmc_client):
    client = sfmc_client(emulator)
    request_id, expected = _job_with_known_outcomes(client)
    url = emulator.url + "/_emulator/faults"
    answer = requests.post(
        url, json={"results_paging": "ignored", "results_page_cap": 10}, timeout=10
    )
    assert answer.status_code == 200
    assert (answer.json()["results_paging"], answer.json()["results_page_cap"]) == ("ignored", 10)
    assert _page(client, request_id, page=3) == (1, 10, ROWS, expected[:10])
    for bad in ({"results_paging": "sometimes"}, {"results_page_cap": 0}):
        assert requests.post(url, json=bad, timeout=10).status_code == 400
    requests.post(url, json={}, timeout=10)
    assert _page(client, request_id, page=2) == (2, 50, ROWS, expected[50:])


def test_paging_mode_flags():
    args = build_parser().parse_args(
        ["--fault-results-paging", "plain_only", "--fault-results-page-cap", "25"]
    )
    assert FaultConfig.from_dict(fault_settings(args)) == FaultConfig(
        results_paging="plain_only", results_page_cap=25
    )
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fault-results-paging", "never"])


def test_accepted_submission_has_no_result_messages_by_default(emulator, sfmc_client):
    submitted = sfmc_client(emulator).async_upsert("IDENTIFY", [{"Contact Key": "u1"}])
    assert submitted.status_code == 202
    assert submitted.json()["resultMessages"] == []


def test_accepted_submission_with_informational_messages(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"async_accept_messages": True})
    client = sfmc_client(emulator)
    submitted = client.async_upsert("IDENTIFY", [{"Contact Key": "u1", "Plan": "pro"}])
    assert submitted.status_code == 202
    body = submitted.json()
    assert body["requestId"]
    messages = body["resultMessages"]
    assert [m["resultClass"] for m in messages] == ["Information", "Warning"]
    for message in messages:
        assert set(message) == {"resultType", "resultClass", "resultCode", "message"}
        assert message["message"]
    # The submission was accepted: the job completes and every row lands.
    status = client.wait_for_job(body["requestId"])
    assert (status["requestStatus"], status["resultStatus"]) == ("Complete", "OK")
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Plan": "pro"}]
    # A refused submission is still refused with an Error message.
    refused = client.async_upsert("NOPE", [{"Contact Key": "u1"}])
    assert refused.status_code == 400
    assert [m["resultClass"] for m in refused.json()["resultMessages"]] == ["Error"]


def test_accept_messages_mode_flag_and_admin_call(emulator, sfmc_client):
    args = build_parser().parse_args(["--fault-async-accept-messages"])
    assert fault_settings(args) == {"async_accept_messages": True}
    url = emulator.url + "/_emulator/faults"
    assert requests.post(url, json={"async_accept_messages": True}, timeout=10).status_code == 200
    client = sfmc_client(emulator)
    submitted = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}])
    assert len(submitted.json()["resultMessages"]) == 2
    assert requests.post(url, json={"async_accept_messages": "yes"}, timeout=10).status_code == 400


def _status(client, request_id):
    response = client.get(f"/data/v1/async/{request_id}/status")
    assert response.status_code == 200
    return response.json()


def _state(client, request_id):
    body = _status(client, request_id)
    return body["status"]["requestStatus"] if "status" in body else None


def test_status_answers_at_once_without_processing_the_job(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=0)
    emulator.api.jobs.stop()  # nobody works on jobs now: only a status call could
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
    for _ in range(3):
        status = _status(client, request_id)["status"]
        assert status["requestStatus"] == "Pending"
        assert "pickupDateTime" not in status
        assert "completionDateTime" not in status
    assert client.results(request_id)["items"] == []
    assert emulator.api.store.list_rows(emulator.api.data_extension("IDENTIFY").de.id) == []


def test_blocking_status_mode_processes_due_jobs_first(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=0, faults={"async_status_blocks": True})
    emulator.api.jobs.stop()
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
    status = _status(client, request_id)["status"]
    assert (status["requestStatus"], status["resultStatus"]) == ("Complete", "OK")
    assert emulator.api.store.list_rows(emulator.api.data_extension("IDENTIFY").de.id) == [
        {"Contact Key": "u1"}
    ]


def test_status_reports_executing_while_the_job_works(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=0)
    client = sfmc_client(emulator)
    with emulator.api.store.lock:  # the worker picks the job up, then waits for the store
        request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
        deadline = time.monotonic() + 10
        while _state(client, request_id) == "Pending" and time.monotonic() < deadline:
            time.sleep(0.01)
        status = _status(client, request_id)["status"]
        assert status["requestStatus"] == "Executing"
        assert "pickupDateTime" in status
        assert "completionDateTime" not in status
        assert (status["hasErrors"], status["resultStatus"]) == (False, "OK")
        assert client.results(request_id)["items"] == []
    assert client.wait_for_job(request_id)["requestStatus"] == "Complete"
    assert client.results(request_id)["items"] == [OK_UPSERT]


def test_status_missing_before_pickup_mode(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=0, faults={"async_status_missing_polls": 2})
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
    for _ in range(2):
        body = _status(client, request_id)
        assert set(body) == {"requestId", "resultMessages"}
        assert body["requestId"] != request_id
        assert body["resultMessages"] == []
    assert client.wait_for_job(request_id)["requestStatus"] == "Complete"
    # Counted per job: a new job starts without a status object again.
    other = client.async_upsert("IDENTIFY", [{"Contact Key": "u2"}]).json()["requestId"]
    assert "status" not in _status(client, other)


def test_pending_and_executing_modes_lag_behind_the_job(emulator_factory, sfmc_client):
    emulator = emulator_factory(
        async_delay_ms=0, faults={"async_pending_polls": 2, "async_executing_polls": 1}
    )
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1"}]  # the job is done
    answers = [_status(client, request_id)["status"] for _ in range(5)]
    assert [a["requestStatus"] for a in answers] == [
        "Pending",
        "Pending",
        "Executing",
        "Complete",
        "Complete",
    ]
    assert [("pickupDateTime" in a, "completionDateTime" in a) for a in answers] == [
        (False, False),
        (False, False),
        (True, False),
        (True, True),
        (True, True),
    ]


def test_error_that_turns_complete_mode(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=0, faults={"async_transient_error_polls": 2})
    client = sfmc_client(emulator)
    items = [{"Contact Key": "u1"}, {"Contact Key": "u2"}]
    request_id = client.async_upsert("IDENTIFY", items).json()["requestId"]
    states = []
    deadline = time.monotonic() + 10
    while not states or states[-1][0] != "Complete":
        assert time.monotonic() < deadline, states
        status = _status(client, request_id)["status"]
        states.append((status["requestStatus"], status["hasErrors"], status["resultStatus"]))
    finished = [s for s in states if s[0] in {"Error", "Complete"}]
    assert finished == [
        ("Error", True, "Has Errors"),
        ("Error", True, "Has Errors"),
        ("Complete", False, "OK"),
    ]
    assert client.results(request_id)["items"] == [OK_UPSERT, OK_UPSERT]
    assert [r["Contact Key"] for r in emulator.rows("IDENTIFY")] == ["u1", "u2"]


def test_a_real_job_error_stays_an_error(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"async_error": 1.0, "async_transient_error_polls": 1})
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
    assert client.wait_for_job(request_id)["requestStatus"] == "Error"
    assert [_state(client, request_id) for _ in range(3)] == ["Error"] * 3
    assert emulator.rows("IDENTIFY") == []


def test_status_mode_flags():
    args = build_parser().parse_args(
        [
            "--fault-async-status-missing-polls",
            "1",
            "--fault-async-pending-polls",
            "2",
            "--fault-async-executing-polls",
            "3",
            "--fault-async-transient-error-polls",
            "4",
            "--fault-async-status-blocks",
        ]
    )
    assert FaultConfig.from_dict(fault_settings(args)) == FaultConfig(
        async_status_missing_polls=1,
        async_pending_polls=2,
        async_executing_polls=3,
        async_transient_error_polls=4,
        async_status_blocks=True,
    )
    with pytest.raises(ValueError, match="whole number"):
        FaultConfig.from_dict({"async_pending_polls": -1})


BARE_10006_KEYS = {"bare_10006_keys": ["Poison"]}


def _bare_10006(emulator):
    de_id = emulator.api.data_extension("IDENTIFY").de.id
    return {
        "message": f"Unable to save rows for data extension ID {de_id}",
        "errorcode": 10006,
        "documentation": "",
    }


def test_named_row_always_gets_a_bare_10006_on_the_rowset(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults=BARE_10006_KEYS)
    client = sfmc_client(emulator)
    rows = [
        {"keys": {"Contact Key": "u1"}, "values": {"Plan": "a"}},
        {"keys": {"Contact Key": "poison "}, "values": {"Plan": "b"}},  # Text keys fold
        {"keys": {"Contact Key": "u3"}, "values": {"Plan": "c"}},
    ]
    for _ in range(3):  # it never goes away
        response = client.rowset("IDENTIFY", rows)
        assert response.status_code == 400
        assert response.json() == _bare_10006(emulator)
        assert "additionalErrors" not in response.json()
    # Rows before the named one were saved; the named row and those after it were not.
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Plan": "a"}]
    # Alone it fails the same way; without it the rest goes in.
    assert client.rowset("IDENTIFY", rows[1:2]).json() == _bare_10006(emulator)
    assert client.rowset("IDENTIFY", rows[2:]).status_code == 200
    put = client.put(
        "/hub/v1/dataevents/key:IDENTIFY/rows/Contact Key:Poison", json={"values": {"Plan": "x"}}
    )
    assert (put.status_code, put.json()) == (400, _bare_10006(emulator))
    assert [r["Contact Key"] for r in emulator.rows("IDENTIFY")] == ["u1", "u3"]


def test_named_row_fails_in_async_too(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults=BARE_10006_KEYS)
    client = sfmc_client(emulator)
    for items in (
        [{"Contact Key": "u1", "Plan": "a"}, {"Contact Key": "POISON"}, {"Contact Key": "u3"}],
        # not a clean body: another spelling of the key column
        [{"contact key": "u1"}, {"contact key": "Poison", "Plan": "b"}, {"contact key": "u3"}],
    ):
        request_id = client.async_upsert("IDENTIFY", items).json()["requestId"]
        status = client.wait_for_job(request_id)
        assert (status["requestStatus"], status["resultStatus"]) == ("Complete", "Has Errors")
        results = client.results(request_id)["items"]
        assert results[0] == results[2] == OK_UPSERT
        assert results[1] == {
            "errorCode": 2,
            "message": _bare_10006(emulator)["message"],
            "status": "Error",
        }
    assert [r["Contact Key"] for r in emulator.rows("IDENTIFY")] == ["u1", "u3"]


def test_composite_keys_match_on_any_key_value(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"bare_10006_keys": ["o-2"]})
    client = sfmc_client(emulator)
    rows = [
        {"keys": {"Contact Key": "u1", "Order Id": "o-1"}, "values": {"Total": 1}},
        {"keys": {"Contact Key": "u1", "Order Id": "o-2"}, "values": {"Total": 2}},
    ]
    assert client.rowset("ORDER_COMPLETED", rows).json()["errorcode"] == 10006
    assert [r["Order Id"] for r in emulator.rows("ORDER_COMPLETED")] == ["o-1"]


def test_bare_10006_flag_and_admin_call(emulator, sfmc_client):
    args = build_parser().parse_args(["--fault-bare-10006-key", "a", "--fault-bare-10006-key", "b"])
    assert FaultConfig.from_dict(fault_settings(args)).bare_10006_keys == ("a", "b")
    url = emulator.url + "/_emulator/faults"
    answer = requests.post(url, json={"bare_10006_keys": ["u9"]}, timeout=10)
    assert answer.json()["bare_10006_keys"] == ["u9"]
    row = [{"keys": {"Contact Key": "u9"}, "values": {"Plan": "a"}}]
    assert sfmc_client(emulator).rowset("IDENTIFY", row).json()["errorcode"] == 10006
    for bad in ({"bare_10006_keys": "u9"}, {"bare_10006_keys": [1]}):
        assert requests.post(url, json=bad, timeout=10).status_code == 400


def test_patch_changes_only_the_named_settings(emulator_factory):
    emulator = emulator_factory(faults={"error_500": 0.5, "seed": 3})
    url = emulator.url + "/_emulator/faults"
    answer = requests.patch(url, json={"results_paging": "ignored"}, timeout=10)
    assert answer.status_code == 200
    assert emulator.fault_config == FaultConfig(error_500=0.5, seed=3, results_paging="ignored")
    assert requests.patch(url, json={"results_paging": "odd"}, timeout=10).status_code == 400
    assert requests.patch(url, json=[1], timeout=10).status_code == 400
    assert emulator.fault_config.results_paging == "ignored"
    assert requests.put(url, json={}, timeout=10).status_code == 405
