"""SFMC's SOAP API as text: envelopes with the OAuth token, answers and faults read back.

SFMC's SOAP endpoint (``{soap_instance_url}Service.asmx``) takes SOAP 1.1 envelopes whose
header carries the OAuth access token (``<fueloauth>``). A request SFMC cannot take, and a
token it refuses, come back as an HTTP 500 SOAP fault; so does throttling. Nothing here does
I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

SOAP_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENVELOPE = "http://www.w3.org/2003/05/soap-envelope"
PARTNER_API = "http://exacttarget.com/wsdl/partnerAPI"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPE = "text/xml; charset=utf-8"

# Faults that repeating the same request cannot fix: the request itself, or the token (which a
# new token fixes). Other faults (``Server``, throttling) are transient.
REQUEST_FAULTS = frozenset({"Client", "Sender", "VersionMismatch", "MustUnderstand"})
TOKEN_FAULTS = frozenset({"Security", "BadContextToken"})
# XML 1.0 cannot carry these characters, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class SoapAnswerError(ValueError):
    """An answer that is not a readable SOAP envelope."""


@dataclass(frozen=True)
class SoapFault:
    """A SOAP fault: its code without prefix (``Client``, ``Security`` …) and its text."""

    code: str
    text: str

    @property
    def is_token_problem(self) -> bool:
        """SFMC refused the token (expired or unknown): a new token may succeed."""
        return self.code in TOKEN_FAULTS

    @property
    def is_final(self) -> bool:
        """Sending the same envelope again cannot succeed."""
        return self.code in REQUEST_FAULTS or self.code in TOKEN_FAULTS


def xml_text(value: Any) -> str:
    """A value as XML element text, the way SFMC expects key values.

    Args:
        value: Text, a number or a boolean.

    Returns:
        Escaped text.

    Raises:
        ValueError: When the text holds characters XML cannot carry.
    """
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = ""
    else:
        text = str(value)
    if _NOT_XML.search(text):
        raise ValueError("the value holds control characters, which SOAP (XML) cannot carry")
    return escape(text)


def envelope(token: str, body: str) -> bytes:
    """A SOAP 1.1 envelope carrying the access token.

    Args:
        token: OAuth access token.
        body: The body's XML (one operation element).

    Returns:
        The encoded envelope.
    """
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soap:Envelope xmlns:soap="{SOAP_ENVELOPE}" xmlns:xsi="{XSI}">'
        f'<soap:Header><fueloauth xmlns="http://exacttarget.com">{escape(token)}</fueloauth>'
        f"</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def local_name(tag: Any) -> str:
    """An element's name without its namespace.

    Args:
        tag: The element's tag.

    Returns:
        The local name.
    """
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(element: ET.Element, name: str) -> ET.Element | None:
    """The first child with this local name.

    Args:
        element: The parent.
        name: Local name.

    Returns:
        The child, or None.
    """
    return next((c for c in element if local_name(c.tag) == name), None)


def child_text(element: ET.Element, name: str) -> str:
    """The text of the first child with this local name.

    Args:
        element: The parent.
        name: Local name.

    Returns:
        Its stripped text ("" when absent).
    """
    found = child(element, name)
    return "" if found is None or found.text is None else found.text.strip()


def _parse(content: bytes) -> ET.Element:
    head = content[:2048].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in content.upper():
        raise SoapAnswerError("the answer carries a document type definition")
    try:
        root = ET.fromstring(content)  # noqa: S314 - no DTD, so no entity expansion
    except ET.ParseError as exc:
        raise SoapAnswerError(f"the answer is not XML ({exc})") from None
    if local_name(root.tag) != "Envelope":
        raise SoapAnswerError("the answer is not a SOAP envelope")
    return root


def body_operation(content: bytes) -> ET.Element:
    """The operation element of an answer's body (``DeleteResponse`` …).

    Args:
        content: The answer's bytes.

    Returns:
        The first element of the body.

    Raises:
        SoapAnswerError: When the answer has no such element.
    """
    body = child(_parse(content), "Body")
    found = None if body is None else next(iter(body), None)
    if found is None:
        raise SoapAnswerError("the answer's SOAP body is empty")
    return found


def fault_of(content: bytes) -> SoapFault | None:
    """The fault an answer carries, if it is one (SOAP 1.1 or 1.2).

    Args:
        content: The answer's bytes.

    Returns:
        The fault, or None when the answer is not a SOAP fault.
    """
    try:
        operation = body_operation(content)
    except SoapAnswerError:
        return None
    if local_name(operation.tag) != "Fault":
        return None
    code = child_text(operation, "faultcode")
    text = child_text(operation, "faultstring")
    if not code:  # SOAP 1.2: Code/Value and Reason/Text
        code_element = child(operation, "Code")
        code = "" if code_element is None else child_text(code_element, "Value")
        reason = child(operation, "Reason")
        text = "" if reason is None else child_text(reason, "Text")
    return SoapFault(code.rsplit(":", 1)[-1], text or "SOAP fault")
