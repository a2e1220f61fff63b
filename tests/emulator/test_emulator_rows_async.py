"""Emulator: asynchronous DE row API (submit, status, results)."""

from __future__ import annotations

import re
import time

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
OK_UPSERT = {"message": "Upserted DataExtensionObject", "status": "OK"}


def test_async_upsert_is_pending_until_processed(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=60_000)
    client = sfmc_client(emulator)
    submitted = client.async_upsert("IDENTIFY", [{"Contact Key": "u1", "Plan": "pro"}])
    assert submitted.status_code == 202
    request_id = submitted.json()["requestId"]
    assert UUID_RE.match(request_id)
    assert submitted.json()["resultMessages"] == []
    status = client.get(f"/data/v1/async/{request_id}/status").json()
    assert status["status"]["requestStatus"] == "Pending"
    assert status["status"]["requestId"] == request_id
    assert status["requestId"] != request_id
    assert "completionDateTime" not in status["status"]
    assert client.results(request_id)["items"] == []
    assert emulator.rows("IDENTIFY") == []


def test_async_upsert_completes_with_per_row_results_in_order(emulator, sfmc_client):
    client = sfmc_client(emulator)
    items = [
        {"Contact Key": "u1", "Email": "u1@example.com"},
        {"contact key": "u2", "email": "not-an-email"},
        {"Email": "u3@example.com"},
        {"Contact Key": "u4", "Logins": "7", "Unknown Column": 1},
        {"Nothing": "known"},
    ]
    request_id = client.async_upsert("IDENTIFY", items).json()["requestId"]
    status = client.wait_for_job(request_id)
    assert status["requestStatus"] == "Complete"
    assert status["hasErrors"] is True
    assert status["resultStatus"] == "Has Errors"
    for stamp in ("callDateTime", "pickupDateTime", "completionDateTime"):
        assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d+$", status[stamp])
    results = client.results(request_id)
    assert results["count"] == 5
    assert results["page"] == 1
    assert results["pageSize"] == 50
    assert results["requestId"] == request_id
    items_out = results["items"]
    assert items_out[0] == OK_UPSERT
    assert items_out[1] == {
        "errorCode": 2,
        "errors": [
            {
                "errorMessage": (
                    "Email: The value for column [Email] is not a valid email address. "
                    "Parse error [InvalidEmailAddress]"
                ),
                "name": "email",
                "errorCode": 70001,
            }
        ],
        "message": (
            "Email: The value for column [Email] is not a valid email address. "
            "Parse error [InvalidEmailAddress]"
        ),
        "status": "Error",
    }
    assert items_out[2] == {
        "errorCode": 2,
        "errors": [
            {
                "errorMessage": "Column [contact key] does not allow null value.",
                "name": "contact key",
                "errorCode": 70001,
            }
        ],
        "message": "Cannot locate the existing record. Required keys are missing.",
        "status": "Error",
    }
    assert items_out[3] == OK_UPSERT
    assert items_out[4]["status"] == "Error"
    assert items_out[4]["errors"][0]["errorMessage"] == (
        "At least one existing field is required in the values property"
    )
    # Rows are independent: the good ones after a bad one were applied.
    assert emulator.rows("IDENTIFY") == [
        {"Contact Key": "u1", "Email": "u1@example.com"},
        {"Contact Key": "u4", "Logins": "7"},
    ]


def test_async_all_good_job_reports_ok(emulator, sfmc_client):
    client = sfmc_client(emulator)
    request_id = client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}]).json()["requestId"]
    status = client.wait_for_job(request_id)
    assert (status["requestStatus"], status["hasErrors"], status["resultStatus"]) == (
        "Complete",
        False,
        "OK",
    )


def test_async_upsert_keeps_unprovided_columns(emulator, sfmc_client):
    client = sfmc_client(emulator)
    first = client.async_upsert("IDENTIFY", [{"Contact Key": "u1", "Plan": "a", "Logins": 1}])
    client.wait_for_job(first.json()["requestId"])
    second = client.async_upsert("IDENTIFY", [{"CONTACT KEY": "U1", "Plan": "b"}])
    client.wait_for_job(second.json()["requestId"])
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Plan": "b", "Logins": 1}]


def test_async_results_paging(emulator, sfmc_client):
    client = sfmc_client(emulator)
    items = [{"Contact Key": f"u{i}", "Logins": "x" if i % 3 == 0 else i} for i in range(7)]
    request_id = client.async_upsert("IDENTIFY", items).json()["requestId"]
    client.wait_for_job(request_id)
    pages = [client.results(request_id, **{"$page": p, "$pageSize": 3}) for p in (1, 2, 3, 4)]
    assert [p["count"] for p in pages] == [7, 7, 7, 7]
    assert [p["pageSize"] for p in pages] == [3, 3, 3, 3]
    assert [len(p["items"]) for p in pages] == [3, 3, 1, 0]
    statuses = [item["status"] for p in pages for item in p["items"]]
    assert statuses == ["Error", "OK", "OK", "Error", "OK", "OK", "Error"]
    big = client.results(request_id, **{"$pageSize": 32000})
    assert len(big["items"]) == 7


