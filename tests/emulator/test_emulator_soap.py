"""Emulator: the SOAP endpoint - Delete of DataExtensionObject and Retrieve of DataFolder."""

from __future__ import annotations

from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import pytest
import requests

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
PARTNER = "{http://exacttarget.com/wsdl/partnerAPI}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"


def envelope(token, body, version=SOAP11):
    header = (
        ""
        if token is None
        else f'<soap:Header><fueloauth xmlns="http://exacttarget.com">{token}</fueloauth></soap:Header>'
    )
    return (
        f'<soap:Envelope xmlns:soap="{version}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        f"{header}<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def de_object(key, **keys):
    pairs = "".join(
        f"<Key><Name>{escape(n)}</Name><Value>{escape(v)}</Value></Key>" for n, v in keys.items()
    )
    return (
        '<Objects xsi:type="DataExtensionObject">'
        f"<CustomerKey>{key}</CustomerKey><Keys>{pairs}</Keys></Objects>"
    )


def delete_request(*objects):
    return (
        '<DeleteRequest xmlns="http://exacttarget.com/wsdl/partnerAPI"><Options/>'
        f"{''.join(objects)}</DeleteRequest>"
    )


def call(client, body, path="/Service.asmx", content_type="text/xml; charset=utf-8"):
    return requests.post(
        client.url(path),
        data=body,
        headers={"Content-Type": content_type, "SOAPAction": "Delete"},
        timeout=10,
    )


def token_of(client):
    return client.session.headers["Authorization"].split()[1]


def parse_xml(content):
    return ET.fromstring(content)  # noqa: S314 - the emulator's own answer


def soap_body(response):
    root = parse_xml(response.content)
    return next(iter(root.find(f"{{{root.tag[1:].split('}')[0]}}}Body")))


def delete_results(response):
    answer = soap_body(response)
    assert answer.tag == f"{PARTNER}DeleteResponse"
    results = [
        {
            "status": r.findtext(f"{PARTNER}StatusCode"),
            "message": r.findtext(f"{PARTNER}StatusMessage"),
            "ordinal": r.findtext(f"{PARTNER}OrdinalID"),
            "code": r.findtext(f"{PARTNER}ErrorCode"),
            "key": r.findtext(f"{PARTNER}Object/{PARTNER}CustomerKey"),
        }
        for r in answer.findall(f"{PARTNER}Results")
    ]
    assert answer.findtext(f"{PARTNER}RequestID")
    return answer.findtext(f"{PARTNER}OverallStatus"), results


def fault(response):
    assert response.status_code == 500
    body = soap_body(response)
    assert body.tag == f"{{{SOAP11}}}Fault"
    return body.findtext("faultcode"), body.findtext("faultstring")


@pytest.fixture
def loaded(emulator, sfmc_client):
    client = sfmc_client(emulator)
    rows = [{"keys": {"Contact Key": f"u{i}"}, "values": {"Plan": "p"}} for i in range(1, 4)]
    assert client.rowset("IDENTIFY", rows).status_code == 200
    orders = [
        {"keys": {"Contact Key": "u1", "Order Id": f"o{i}"}, "values": {"Total": i}}
        for i in range(1, 3)
    ]
    assert client.rowset("ORDER_COMPLETED", orders).status_code == 200
    return client


def test_delete_rows_and_a_missing_row_counts_as_ok(emulator, loaded):
    body = delete_request(
        de_object("IDENTIFY", **{"Contact Key": "u1"}),
        de_object("IDENTIFY", **{"contact key": "U3"}),  # names and Text values fold
        de_object("IDENTIFY", **{"Contact Key": "never-there"}),
    )
    response = call(loaded, envelope(token_of(loaded), body))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    overall, results = delete_results(response)
    assert overall == "OK"
    assert results == [
        {
            "status": "OK",
            "message": "Deleted DataExtensionObject",
            "ordinal": str(i),
            "code": None,
            "key": "IDENTIFY",
        }
        for i in range(3)
    ]
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u2", "Plan": "p"}]
    assert emulator.request_counts()["soap"] == {200: 1}


def test_delete_needs_every_primary_key_column(emulator, loaded):
    body = delete_request(
        de_object("ORDER_COMPLETED", **{"Contact Key": "u1"}),
        de_object("ORDER_COMPLETED", **{"Contact Key": "u1", "Order Id": "o2"}),
        de_object("ORDER_COMPLETED", **{"Contact Key": "u1", "Order Id": "o1", "Total": "1"}),
    )
    overall, results = delete_results(call(loaded, envelope(token_of(loaded), body)))
    assert overall == "Has Errors"
    assert [(r["status"], r["message"], r["code"]) for r in results] == [
        ("Error", "Keys Not Found", "310007"),
        ("OK", "Deleted DataExtensionObject", None),
        ("Error", "Keys Not Found", "310007"),
    ]
    assert [r["Order Id"] for r in emulator.rows("ORDER_COMPLETED")] == ["o1"]


def test_delete_of_unknown_data_extensions_and_other_objects(loaded):
    body = delete_request(
        de_object("NOPE", **{"Contact Key": "u1"}),
        '<Objects xsi:type="DataExtensionObject"><Keys/></Objects>',
        '<Objects xsi:type="Subscriber"><SubscriberKey>u1</SubscriberKey></Objects>',
    )
    overall, results = delete_results(call(loaded, envelope(token_of(loaded), body)))
    assert overall == "Error"
    assert [(r["status"], r["message"]) for r in results] == [
        ("Error", "Data Extension Key not specified in ObjectID, CustomerKey, or Name"),
        ("Error", "Data Extension Key not specified in ObjectID, CustomerKey, or Name"),
        ("Error", "Delete of Subscriber is not supported."),
    ]


def test_delete_applies_accepted_async_writes_first(emulator_factory, sfmc_client):
    emulator = emulator_factory(async_delay_ms=0)
    client = sfmc_client(emulator)
    emulator.api.jobs.stop()  # the upsert stays queued until something settles the data
    client.async_upsert("IDENTIFY", [{"Contact Key": "u1"}, {"Contact Key": "u2"}])
    body = delete_request(de_object("IDENTIFY", **{"Contact Key": "u1"}))
    assert delete_results(call(client, envelope(token_of(client), body)))[0] == "OK"
    assert emulator.rows("IDENTIFY") == [{"Contact Key": "u2"}]


def test_delete_by_object_id_and_through_a_double_slash(emulator, loaded):
    de_id = emulator.api.data_extension("IDENTIFY").de.id
    body = delete_request(
        '<Objects xsi:type="DataExtensionObject">'
        f"<ObjectID>{de_id}</ObjectID><Keys><Key><Name>Contact Key</Name><Value>u2</Value></Key>"
        "</Keys></Objects>"
    )
    response = call(loaded, envelope(token_of(loaded), body), path="//Service.asmx")
    assert delete_results(response)[0] == "OK"
    assert [r["Contact Key"] for r in emulator.rows("IDENTIFY")] == ["u1", "u3"]


def test_soap_12_envelopes_are_answered_in_soap_12(emulator, loaded):
    body = delete_request(de_object("IDENTIFY", **{"Contact Key": "u1"}))
    response = call(
        loaded,
        envelope(token_of(loaded), body, SOAP12),
        content_type="application/soap+xml; charset=utf-8",
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/soap+xml")
    assert parse_xml(response.content).tag == f"{{{SOAP12}}}Envelope"
    bad = call(loaded, envelope(token_of(loaded), "<Nothing/>", SOAP12))
    assert bad.status_code == 500
    reason = soap_body(bad).find(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text")
    assert reason.text == "The operation Nothing is not supported by the emulator."


@pytest.mark.parametrize(
    ("token", "code", "text"),
    [
        (
            None,
            "q0:Security",
            (
                "Security requirements are not satisfied because the security header is not "
                "present in the incoming message."
            ),
        ),
        ("not-a-token", "q0:Security", "Login Failed"),
    ],
)
def test_soap_needs_the_token_in_the_envelope(emulator, loaded, token, code, text):
    body = envelope(token, delete_request(de_object("IDENTIFY", **{"Contact Key": "u1"})))
    # A bearer header does not stand in for the envelope's token.
    response = loaded.session.post(loaded.url("/Service.asmx"), data=body, timeout=10)
    assert fault(response) == (code, text)
    assert len(emulator.rows("IDENTIFY")) == 3


def test_expired_token(emulator_factory, sfmc_client):
    emulator = emulator_factory(faults={"token_expiry_s": 0})
    client = sfmc_client(emulator)
    body = envelope(token_of(client), delete_request(de_object("IDENTIFY", **{"Contact Key": "u"})))
    assert fault(call(client, body)) == ("q0:BadContextToken", "Token Expired")


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"this is not xml", "The request is not well-formed XML"),
        (b"<Message/>", "The request is not a SOAP envelope."),
        (
            b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"/>',
            "The SOAP body is empty.",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY lol "lol">]><x>&lol;</x>',
            "Document type definitions are not allowed.",
        ),
        (envelope("t", "<CreateRequest/>"), "The operation CreateRequest is not supported"),
        (envelope("t", delete_request()), "The DeleteRequest has no Objects."),
    ],
)
def test_malformed_envelopes_get_a_client_fault(loaded, body, text):
    if b"<CreateRequest/>" in body or b"<Options/>" in body:
        body = body.replace(b">t<", f">{token_of(loaded)}<".encode())
    code, string = fault(call(loaded, body))
    assert code == "soap:Client"
    assert string.startswith(text)


