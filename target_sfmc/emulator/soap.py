"""The SOAP endpoint (``POST /Service.asmx``): deleting DE rows and retrieving folders.

It serves ``Delete`` of ``DataExtensionObject`` and ``Retrieve`` of ``DataFolder``.
Authentication is the OAuth token in the SOAP header (``<fueloauth>``). Envelopes in SOAP 1.1
and 1.2 are answered in the same version. A request the emulator cannot read (not XML, not an
envelope, a DTD, an operation it does not know) gets a SOAP fault with HTTP 500, as SFMC does;
per-object problems come back inside a 200 answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from target_sfmc.emulator.folders import FOLDERS, Folder
from target_sfmc.emulator.validation import REASON_NOT_NULL, column_message, to_system_time
from target_sfmc.emulator.wire import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_sfmc.emulator.faults import FaultInjector
    from target_sfmc.emulator.jobs import AsyncJobQueue
    from target_sfmc.emulator.rows import CompiledDataExtension
    from target_sfmc.emulator.store import Store
    from target_sfmc.emulator.tokens import TokenRegistry

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
PARTNER_API = "http://exacttarget.com/wsdl/partnerAPI"
_CONTENT_TYPES = {
    SOAP11: "text/xml; charset=utf-8",
    SOAP12: "application/soap+xml; charset=utf-8",
}
KEYS_NOT_FOUND = "Keys Not Found"
KEYS_NOT_FOUND_CODE = 310007
NO_DATA_EXTENSION = "Data Extension Key not specified in ObjectID, CustomerKey, or Name"
DELETED = "Deleted DataExtensionObject"

#: ``DataFolder`` properties a Retrieve may ask for, and how to read them.
_FOLDER_PROPERTIES: dict[str, Callable[[Folder], Any]] = {
    "ID": lambda f: f.id,
    "CustomerKey": lambda f: f.customer_key,
    "Name": lambda f: f.name,
    "Description": lambda f: f.name,
    "ContentType": lambda f: f.content_type,
    "IsActive": lambda _f: True,
    "IsEditable": lambda f: f.is_editable,
    "AllowChildren": lambda f: f.allow_children,
    "ParentFolder.ID": lambda f: f.parent_id,
    "ParentFolder.Name": lambda f: _folder_name(f.parent_id),
    "ParentFolder.CustomerKey": lambda f: _folder_key(f.parent_id),
}


def _folder_name(folder_id: int) -> str:
    return next((f.name for f in FOLDERS if f.id == folder_id), "")


def _folder_key(folder_id: int) -> str:
    return next((f.customer_key for f in FOLDERS if f.id == folder_id), "")


class SoapFaultError(Exception):
    """A request answered with a SOAP fault.

    Args:
        code: Fault code without prefix (``Client``, ``VersionMismatch``, ``Security``, ...).
        text: Fault string.
    """

    def __init__(self, code: str, text: str) -> None:
        """Remember the fault."""
        super().__init__(text)
        self.code = code
        self.text = text


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name]


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def _xsi_type(element: ET.Element) -> str:
    return element.get(f"{{{XSI}}}type", "").rsplit(":", 1)[-1]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


@dataclass(frozen=True)
class Envelope:
    """A parsed request envelope.

    Attributes:
        version: The envelope namespace (`SOAP11` or `SOAP12`).
        token: The ``fueloauth`` token, if any.
        operation: The first element of the body.
    """

    version: str
    token: str | None
    operation: ET.Element


def parse_envelope(body: bytes) -> Envelope:
    """Read a SOAP request.

    Args:
        body: The raw request body.

    Returns:
        The envelope's version, token and operation element.

    Raises:
        SoapFaultError: When the body is not a usable SOAP envelope.
    """
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise SoapFaultError("Client", "Document type definitions are not allowed.")
    try:
        root = ET.fromstring(body)  # noqa: S314 - DTDs (entity expansion) are refused above
    except ET.ParseError as exc:
        raise SoapFaultError("Client", f"The request is not well-formed XML: {exc}.") from None
    namespace = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if _local(root.tag) != "Envelope":
        raise SoapFaultError("Client", "The request is not a SOAP envelope.")
    if namespace not in _CONTENT_TYPES:
        raise SoapFaultError("VersionMismatch", f"Unknown SOAP envelope namespace {namespace!r}.")
    header = _child(root, "Header")
    token_element = None
    if header is not None:
        token_element = next((e for e in header.iter() if _local(e.tag) == "fueloauth"), None)
    body_element = _child(root, "Body")
    operation = None if body_element is None else next(iter(body_element), None)
    if operation is None:
        raise SoapFaultError("Client", "The SOAP body is empty.")
    token = _text(token_element) or None
    return Envelope(version=namespace, token=token, operation=operation)


def fault_response(fault: SoapFaultError, version: str = SOAP11) -> ApiResponse:
    """Build the HTTP 500 answer carrying a SOAP fault.

    Args:
        fault: The fault.
        version: Envelope namespace to answer in.

    Returns:
        The answer.
    """
    text = escape(fault.text)
    if version == SOAP12:
        code = "Sender" if fault.code == "Client" else fault.code
        inner = (
            f"<soap:Code><soap:Value>soap:{code}</soap:Value></soap:Code>"
            f'<soap:Reason><soap:Text xml:lang="en">{text}</soap:Text></soap:Reason>'
        )
    else:
        prefix = "soap" if fault.code in {"Client", "Server", "VersionMismatch"} else "q0"
        inner = (
            f'<faultcode xmlns:q0="http://exacttarget.com">{prefix}:{fault.code}</faultcode>'
            f"<faultstring>{text}</faultstring>"
        )
    return _envelope(500, f"<soap:Fault>{inner}</soap:Fault>", version)


def _envelope(status: int, body: str, version: str) -> ApiResponse:
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soap:Envelope xmlns:soap="{version}" xmlns:xsi="{XSI}" '
        'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    )
    return ApiResponse(status, xml.encode("utf-8"), content_type=_CONTENT_TYPES[version])


def _overall(statuses: list[str]) -> str:
    if all(s == "OK" for s in statuses):
        return "OK"
    if any(s == "OK" for s in statuses):
        return "Has Errors"
    return "Error"


class SoapApi:
    """The ``/Service.asmx`` handler, mixed into `SfmcApi`."""

    store: Store
    faults: FaultInjector
    tokens: TokenRegistry
    jobs: AsyncJobQueue
    _des_by_id: dict[str, CompiledDataExtension]

    if TYPE_CHECKING:

        def data_extension(self, key: str) -> CompiledDataExtension | None:
            """Find a DE by external key."""

    def soap(self, req: ApiRequest) -> ApiResponse:
        """``POST /Service.asmx``: ``DeleteRequest`` and ``RetrieveRequestMsg``.

        Args:
            req: The request; the token is in the envelope's ``fueloauth`` header.

        Returns:
            The SOAP answer, or a SOAP fault (HTTP 500).
        """
        try:
            envelope = parse_envelope(req.body)
        except SoapFaultError as fault:
            return fault_response(fault)
        try:
            self._check_token(envelope.token)
            body = self._operation(envelope.operation)
        except SoapFaultError as fault:
            return fault_response(fault, envelope.version)
        return _envelope(200, body, envelope.version)

    def _operation(self, operation: ET.Element) -> str:
        name = _local(operation.tag)
        if name == "DeleteRequest":
            return self._delete(operation)
        if name == "RetrieveRequestMsg":
            return self._retrieve(operation)
        raise SoapFaultError("Client", f"The operation {name} is not supported by the emulator.")

    def _check_token(self, token: str | None) -> None:
        if token is None:
            raise SoapFaultError(
                "Security",
                "Security requirements are not satisfied because the security header is not "
                "present in the incoming message.",
            )
        if not self.tokens.is_valid(token, self.faults.config.token_expiry_s):
            if token in self.tokens.issued():
                raise SoapFaultError("BadContextToken", "Token Expired")
            raise SoapFaultError("Security", "Login Failed")

    # -- Delete ----------------------------------------------------------------------------

    def _delete(self, request: ET.Element) -> str:
        objects = _children(request, "Objects")
        if not objects:
            raise SoapFaultError("Client", "The DeleteRequest has no Objects.")
        self.jobs.process_due()  # deletes come after the writes SFMC has already accepted
        results: list[str] = []
        statuses: list[str] = []
        with self.store.lock:
            for ordinal, obj in enumerate(objects):
                status, message, code = self._delete_one(obj)
                statuses.append(status)
                error_code = "" if code is None else f"<ErrorCode>{code}</ErrorCode>"
                results.append(
                    '<Results xsi:type="DataExtensionDeleteResult">'
                    f"<StatusCode>{status}</StatusCode>"
                    f"<StatusMessage>{escape(message)}</StatusMessage>"
                    f"<OrdinalID>{ordinal}</OrdinalID>{error_code}"
                    f"{_echo(obj)}</Results>"
                )
        return (
            f'<DeleteResponse xmlns="{PARTNER_API}">{"".join(results)}'
            f"<RequestID>{uuid.uuid4()}</RequestID>"
            f"<OverallStatus>{_overall(statuses)}</OverallStatus></DeleteResponse>"
        )

    def _delete_one(self, obj: ET.Element) -> tuple[str, str, int | None]:
        """Delete one row; returns ``(StatusCode, StatusMessage, ErrorCode)``."""
        kind = _xsi_type(obj)
        if kind != "DataExtensionObject":
            return "Error", f"Delete of {kind or 'this object'} is not supported.", 2
        cde = self._target(obj)
        if cde is None:
            return "Error", NO_DATA_EXTENSION, 2
        keys = _children(_child(obj, "Keys") or ET.Element("Keys"), "Key")
        sent = {_text(_child(k, "Name")).casefold(): _text(_child(k, "Value")) for k in keys}
        wanted = {pk.name.casefold(): pk for pk in cde.primary_keys}
        if not wanted or set(sent) != set(wanted):
            return "Error", KEYS_NOT_FOUND, KEYS_NOT_FOUND_CODE
        row: dict[str, Any] = {}
        for folded, pk in wanted.items():
            value = sent[folded]
            reason = cde.columns[pk.name][1](value) if value != "" else REASON_NOT_NULL
            if reason is not None:
                return "Error", column_message(pk.name, reason), KEYS_NOT_FOUND_CODE
            stored = self.faults.config.date_storage == "sfmc" and pk.type == "Date"
            row[pk.name] = to_system_time(value) if stored else value
        self.store.delete_row(cde.de.id, cde.identity(row))  # a missing row is no error
        return "OK", DELETED, None

    def _target(self, obj: ET.Element) -> CompiledDataExtension | None:
        customer_key = _text(_child(obj, "CustomerKey"))
        if customer_key:
            return self.data_extension(customer_key)
        object_id = _text(_child(obj, "ObjectID"))
        if object_id:
            return self._des_by_id.get(object_id.casefold())
        name = _text(_child(obj, "Name")).casefold()
        if name:
            found = [c for c in self._des_by_id.values() if c.de.name.casefold() == name]
            return found[0] if len(found) == 1 else None
        return None

    # -- Retrieve --------------------------------------------------------------------------

    def _retrieve(self, message: ET.Element) -> str:
        request = _child(message, "RetrieveRequest")
        if request is None:
            raise SoapFaultError("Client", "The RetrieveRequestMsg has no RetrieveRequest.")
        object_type = _text(_child(request, "ObjectType"))
        request_id = uuid.uuid4()
        if object_type != "DataFolder":
            return _retrieve_answer(
                f"Error: The object type {object_type or '(none)'} is not supported by the "
                "emulator; it retrieves DataFolder only.",
                request_id,
                "",
            )
        properties = [_text(p) for p in _children(request, "Properties")]
        unknown = [p for p in properties if p not in _FOLDER_PROPERTIES]
        if unknown or not properties:
            return _retrieve_answer(
                f"Error: The Request Property(s) {', '.join(unknown) or '(none)'} do not match "
                "with the fields of DataFolder retrieve",
                request_id,
                "",
            )
        test = _folder_filter(_child(request, "Filter"))
        results = "".join(_folder_result(f, properties) for f in FOLDERS if test(f))
        return _retrieve_answer("OK", request_id, results)


def _retrieve_answer(overall: str, request_id: uuid.UUID, results: str) -> str:
    return (
        f'<RetrieveResponseMsg xmlns="{PARTNER_API}">'
        f"<OverallStatus>{escape(overall)}</OverallStatus>"
        f"<RequestID>{request_id}</RequestID>{results}</RetrieveResponseMsg>"
    )


def _folder_result(folder: Folder, properties: list[str]) -> str:
    """One ``Results`` element with the requested properties, in a fixed order."""
    parts: list[str] = []
    parent: list[str] = []
    for name, read in _FOLDER_PROPERTIES.items():
        if name not in properties:
            continue
        if name.startswith("ParentFolder."):
            tail = name.split(".", 1)[1]
            parent.append(f"<{tail}>{_value(read(folder))}</{tail}>")
        else:
            parts.append(f"<{name}>{_value(read(folder))}</{name}>")
    if parent:
        parts.insert(min(2, len(parts)), f"<ParentFolder>{''.join(parent)}</ParentFolder>")
    return f'<Results xsi:type="DataFolder">{"".join(parts)}</Results>'


def _folder_filter(element: ET.Element | None) -> Callable[[Folder], bool]:
    """Compile a ``SimpleFilterPart``/``ComplexFilterPart`` into a folder predicate.

    Raises:
        SoapFaultError: For a filter the emulator cannot read.
    """
    if element is None:
        return lambda _folder: True
    kind = _xsi_type(element)
    if kind == "ComplexFilterPart":
        left = _folder_filter(_child(element, "LeftOperand"))
        right = _folder_filter(_child(element, "RightOperand"))
        operator = _text(_child(element, "LogicalOperator")).upper()
        if operator == "AND":
            return lambda folder: left(folder) and right(folder)
        if operator == "OR":
            return lambda folder: left(folder) or right(folder)
        raise SoapFaultError("Client", f"Unknown LogicalOperator {operator!r}.")
    prop = _text(_child(element, "Property"))
    read = _FOLDER_PROPERTIES.get(prop)
    if read is None:
        raise SoapFaultError("Client", f"Cannot filter DataFolder on {prop!r}.")
    values = {_text(v).casefold() for v in _children(element, "Value")}
    operator = _text(_child(element, "SimpleOperator"))
    if operator in {"equals", "IN"}:
        return lambda folder: _value(read(folder)).casefold() in values
    if operator == "notEquals":
        return lambda folder: _value(read(folder)).casefold() not in values
    raise SoapFaultError("Client", f"The SimpleOperator {operator!r} is not supported.")


def _echo(obj: ET.Element) -> str:
    """The deleted object as echoed in its result: its DE reference and keys."""
    parts = [
        f"<{name}>{escape(_text(_child(obj, name)))}</{name}>"
        for name in ("CustomerKey", "ObjectID", "Name")
        if _text(_child(obj, name))
    ]
    keys = "".join(
        f"<Key><Name>{escape(_text(_child(k, 'Name')))}</Name>"
        f"<Value>{escape(_text(_child(k, 'Value')))}</Value></Key>"
        for k in _children(_child(obj, "Keys") or ET.Element("Keys"), "Key")
    )
    return f'<Object xsi:type="DataExtensionObject">{"".join(parts)}<Keys>{keys}</Keys></Object>'
