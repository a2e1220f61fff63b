"""SFMC client: REST endpoints, bearer auth with refresh on 401, SFMC error bodies; SOAP calls."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

from target_sfmc import soap
from target_sfmc.auth import TokenProvider
from target_sfmc.budget import AccountBudget
from target_sfmc.errors import SfmcApiError
from target_sfmc.jsonio import encode_json
from target_sfmc.limiter import RateLimiter
from target_sfmc.transport import ApiStats, RetryPolicy, Transport

if TYPE_CHECKING:
    import requests

    from target_sfmc.settings import ClientSettings

LOGGER = logging.getLogger("target-sfmc.client")

ASYNC_RESULTS_PAGE_SIZE = 5000
MAX_RESULTS_PAGES = 1000
MAX_TOKEN_REFRESHES_PER_CALL = 3
DATA_EXTENSION_SEARCH_PAGE_SIZE = 50

# SOAP Retrieve of the Data Extension folders; the token goes in the header (%s).
_FOLDER_RETRIEVE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    '<s:Header><fueloauth xmlns="http://exacttarget.com">%s</fueloauth></s:Header>'
    '<s:Body><RetrieveRequestMsg xmlns="http://exacttarget.com/wsdl/partnerAPI">'
    "<RetrieveRequest><ObjectType>DataFolder</ObjectType>"
    "<Properties>ID</Properties><Properties>Name</Properties>"
    "<Properties>CustomerKey</Properties><Properties>ContentType</Properties>"
    "<Properties>ParentFolder.ID</Properties>"
    '<Filter xsi:type="SimpleFilterPart"><Property>ContentType</Property>'
    "<SimpleOperator>equals</SimpleOperator><Value>dataextension</Value></Filter>"
    "</RetrieveRequest></RetrieveRequestMsg></s:Body></s:Envelope>"
)


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _folders_from_soap(text: str) -> tuple[list[dict[str, str]], str]:
    """Read a SOAP Retrieve answer of DataFolder objects.

    Args:
        text: The answer's XML.

    Returns:
        The folders (``ID``, ``Name``, ``CustomerKey``, ``ContentType``, ``ParentFolder.ID``)
        and the ``OverallStatus`` (for a SOAP fault: its fault string; "" when unreadable).
    """
    if "<!DOCTYPE" in text or "<!ENTITY" in text:  # never expand entities from an answer
        return [], ""
    try:
        root = ET.fromstring(text)  # noqa: S314 - DTDs refused above
    except ET.ParseError:
        return [], ""
    status, folders = "", []
    for element in root.iter():
        name = _local_name(element.tag)
        if name == "OverallStatus":
            status = (element.text or "").strip()
        elif name == "faultstring" or (name == "Text" and not status):
            status = f"SOAP fault: {(element.text or '').strip()}"
        elif name == "Results":
            folder: dict[str, str] = {}
            for child in element:
                child_name = _local_name(child.tag)
                if child_name == "ParentFolder":
                    for parent in child:
                        folder[f"ParentFolder.{_local_name(parent.tag)}"] = parent.text or ""
                else:
                    folder[child_name] = (child.text or "").strip()
            folders.append(folder)
    return folders, status


def _error_from_response(response: requests.Response, endpoint: str) -> SfmcApiError:
    try:
        body: Any = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    message = body.get("message")
    code = body.get("errorcode")
    messages = body.get("resultMessages")
    if not message and isinstance(messages, list) and messages:
        first = messages[0] if isinstance(messages[0], dict) else {}
        first = first.get("resultMessage", first)
        message = first.get("message")
        code = first.get("resultCode", code)
    if not message:
        message = body.get("error_description") or response.reason or "no message"
        code = body.get("error", code)
    additional = body.get("additionalErrors")
    return SfmcApiError(
        endpoint=endpoint,
        status=response.status_code,
        error_code=code if code is not None else "none",
        message=str(message),
        additional_errors=additional if isinstance(additional, list) else None,
    )


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _is_error_message(message: dict[str, Any]) -> bool:
    """A ``resultMessages`` entry that refuses the request (not a warning or a note)."""
    return "error" in {
        str(message.get("resultClass", "")).lower(),
        str(message.get("resultType", "")).lower(),
    }


def _is_unsaved_without_details(response: requests.Response) -> bool:
    """SFMC's bare ``10006 Unable to save rows`` is transient (Segment retries it too)."""
    if response.status_code != 400:  # noqa: PLR2004
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return (
        isinstance(body, dict)
        and body.get("errorcode") == 10006  # noqa: PLR2004
        and not body.get("additionalErrors")
        and "Unable to save rows" in str(body.get("message", ""))
    )