def test_wrong_envelope_namespace_is_a_version_mismatch(loaded):
    body = envelope(token_of(loaded), "<x/>", "urn:not-soap")
    assert fault(call(loaded, body))[0] == "soap:VersionMismatch"
    assert fault(call(loaded, b"<Envelope/>"))[0] == "soap:VersionMismatch"


def retrieve(client, properties, filter_xml=""):
    props = "".join(f"<Properties>{p}</Properties>" for p in properties)
    body = (
        '<RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI"><RetrieveRequest>'
        f"<ObjectType>DataFolder</ObjectType>{props}{filter_xml}</RetrieveRequest>"
        "</RetrieveRequestMsg>"
    )
    response = call(client, envelope(token_of(client), body))
    assert response.status_code == 200
    answer = soap_body(response)
    assert answer.tag == f"{PARTNER}RetrieveResponseMsg"
    return answer


def simple(prop, value, operator="equals"):
    return (
        f"<Property>{prop}</Property><SimpleOperator>{operator}</SimpleOperator>"
        f"<Value>{value}</Value>"
    )


CONTENT_TYPE_DE = (
    f'<Filter xsi:type="SimpleFilterPart">{simple("ContentType", "dataextension")}</Filter>'
)


def folders(answer):
    return [
        {child.tag.removeprefix(PARTNER): child for child in result}
        for result in answer.findall(f"{PARTNER}Results")
    ]


