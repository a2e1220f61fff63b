"""Deletes without a server: SOAP text, the client's SOAP call, per-key order of a batch."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import pytest

from target_sfmc import soap
from target_sfmc.client import SfmcClient
from target_sfmc.errors import SfmcApiError, TargetSfmcError
from target_sfmc.loading.deletes import (
    DeletingBatchLoad,
    delete_object,
    delete_request,
    object_statuses,
    split_deletes,
)
from target_sfmc.records import DataExtensionRow, LoadResult
from target_sfmc.settings import ClientSettings

if TYPE_CHECKING:
    import requests_mock as rm

AUTH = "https://auth.sfmc.test"
SOAP_BASE = "https://instance.soap.test/"
SOAP_URL = "https://instance.soap.test/Service.asmx"
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"
TOKEN = "eyJ-first-access-token-0123"
TOKEN_2 = "eyJ-second-access-token-4567"
SLEEPS: list[float] = []


@pytest.fixture(autouse=True)
def _record_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    SLEEPS.clear()
    monkeypatch.setattr(time, "sleep", SLEEPS.append)


def client(**overrides: Any) -> SfmcClient:
    values: dict[str, Any] = {
        "client_id": "id",
        "client_secret": "secret-value",
        "subdomain": SUBDOMAIN,
        "auth_url": AUTH,
        "requests_per_second": 1_000_000,
        "retry_max_attempts": 3,
        "retry_backoff_seconds": 0.001,
    }
    values.update(overrides)
    return SfmcClient(ClientSettings(**values))


def token(value: str = TOKEN, **extra: Any) -> dict[str, Any]:
    return {"access_token": value, "expires_in": 1080, **extra}


def fault(code: str, text: str) -> str:
    return (
        f'<soap:Envelope xmlns:soap="{soap.SOAP_ENVELOPE}"><soap:Body><soap:Fault>'
        f'<faultcode xmlns:q0="http://exacttarget.com">q0:{code}</faultcode>'
        f"<faultstring>{text}</faultstring></soap:Fault></soap:Body></soap:Envelope>"
    )


def delete_answer(*results: tuple[int, str, str, str | None], overall: str = "OK") -> str:
    parts = "".join(
        f"<Results><StatusCode>{status}</StatusCode><StatusMessage>{message}</StatusMessage>"
        f"<OrdinalID>{ordinal}</OrdinalID>"
        f"{f'<ErrorCode>{code}</ErrorCode>' if code else ''}</Results>"
        for ordinal, status, message, code in results
    )
    return (
        f'<soap:Envelope xmlns:soap="{soap.SOAP_ENVELOPE}"><soap:Body>'
        f'<DeleteResponse xmlns="{soap.PARTNER_API}">{parts}<RequestID>r</RequestID>'
        f"<OverallStatus>{overall}</OverallStatus></DeleteResponse></soap:Body></soap:Envelope>"
    )


# -- SOAP text -----------------------------------------------------------------------------


def test_delete_objects_escape_keys_and_refuse_what_xml_cannot_carry() -> None:
    text = delete_object("DE<1>", {"Contact Key": "a&b", "N": 5, "Flag": True}).decode()
    assert "<CustomerKey>DE&lt;1&gt;</CustomerKey>" in text
    assert "<Name>Contact Key</Name><Value>a&amp;b</Value>" in text
    assert "<Value>5</Value>" in text
    assert "<Value>true</Value>" in text
    with pytest.raises(ValueError, match="control characters"):
        delete_object("DE", {"Contact Key": "bell\x07"})
    request = delete_request([b"<Objects/>", b"<Objects/>"])
    assert request.startswith(f'<DeleteRequest xmlns="{soap.PARTNER_API}"><Options/>')


def test_envelope_carries_the_token_in_the_header() -> None:
    body = soap.envelope("tok<en>", "<X/>").decode()
    assert '<fueloauth xmlns="http://exacttarget.com">tok&lt;en&gt;</fueloauth>' in body
    root = ET.fromstring(body)  # noqa: S314 - our own text
    assert soap.local_name(root.tag) == "Envelope"


def test_faults_are_read_in_both_soap_versions() -> None:
    assert soap.fault_of(fault("BadContextToken", "Token Expired").encode()) == soap.SoapFault(
        "BadContextToken", "Token Expired"
    )
    soap12 = (
        f'<e:Envelope xmlns:e="{soap.SOAP12_ENVELOPE}"><e:Body><e:Fault><e:Code>'
        "<e:Value>e:Sender</e:Value></e:Code><e:Reason><e:Text>bad</e:Text></e:Reason>"
        "</e:Fault></e:Body></e:Envelope>"
    )
    found = soap.fault_of(soap12.encode())
    assert found == soap.SoapFault("Sender", "bad")
    assert found.is_final
    assert not soap.SoapFault("Server", "busy").is_final
    assert soap.fault_of(b"<html>503</html>") is None
    assert soap.fault_of(delete_answer().encode()) is None


def test_answers_with_a_dtd_are_not_read() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Envelope/>'
    with pytest.raises(soap.SoapAnswerError, match="document type"):
        soap.body_operation(evil)


def test_statuses_follow_ordinal_ids_and_report_gaps() -> None:
    answer = soap.body_operation(
        delete_answer(
            (1, "Error", "Keys Not Found", "310007"),
            (0, "OK", "Deleted", None),
            overall="Has Errors",
        ).encode()
    )
    assert object_statuses(answer, 3) == [
        (True, "Deleted", None),
        (False, "Keys Not Found", "310007"),
        None,
    ]
    refused = soap.body_operation(delete_answer(overall="Error: no access").encode())
    with pytest.raises(TargetSfmcError, match="no access"):
        object_statuses(refused, 2)


# -- the client's SOAP call -----------------------------------------------------------------


def test_soap_call_uses_the_tokens_soap_url_and_reads_the_answer(
    requests_mock: rm.Mocker,
) -> None:
    requests_mock.post(f"{AUTH}/v2/token", json=token(soap_instance_url=SOAP_BASE))
    requests_mock.post(SOAP_URL, text=delete_answer((0, "OK", "Deleted", None)))
    answer = client().soap_call("Delete", "<DeleteRequest/>", endpoint="soap_delete")
    assert soap.local_name(answer.tag) == "DeleteResponse"
    sent = requests_mock.request_history[-1]
    assert sent.headers["SOAPAction"] == "Delete"
    assert sent.headers["Content-Type"].startswith("text/xml")
    assert f'<fueloauth xmlns="http://exacttarget.com">{TOKEN}</fueloauth>' in sent.text


def test_soap_url_falls_back_to_the_subdomain(requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{AUTH}/v2/token", json=token())
    url = f"https://{SUBDOMAIN}.soap.marketingcloudapis.com/Service.asmx"
    requests_mock.post(url, text=delete_answer())
    client().soap_call("Delete", "<DeleteRequest/>", endpoint="soap_delete")
    assert requests_mock.request_history[-1].url == url


def test_an_expired_token_fault_gets_a_new_token_and_no_backoff(requests_mock: rm.Mocker) -> None:
    requests_mock.post(
        f"{AUTH}/v2/token",
        [
            {"json": token(TOKEN, soap_instance_url=SOAP_BASE)},
            {"json": token(TOKEN_2, soap_instance_url=SOAP_BASE)},
        ],
    )
    requests_mock.post(
        SOAP_URL,
        [
            {"status_code": 500, "text": fault("BadContextToken", "Token Expired")},
            {"status_code": 200, "text": delete_answer()},
        ],
    )
    client().soap_call("Delete", "<DeleteRequest/>", endpoint="soap_delete")
    soap_calls = [r for r in requests_mock.request_history if r.url == SOAP_URL]
    assert [TOKEN in r.text for r in soap_calls] == [True, False]
    assert TOKEN_2 in soap_calls[1].text
    assert SLEEPS == []


def test_server_faults_are_retried_and_request_faults_are_not(requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{AUTH}/v2/token", json=token(soap_instance_url=SOAP_BASE))
    requests_mock.post(
        SOAP_URL,
        [
            {"status_code": 500, "text": fault("Server", "Too busy")},
            {"status_code": 200, "text": delete_answer()},
        ],
    )
    sfmc = client()
    sfmc.soap_call("Delete", "<DeleteRequest/>", endpoint="soap_delete")
    assert sfmc.stats.retries == 1
    requests_mock.post(SOAP_URL, status_code=500, text=fault("Client", "Malformed envelope"))
    with pytest.raises(SfmcApiError, match="Malformed envelope") as caught:
        sfmc.soap_call("Delete", "<DeleteRequest/>", endpoint="soap_delete")
    assert caught.value.error_code == "Client"
    assert sfmc.stats.retries == 1  # no retry for the request's own fault


def test_a_token_sfmc_keeps_refusing_ends_in_one_clear_error(requests_mock: rm.Mocker) -> None:
    requests_mock.post(f"{AUTH}/v2/token", json=token(soap_instance_url=SOAP_BASE))
    requests_mock.post(SOAP_URL, status_code=500, text=fault("Security", "Login Failed"))
    with pytest.raises(SfmcApiError, match="Login Failed"):
        client().soap_call("Delete", "<DeleteRequest/>", endpoint="soap_delete")


# -- per-key order within a batch ----------------------------------------------------------


def row(key: str, *, delete: bool = False) -> DataExtensionRow:
    return DataExtensionRow("DE", {"Contact Key": key}, {"Contact Key": key}, delete=delete)


class FakeLoad:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.send_at = log, name, 2

    def send(self, key: str, rows: dict) -> None:
        self.log.append(f"{self.name} send {sorted(k for (k,) in rows)}")

    def holds(self, key: str, primary_key: tuple) -> bool:
        return False

    def finish(self, rounds: list[dict], result: LoadResult) -> None:
        sent = [sorted(k for rows in r.values() for (k,) in rows) for r in rounds]
        self.log.append(f"{self.name} finish {sent}")
        result.written += sum(len(rows) for r in rounds for rows in r.values())


class FakeLoader:
    def __init__(self, log: list[str]) -> None:
        self.log, self.opened = log, 0

    def records_per_batch(self, size: int) -> int:
        return size

    def open_batch(self) -> FakeLoad:
        self.opened += 1
        return FakeLoad(self.log, f"load{self.opened}")


class FakeDeleter:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def delete(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        self.log.append(f"delete {sorted(r.keys['Contact Key'] for r in rows)}")
        return LoadResult(deleted=len(rows))


def pending(*rows: DataExtensionRow) -> dict:
    return {r.primary_key: r for r in rows}


def test_rounds_with_deletes_wait_for_every_earlier_upsert() -> None:
    log: list[str] = []
    load = DeletingBatchLoad(FakeLoader(log), FakeDeleter(log))  # type: ignore[arg-type]
    load.send("DE", pending(row("a"), row("b")))  # upserts only: sent while reading
    load.send("DE", pending(row("c"), row("a", delete=True)))  # a delete: settle first
    result = LoadResult()
    load.finish(
        [
            {"DE": pending(row("d"))},
            {"DE": pending(row("b", delete=True), row("e"))},
            {"DE": pending(row("b"))},
        ],
        result,
    )
    assert log == [
        "load1 send ['a', 'b']",
        "load1 finish [['c']]",
        "delete ['a']",
        "load2 finish [['d'], ['e']]",
        "delete ['b']",
        "load3 finish [['b']]",
    ]
    assert (result.written, result.deleted) == (4, 2)


def test_split_keeps_upserts_by_key_and_deletes_in_order() -> None:
    upserts, deletes = split_deletes(pending(row("a"), row("b", delete=True), row("c")))
    assert list(upserts) == [("a",), ("c",)]
    assert [r.keys for r in deletes] == [{"Contact Key": "b"}]


def test_a_delete_never_merges_with_an_upsert_of_its_key() -> None:
    upsert, delete = row("a"), row("a", delete=True)
    assert not upsert.merge(delete)
    assert not delete.merge(row("a"))
    assert delete.merge(row("a", delete=True))
    assert delete.records == 2
    assert [part.delete for part in delete.split()] == [True, True]
    result = LoadResult().confirm([delete, upsert])
    assert (result.written, result.deleted, result.merged) == (1, 1, 1)


# -- the lane and deleted records ----------------------------------------------------------


def test_a_lane_that_declines_deleted_records_leaves_them_to_the_general_path() -> None:
    from target_sfmc.fastpath.lanes import compile_lane  # noqa: PLC0415

    schema = {
        "properties": {
            "user_id": {"type": "string"},
            "plan": {"type": ["string", "null"]},
            "_sdc_deleted_at": {"type": ["string", "null"]},
        }
    }
    options = {"validate": True, "user_id_properties": ["user_id"], "email_property": "email"}
    declining = compile_lane(schema, ["user_id"], declines_deleted=True, **options)
    plain = compile_lane(schema, ["user_id"], **options)
    assert declining is not None
    assert plain is not None
    deleted = b'{"user_id": "u1", "plan": "p", "_sdc_deleted_at": "2024-01-01T00:00:00Z"}'
    kept = b'{"user_id": "u1", "plan": "p", "_sdc_deleted_at": null}'
    assert declining.map(deleted) is None
    assert declining.map(kept) is not None
    assert declining.map(b'{"user_id": "u1", "_sdc_deleted_at": ""}') is not None
    assert plain.map(deleted) is not None