def _is_final_soap_fault(response: requests.Response) -> bool:
    """A SOAP fault about the request or the token: repeating the same envelope cannot help."""
    fault = soap.fault_of(response.content)
    return fault is not None and fault.is_final


class SfmcClient:
    """Thread-safe client for the SFMC REST endpoints the target uses."""

    def __init__(self, settings: ClientSettings, *, user_agent: str = "target-sfmc") -> None:
        """Create the client.

        Args:
            settings: Connection settings.
            user_agent: User-Agent header value.
        """
        self.settings = settings
        # The account's budget store: the rate limit and (token_cache) the token it shares.
        self.budget = AccountBudget.open(
            rate_limit_url=settings.rate_limit_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            account_id=settings.account_id,
            auth_base_url=settings.auth_base_url,
            legacy_auth=settings.uses_legacy_auth,
            requests_per_second=settings.requests_per_second,
            expected_processes=settings.expected_processes,
            token_cache=settings.token_cache,
        )
        limiter = RateLimiter(
            settings.requests_per_second, settings.max_concurrent_requests, budget=self.budget
        )
        self.transport = Transport(
            limiter,
            retry=RetryPolicy(
                max_attempts=settings.retry_max_attempts,
                base_seconds=settings.retry_backoff_seconds,
            ),
            timeout_seconds=settings.timeout_seconds,
            user_agent=user_agent,
        )
        self.transport.stats.budget = self.budget
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()
        self.tokens = TokenProvider(
            self.transport,
            auth_base_url=settings.auth_base_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            account_id=settings.account_id,
            legacy=settings.uses_legacy_auth,
            budget=self.budget,
        )

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        with self._warned_lock:
            if key in self._warned:
                return
            self._warned.add(key)
        LOGGER.warning(message, *args)

    @property
    def stats(self) -> ApiStats:
        """Request counters for the summary."""
        return self.transport.stats

    def close(self) -> None:
        """Close the HTTP session and the budget store."""
        self.transport.session.close()
        self.budget.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        payload: Any = None,
        body: bytes | None = None,
        retry_unsaved: bool = True,
    ) -> Any:
        """Call a REST endpoint and return its JSON body.

        Args:
            method: HTTP method.
            path: Path below the REST base URL.
            endpoint: Short endpoint name for logs, stats and errors.
            payload: JSON payload (encoded exactly), or None.
            body: Pre-encoded JSON body (takes precedence over payload).
            retry_unsaved: Retry SFMC's bare "Unable to save rows" as a transient failure.

        Returns:
            The decoded JSON body (None when empty).

        Raises:
            SfmcApiError: For a non-transient error answer.
        """
        if body is None and payload is not None:
            body = encode_json(payload)
        used: list[str] = []

        def authorized() -> tuple[str, dict[str, str]]:
            token = self.tokens.get()
            used.append(token.value)
            headers = {"Authorization": f"Bearer {token.value}"}
            if body is not None:
                headers["Content-Type"] = "application/json; charset=UTF-8"
            return self.settings.rest_base_url(token.rest_instance_url) + path, headers

        for attempt in range(1, MAX_TOKEN_REFRESHES_PER_CALL + 2):
            response = self.transport.send(
                method,
                authorized,
                endpoint=endpoint,
                body=body,
                retry_on=_is_unsaved_without_details if retry_unsaved else None,
            )
            # Each 401 gets one refresh: a token can also expire while a retry waits.
            if response.status_code == 401 and attempt <= MAX_TOKEN_REFRESHES_PER_CALL:  # noqa: PLR2004
                LOGGER.info("SFMC refused the access token; fetching a new one.")
                self.tokens.invalidate(used[-1])
                continue
            if 200 <= response.status_code < 300:  # noqa: PLR2004
                if not response.content:
                    return None
                try:
                    return response.json()
                except ValueError:
                    return None
            raise _error_from_response(response, endpoint)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _de_path(key: str) -> str:
        return f"key:{quote(key, safe='')}"

    def upsert_rowset(self, key: str, body: bytes, *, retry_unsaved: bool = True) -> None:
        """Synchronously upsert up to 50 rows encoded as ``[{"keys":…,"values":…}]``.

        Args:
            key: Data Extension external key.
            body: Encoded rowset.
            retry_unsaved: Retry SFMC's bare "Unable to save rows" (off while the rows of a
                refused rowset are being told apart: the retries were spent already).
        """
        self.call(
            "POST",
            f"/hub/v1/dataevents/{self._de_path(key)}/rowset",
            endpoint="rowset",
            body=body,
            retry_unsaved=retry_unsaved,
        )

    def submit_async_upsert(self, key: str, body: bytes) -> str:
        """Queue an asynchronous upsert of ``{"items": [...]}``.

        Args:
            key: Data Extension external key.
            body: Encoded ``{"items": [...]}``.

        Returns:
            SFMC's request id.

        Raises:
            SfmcApiError: When SFMC did not queue the request.
        """
        answer = self.call(
            "PUT",
            f"/data/v1/async/dataextensions/{self._de_path(key)}/rows",
            endpoint="async_upsert",
            body=body,
        )
        request_id = answer.get("requestId") if isinstance(answer, dict) else None
        raw_messages = answer.get("resultMessages") if isinstance(answer, dict) else None
        messages = [m for m in raw_messages or [] if isinstance(m, dict)]
        refusals = [m for m in messages if _is_error_message(m)]
        if not request_id or refusals:
            first = refusals[0] if refusals else {}
            raise SfmcApiError(
                endpoint="async_upsert",
                status=200,
                error_code=first.get("resultCode", "none"),
                message=str(first.get("message", "no request id")),
            )
        if messages:
            # SFMC may attach warnings to an accepted request; the rows' outcomes come later.
            self._warn_once(
                "async-accept-messages",
                "SFMC accepted an async request with informational messages (codes: %s); "
                "each row's outcome is read from the request's results.",
                ", ".join(sorted({str(m.get("resultCode", "?")) for m in messages})),
            )
        return str(request_id)

    def async_status(self, request_id: str) -> dict[str, Any]:
        """Read an async request's status envelope.

        Args:
            request_id: The request id.

        Returns:
            The whole response body (``status`` may be missing while SFMC has not picked it up).
        """
        answer = self.call(
            "GET", f"/data/v1/async/{quote(request_id, safe='')}/status", endpoint="async_status"
        )
        return answer if isinstance(answer, dict) else {}

    def async_results(self, request_id: str, rows: int) -> list[dict[str, Any]]:
        """Read the per-row results of an async request that SFMC's answers make certain.

        Items carry no row identity: item *i* is row *i* of the request. Which page
        parameters SFMC honours is not documented, so both spellings are sent, and a page
        counts only when its answer says it is the page asked for and the total is the
        number of rows sent. What is not certain is left out: those rows' outcomes are
        unknown (and an upsert can be sent again).

        Args:
            request_id: The request id.
            rows: How many rows the request carried.

        Returns:
            The results of the request's first rows, in order (all of them when certain).
        """
        items: list[dict[str, Any]] = []
        path = f"/data/v1/async/{quote(request_id, safe='')}/results"
        for page in range(1, MAX_RESULTS_PAGES + 1):
            size = ASYNC_RESULTS_PAGE_SIZE
            answer = self.call(
                "GET",
                f"{path}?$page={page}&$pageSize={size}&page={page}&pageSize={size}",
                endpoint="async_results",
            )
            if not isinstance(answer, dict) or _int(answer.get("count")) != rows:
                return items
            if page > 1 and _int(answer.get("page")) != page:
                return items  # the page parameter was not honoured: this is an earlier page
            batch = [item for item in answer.get("items") or [] if isinstance(item, dict)]
            items.extend(batch)
            if not batch or len(items) >= rows:
                return items[:rows]
        return items

    def create_contact(self, contact_key: str) -> None:
        """Create or update a Contact the way Segment does (no attribute sets).

        Args:
            contact_key: The Contact Key.
        """
        self.call(
            "POST",
            "/contacts/v1/contacts",
            endpoint="contacts",
            payload={"contactKey": contact_key, "attributeSets": []},
        )

    def fire_event(self, contact_key: str, definition_key: str, data: dict[str, Any]) -> None:
        """Send one Journey Builder entry event.

        Args:
            contact_key: The Contact Key.
            definition_key: Event definition key.
            data: Event data (Title Case attributes).
        """
        self.call(
            "POST",
            "/interaction/v1/events",
            endpoint="event",
            payload={"ContactKey": contact_key, "EventDefinitionKey": definition_key, "Data": data},
        )

    def fire_events_batch(
        self, definition_key: str, members: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Send up to 100 entry events in one request.

        Args:
            definition_key: Event definition key.
            members: ``[{"contactKey": …, "data": {…}}]``.

        Returns:
            SFMC's per-member answers in request order.
        """
        answer = self.call(
            "POST",
            "/interaction/v1/async/events",
            endpoint="async_events",
            payload={"eventDefinitionKey": definition_key, "members": members},
        )
        result = answer.get("members", []) if isinstance(answer, dict) else []
        return [item if isinstance(item, dict) else {} for item in result]

    def get_rowset_page(self, key: str) -> dict[str, Any]:
        """Read one small page of a Data Extension (connection check).

        Args:
            key: Data Extension external key.

        Returns:
            The response body.
        """
        answer = self.call(
            "GET",
            f"/data/v1/customobjectdata/key/{quote(key, safe='')}/rowset?$page=1&$pageSize=1",
            endpoint="customobjectdata_get",
        )
        return answer if isinstance(answer, dict) else {}

    def get_event_definition(self, key: str) -> dict[str, Any]:
        """Read an event definition (connection check).

        Args:
            key: Event definition key.

        Returns:
            The response body.
        """
        answer = self.call(
            "GET",
            f"/interaction/v1/eventDefinitions/key:{quote(key, safe='')}",
            endpoint="event_definition_get",
        )
        return answer if isinstance(answer, dict) else {}

    def soap_call(self, action: str, body: str, *, endpoint: str) -> ET.Element:
        """Call SFMC's SOAP API (``Service.asmx``) with the access token in the envelope.

        Throttling and other server faults are retried like REST 5xx answers; a fault about
        the token gets a new token (as a REST 401 does).

        Args:
            action: The operation (``SOAPAction``), e.g. ``Delete``.
            body: The operation element's XML.
            endpoint: Short endpoint name for logs, stats and errors.

        Returns:
            The answer's operation element (e.g. ``DeleteResponse``).

        Raises:
            SfmcApiError: For a SOAP fault, or an answer that is not SOAP.
        """
        for attempt in range(1, MAX_TOKEN_REFRESHES_PER_CALL + 2):
            token = self.tokens.get()
            url = self.settings.soap_base_url(token.soap_instance_url) + "/Service.asmx"
            response = self.transport.send(
                "POST",
                url,
                endpoint=endpoint,
                body=soap.envelope(token.value, body),
                headers={"Content-Type": soap.CONTENT_TYPE, "SOAPAction": action},
                final_on=_is_final_soap_fault,
            )
            ok = 200 <= response.status_code < 300  # noqa: PLR2004
            fault = None if ok else soap.fault_of(response.content)
            refused_token = fault is not None and fault.is_token_problem
            if refused_token and attempt <= MAX_TOKEN_REFRESHES_PER_CALL:
                LOGGER.info("SFMC refused the access token (SOAP); fetching a new one.")
                self.tokens.invalidate(token.value)
                continue
            if ok:
                try:
                    return soap.body_operation(response.content)
                except soap.SoapAnswerError as exc:
                    raise SfmcApiError(
                        endpoint=endpoint,
                        status=response.status_code,
                        error_code="invalid_answer",
                        message=str(exc),
                    ) from None
            raise SfmcApiError(
                endpoint=endpoint,
                status=response.status_code,
                error_code=fault.code if fault is not None else "none",
                message=fault.text if fault is not None else (response.reason or "no message"),
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def read_rowset_page(self, key: str, page: int, page_size: int) -> dict[str, Any]:
        """Read one page of a Data Extension's rows (``keys`` and ``values`` per row).

        Args:
            key: Data Extension external key.
            page: Page number, from 1.
            page_size: Rows per page.

        Returns:
            The response body (``items``, ``count``, ``page``, ``pageSize``).
        """
        answer = self.call(
            "GET",
            f"/data/v1/customobjectdata/key/{quote(key, safe='')}/rowset"
            f"?$page={page}&$pageSize={page_size}",
            endpoint="customobjectdata_get",
        )
        return answer if isinstance(answer, dict) else {}

    def exit_contacts(self, exits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Ask SFMC to take contacts out of journeys (up to 50 a request).

        Args:
            exits: ``[{"ContactKey": …, "DefinitionKey": <journey key>}]``.

        Returns:
            SFMC's ``errors``: one entry per contact whose exit it ignored.
        """
        answer = self.call(
            "POST",
            "/interaction/v1/interactions/contactexit",
            endpoint="contactexit",
            payload=exits,
        )
        errors = answer.get("errors") if isinstance(answer, dict) else None
        return [item for item in errors or [] if isinstance(item, dict)]

    # -- Data Extension definitions and folders ----------------------------------------------

    def search_data_extensions(self, text: str, page: int = 1) -> dict[str, Any]:
        """Search Data Extensions by part of their name or external key.

        Args:
            text: The text to look for (SFMC requires one; wildcards are refused).
            page: Page of the answer, from 1.

        Returns:
            ``{"count", "page", "pageSize", "items": [{"id", "key", "name", …}]}``.
        """
        answer = self.call(
            "GET",
            f"/data/v1/customobjects?$search={quote(text, safe='')}"
            f"&$page={page}&$pageSize={DATA_EXTENSION_SEARCH_PAGE_SIZE}",
            endpoint="customobjects_search",
        )
        return answer if isinstance(answer, dict) else {}

    def data_extension_fields(self, object_id: str) -> list[dict[str, Any]]:
        """Read the columns of a Data Extension.

        Args:
            object_id: The Data Extension's ObjectID (SFMC refuses an external key here).

        Returns:
            SFMC's ``fields`` items.
        """
        answer = self.call(
            "GET",
            f"/data/v1/customobjects/{quote(object_id, safe='')}/fields",
            endpoint="customobject_fields",
        )
        fields = answer.get("fields") if isinstance(answer, dict) else None
        return [item for item in fields if isinstance(item, dict)] if fields else []

    def create_data_extension(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Create a Data Extension.

        Args:
            definition: ``{"name", "key", "categoryId", "isSendable", "fields": [...], …}``.

        Returns:
            The created Data Extension as SFMC shows it (``id``, ``key``, ``fields``, …).
        """
        answer = self.call(
            "POST", "/data/v1/customobjects", endpoint="customobjects_create", payload=definition
        )
        return answer if isinstance(answer, dict) else {}

    def add_data_extension_fields(self, object_id: str, fields: list[dict[str, Any]]) -> None:
        """Ask SFMC to add columns to a Data Extension (applied asynchronously).

        Args:
            object_id: The Data Extension's ObjectID.
            fields: The new columns, in the create request's field form.
        """
        self.call(
            "POST",
            f"/data/v1/customobjectsasync/{quote(object_id, safe='')}/fields",
            endpoint="customobject_add_fields",
            payload={"fields": fields},
        )

    def retrieve_data_extension_folders(self) -> list[dict[str, str]]:
        """Retrieve the business unit's Data Extension folders (SOAP Retrieve of DataFolder).

        Returns:
            One ``{"ID", "Name", "CustomerKey", "ParentFolder.ID"}`` per folder.

        Raises:
            SfmcApiError: When SFMC answers with a fault or a status other than OK.
        """
        token = self.tokens.get()
        url = self.settings.soap_base_url(token.soap_instance_url) + "/Service.asmx"
        response = self.transport.send(
            "POST",
            url,
            endpoint="soap_retrieve",
            body=(_FOLDER_RETRIEVE % escape(token.value)).encode(),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": "Retrieve"},
        )
        folders, status = _folders_from_soap(response.text)
        if response.status_code == 200 and status in {"OK", "MoreDataAvailable"}:  # noqa: PLR2004
            return folders
        raise SfmcApiError(
            endpoint="soap_retrieve",
            status=response.status_code,
            error_code="soap",
            message=status or "SFMC's answer could not be read",
        )