def test_async_insert_rejects_duplicate_primary_keys(emulator, sfmc_client):
    client = sfmc_client(emulator)
    client.rowset("IDENTIFY", [{"keys": {"Contact Key": "existing"}, "values": {"Plan": "a"}}])
    items = [
        {"Contact Key": "existing", "Plan": "b"},
        {"Contact Key": "new", "Plan": "c"},
        {"Contact Key": "NEW", "Plan": "d"},
    ]
    submitted = client.async_insert("IDENTIFY", items)
    assert submitted.status_code == 202
    request_id = submitted.json()["requestId"]
    client.wait_for_job(request_id)
    results = client.results(request_id)["items"]
    assert results[1] == {"message": "Inserted DataExtensionObject", "status": "OK"}
    for index, value in ((0, "existing"), (2, "NEW")):
        assert results[index]["status"] == "Error"
        assert results[index]["errorCode"] == "UnexpectedError"
        message = results[index]["message"]
        assert message.startswith("Violation of PRIMARY KEY constraint 'PK_")
        assert f"The duplicate key value is ({value}).\r\nThe statement has been terminated." in (
            message
        )
    assert emulator.rows("IDENTIFY") == [
        {"Contact Key": "existing", "Plan": "a"},
        {"Contact Key": "new", "Plan": "c"},
    ]


def test_async_unknown_data_extension_key(emulator, sfmc_client):
    response = sfmc_client(emulator).async_upsert("NOPE", [{"Contact Key": "u1"}])
    assert response.status_code == 400
    body = response.json()
    assert UUID_RE.match(body["requestId"])
    assert body["resultMessages"] == [
        {
            "resultType": "Operational",
            "resultClass": "Error",
            "resultCode": "CustomObjectNotFound",
            "message": (
                "Failed to resolve the Custom Object from the provided ObjectReferenceIdentifier "
                "[Id: , Key: NOPE]."
            ),
        }
    ]


def test_async_more_than_32000_items_is_rejected(emulator, sfmc_client):
    client = sfmc_client(emulator)
    response = client.async_upsert("IDENTIFY", [{"Contact Key": "u"}] * 32001)
    assert response.status_code == 400
    assert response.json() == {
        "message": "The maximum number of items is 32000.",
        "errorcode": 10005,
        "documentation": "",
    }


def test_async_malformed_body_is_rejected(emulator, sfmc_client):
    client = sfmc_client(emulator)
    for body in ([{"Contact Key": "u"}], {"items": "x"}, {"items": [1]}):
        response = client.put("/data/v1/async/dataextensions/key:IDENTIFY/rows", json=body)
        assert response.status_code == 400
        assert response.json()["errorcode"] == 10004
    empty = client.async_upsert("IDENTIFY", [])
    assert empty.status_code == 400
    assert empty.json()["errorcode"] == 10002


def test_async_unknown_request_id(emulator, sfmc_client):
    client = sfmc_client(emulator)
    for suffix in ("status", "results"):
        response = client.get(f"/data/v1/async/unknown-id/{suffix}")
        assert response.status_code == 200
        body = response.json()
        assert "status" not in body
        assert body["resultMessages"] == [
            {
                "resultType": "Operational",
                "resultClass": "Error",
                "resultCode": "AsyncRequestStatusNotFound",
                "message": (
                    "Unable to locate an Async Request Status Record for the provided RequestId: "
                    "unknown-id."
                ),
            }
        ]


def test_async_jobs_are_applied_in_submission_order(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=100)
    client = sfmc_client(emulator)
    first = client.async_upsert("IDENTIFY", [{"Contact Key": "u1", "Plan": "first"}])
    second = client.async_upsert("IDENTIFY", [{"Contact Key": "u1", "Plan": "second"}])
    # Asking about the later job first still applies the earlier one before it.
    client.wait_for_job(second.json()["requestId"])
    client.wait_for_job(first.json()["requestId"])
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u1", "Plan": "second"}]


def test_async_jobs_complete_in_the_background(emulator, sfmc_client):
    client = sfmc_client(emulator)
    client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}])
    de_id = emulator.api.data_extension("IDENTIFY").de.id
    deadline = time.monotonic() + 5
    # Read the store directly: no status call and no rows() call processes the job here.
    while not emulator.api.store.list_rows(de_id) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emulator.api.store.list_rows(de_id) == [{"Contact Key": "u1"}]
