"""Emulator: untidy real-SFMC behaviours of the async DE API, switched on as modes."""

from __future__ import annotations

import pytest
import requests

from target_sfmc.emulator import FaultConfig
from target_sfmc.emulator.cli import build_parser, fault_settings

ROWS = 60


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