def test_retrieve_data_extension_folders(loaded):
    answer = retrieve(
        loaded, ["ID", "Name", "CustomerKey", "ContentType", "ParentFolder.ID"], CONTENT_TYPE_DE
    )
    assert answer.findtext(f"{PARTNER}OverallStatus") == "OK"
    found = folders(answer)
    assert [
        (f["ID"].text, f["Name"].text, f["CustomerKey"].text, f["ParentFolder"][0].text)
        for f in found
    ] == [
        ("7031", "Audiences", "dataextension_default", "7023"),
        ("7023", "Data Extensions", "dataextension_default", "0"),
        ("7024", "Einstein", "einstein_dataextensions", "7023"),
        ("7040", "Loaded by pipelines", "pipelines", "7023"),
    ]
    assert all(r.get(XSI_TYPE) == "DataFolder" for r in answer.findall(f"{PARTNER}Results"))


def test_retrieve_the_root_folder_with_a_complex_filter(loaded):
    filter_xml = (
        '<Filter xsi:type="ComplexFilterPart">'
        f'<LeftOperand xsi:type="SimpleFilterPart">{simple("ContentType", "DataExtension")}'
        "</LeftOperand><LogicalOperator>AND</LogicalOperator>"
        f'<RightOperand xsi:type="SimpleFilterPart">{simple("ParentFolder.ID", "0")}'
        "</RightOperand></Filter>"
    )
    found = folders(retrieve(loaded, ["ID", "Name"], filter_xml))
    # Properties not asked for are not returned.
    assert [{k: v.text for k, v in f.items()} for f in found] == [
        {"ID": "7023", "Name": "Data Extensions"}
    ]


def test_retrieve_errors_come_back_in_the_overall_status(loaded):
    unknown = retrieve(loaded, ["ID", "Colour"], CONTENT_TYPE_DE)
    assert unknown.findtext(f"{PARTNER}OverallStatus") == (
        "Error: The Request Property(s) Colour do not match with the fields of DataFolder retrieve"
    )
    assert unknown.findall(f"{PARTNER}Results") == []
    body = (
        '<RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI"><RetrieveRequest>'
        "<ObjectType>Email</ObjectType><Properties>ID</Properties></RetrieveRequest>"
        "</RetrieveRequestMsg>"
    )
    answer = soap_body(call(loaded, envelope(token_of(loaded), body)))
    assert answer.findtext(f"{PARTNER}OverallStatus").startswith("Error: The object type Email")
