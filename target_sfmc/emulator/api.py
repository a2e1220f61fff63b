"""SFMC REST endpoint semantics, independent of HTTP.

Each handler takes an `ApiRequest` and returns an `ApiResponse` whose body is a JSON value.
Routing, authentication, rate limiting and faults are the server's job (`server`).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from target_sfmc.emulator.customobjects import CustomObjectsApi
from target_sfmc.emulator.jobs import (
    COMPLETE,
    ERROR,
    MISSING,
    PENDING,
    AsyncJob,
    AsyncJobQueue,
    StatusScript,
    sfmc_timestamp,
)
from target_sfmc.emulator.journeys import JourneysApi
from target_sfmc.emulator.rows import (
    CompiledDataExtension,
    RowIssue,
    RowsetOutcome,
    RowWriter,
    unable_to_save_message,
)
from target_sfmc.emulator.schema import (
    DataExtension,
    DefinitionError,
    EventDefinition,
    parse_data_extension,
    parse_event_definition,
)
from target_sfmc.emulator.soap import SoapApi
from target_sfmc.emulator.tokens import TokenRegistry
from target_sfmc.emulator.validation import REASON_NOT_NULL, column_message
from target_sfmc.emulator.wire import (
    ApiRequest,
    ApiResponse,
    error,
    invalid_format,
    page_params,
    parse_json,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from target_sfmc.emulator.faults import FaultInjector
    from target_sfmc.emulator.store import Store

DOCS_URL = (
    "https://developer.salesforce.com/docs/atlas.en-us.mc-apis.meta/mc-apis/error-handling.htm"
)
OAUTH_DOCS_URL = "https://developer.salesforce.com/docs"
GRANTED_SCOPES = (
    "data_extensions_read data_extensions_write list_and_subscribers_read "
    "list_and_subscribers_write journeys_execute journeys_read"
)
DEFAULT_TOKEN_TTL = 1079
LEGACY_TOKEN_TTL = 3600
MAX_ASYNC_ITEMS = 32_000
MAX_ASYNC_EVENT_MEMBERS = 100
DEFAULT_RESULTS_PAGE_SIZE = 50
DEFAULT_ROWSET_PAGE_SIZE = 2500

_EVENT_NAMESPACE = uuid.UUID("1d1f5c1e-8d8b-4f7e-9f65-3e4b0f6a2c71")


def _oauth_error(status: int, code: str, description: str) -> ApiResponse:
    return ApiResponse(
        status, {"error": code, "error_description": description, "error_uri": OAUTH_DOCS_URL}
    )


def _result_message(code: str, message: str) -> dict[str, Any]:
    return {
        "resultType": "Operational",
        "resultClass": "Error",
        "resultCode": code,
        "message": message,
    }


#: Informational messages on an accepted submission (``async_accept_messages``): neither
#: says the request failed.
ACCEPT_MESSAGES: tuple[dict[str, Any], ...] = (
    {
        "resultType": "Operational",
        "resultClass": "Information",
        "resultCode": "AsyncRequestQueued",
        "message": "The request was queued for asynchronous processing.",
    },
    {
        "resultType": "Validation",
        "resultClass": "Warning",
        "resultCode": "UnknownFieldsIgnored",
        "message": "Fields that do not exist in the data extension are ignored.",
    },
)

#: Attribute sets of which ``POST /contacts/v1/contacts`` needs one to create a contact
#: (``contacts_require_attribute_sets``).
CONTACT_CREATION_SETS = frozenset(
    {"email addresses", "mobileconnect demographics", "mobilepush demographics", "line"}
)
ATTRIBUTE_SETS_REQUIRED = (
    "At least one of the attribute sets Email Addresses, MobileConnect Demographics, "
    "MobilePush Demographics or LINE is required to create a contact."
)


def _get_folded(obj: Mapping[str, Any], name: str) -> Any:
    """Return a property matched case-insensitively (exact spelling preferred)."""
    if name in obj:
        return obj[name]
    folded = name.casefold()
    for key, value in obj.items():
        if key.casefold() == folded:
            return value
    return None


def _contact_key(raw: Any) -> str | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, str) and raw.strip():
        return raw
    return None


def _names_a_creation_set(attribute_sets: list[Any]) -> bool:
    """Tell whether attribute sets include one that can create a contact."""
    return any(
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and entry["name"].strip().casefold() in CONTACT_CREATION_SETS
        for entry in attribute_sets
    )


_RESULTS_PREFIXES: dict[str, tuple[str, ...]] = {
    "honoured": ("$", ""),
    "ignored": (),
    "plain_only": ("",),
    "dollar_only": ("$",),
}


class SfmcApi(CustomObjectsApi, SoapApi, JourneysApi):
    """The emulated SFMC account: credentials, DEs, contacts, journeys, async jobs.

    Args:
        store: Persistence.
        faults: Fault decisions (used for async jobs and early token expiry).
        client_id: Installed-package client id.
        client_secret: Installed-package client secret.
        account_id: MID; when set, a token request naming another MID is refused.
        token_ttl: Token lifetime (``expires_in``), enforced.
        async_delay_ms: Time from async submission to processing.
    """

    def __init__(
        self,
        *,
        store: Store,
        faults: FaultInjector,
        client_id: str,
        client_secret: str,
        account_id: str | None = None,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        async_delay_ms: int = 20,
    ) -> None:
        """Set up an empty account bound to ``store``."""
        self.store = store
        self.faults = faults
        self.client_id = client_id
        self.client_secret = client_secret
        self.account_id = account_id
        self.token_ttl = token_ttl
        self.tokens = TokenRegistry()
        self.writer = RowWriter(store)
        self.jobs = AsyncJobQueue(self.writer, async_delay_ms / 1000)
        self.inactive_contacts: set[str] = set()
        self._lock = threading.Lock()
        self._des: dict[str, CompiledDataExtension] = {}
        self._des_by_id: dict[str, CompiledDataExtension] = {}
        for definition in store.load_data_extensions():
            self._register(parse_data_extension(definition))

    # -- account set-up --------------------------------------------------------------------

    def _register(self, de: DataExtension) -> CompiledDataExtension:
        compiled = CompiledDataExtension(de)
        with self._lock:
            self._des[de.key.casefold()] = compiled
            self._des_by_id[de.id.casefold()] = compiled
        return compiled

    def add_data_extension(self, raw: Mapping[str, Any]) -> DataExtension:
        """Create or redefine a DE (existing rows are kept).

        Args:
            raw: Definition in the file format.

        Returns:
            The parsed definition.

        Raises:
            DefinitionError: If the definition is invalid.
        """
        de = parse_data_extension(dict(raw))
        self.store.save_data_extension(de.key, de.to_dict())
        self._register(de)
        return de

    def data_extension(self, key: str) -> CompiledDataExtension | None:
        """Find a DE by external key (case-insensitive).

        Args:
            key: External key.

        Returns:
            The DE or None.
        """
        return self._des.get(key.casefold())

    def data_extensions(self) -> list[DataExtension]:
        """Return every DE definition.

        Returns:
            Definitions in key order.
        """
        with self._lock:
            return [self._des[k].de for k in sorted(self._des)]

    def _resolve_ref(self, ref: str) -> tuple[CompiledDataExtension | None, str, str]:
        """Resolve ``key:<key>`` or ``<id>`` from a URL; returns (de, key, id)."""
        if ref[:4].lower() == "key:":
            key = ref[4:]
            return self.data_extension(key), key, ""
        return self._des_by_id.get(ref.casefold()), "", ref

    def add_event_definition(self, raw: str | Mapping[str, Any]) -> EventDefinition:
        """Register (or redefine) a journey entry event definition.

        Args:
            raw: A key, or ``{"key": …, "data_extension": <entry DE key>}``.

        Returns:
            The parsed definition.

        Raises:
            DefinitionError: If the definition is malformed or names an unknown DE.
        """
        definition = parse_event_definition(raw if isinstance(raw, str) else dict(raw))
        if definition.data_extension is not None:
            cde = self.data_extension(definition.data_extension)
            if cde is None:
                raise DefinitionError(
                    f"Event definition {definition.key!r} names data extension "
                    f"{definition.data_extension!r}, which does not exist."
                )
            definition = EventDefinition(definition.key, cde.de.key)
        self.store.add_event_definition(definition.key, definition.data_extension)
        return definition

    def _event_data_problem(self, data_extension: str | None, data: dict[str, Any]) -> str | None:
        """Check an event's ``Data`` against its entry DE, like SFMC before it accepts it.

        Args:
            data_extension: Key of the definition's entry DE (None: nothing to check).
            data: The event's data.

        Returns:
            The message of the first problem, or None.
        """
        cde = None if data_extension is None else self.data_extension(data_extension)
        if cde is None:
            return None
        for name, value in data.items():
            found = cde.de.column(name)
            if found is None:
                return (
                    f"Data Validation or Conversion Error: Field '{name}' does not exist in "
                    f"data extension '{cde.de.key}'."
                )
            _, validator, empty_is_null = cde.columns[found.name]
            if value is None or (empty_is_null and value == ""):
                reason = None if found.nullable and not found.primary_key else REASON_NOT_NULL
            else:
                reason = validator(value)
            if reason is not None:
                return f"Data Validation or Conversion Error: {column_message(found.name, reason)}"
        return None

    def rows(self, key: str) -> list[dict[str, Any]]:
        """Return a DE's rows after processing due async jobs.

        Args:
            key: External key.

        Returns:
            Rows with columns in defined spelling and order.

        Raises:
            KeyError: If the DE does not exist.
        """
        self.jobs.process_due()
        cde = self.data_extension(key)
        if cde is None:
            raise KeyError(f"Unknown data extension {key!r}")
        return [cde.ordered(row) for row in self.store.list_rows(cde.de.id)]

    # -- auth ------------------------------------------------------------------------------

    def is_authorized(self, authorization: str | None) -> bool:
        """Check an ``Authorization`` header.

        Args:
            authorization: Header value.

        Returns:
            True for ``Bearer <token>`` with a live token.
        """
        if not authorization:
            return False
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.tokens.is_valid(token.strip(), self.faults.config.token_expiry_s)

    @staticmethod
    def not_authorized() -> ApiResponse:
        """Return SFMC's 401 for a missing, unknown or expired token.

        Returns:
            The 401 response.
        """
        return ApiResponse(
            401, {"documentation": DOCS_URL, "errorcode": 0, "message": "Not Authorized"}
        )

    def token(self, req: ApiRequest) -> ApiResponse:
        """``POST /v2/token`` (JSON or form body).

        Args:
            req: The request.

        Returns:
            A token, or an OAuth-style error.
        """
        params: dict[str, Any]
        content_type = (req.headers.get("Content-Type") or "").lower()
        text = req.body.decode("utf-8", errors="replace")
        if "application/x-www-form-urlencoded" in content_type:
            params = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
        else:
            try:
                parsed = json.loads(text) if text.strip() else {}
            except ValueError:
                parsed = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
            if not isinstance(parsed, dict):
                return _oauth_error(400, "invalid_request", "The request body is not valid.")
            params = parsed
        if params.get("grant_type") != "client_credentials":
            return _oauth_error(
                400,
                "unsupported_grant_type",
                'Use "client_credentials" as the value for "grant_type".',
            )
        if params.get("client_id") != self.client_id or params.get("client_secret") != (
            self.client_secret
        ):
            return _oauth_error(
                401,
                "invalid_client",
                "Client authentication failed. Make sure that the client ID and client secret "
                "are valid and that the package is installed and enabled.",
            )
        requested_mid = params.get("account_id")
        if (
            self.account_id is not None
            and requested_mid not in (None, "")
            and str(requested_mid) != str(self.account_id)
        ):
            return _oauth_error(
                401, "invalid_grant", "The account specified is not authorized for the client."
            )
        base = req.base_url.rstrip("/") + "/"
        return ApiResponse(
            200,
            {
                "access_token": self.tokens.issue(self.token_ttl),
                "token_type": "Bearer",
                "expires_in": self.token_ttl,
                "scope": GRANTED_SCOPES,
                "soap_instance_url": base,
                "rest_instance_url": base,
            },
        )

    def legacy_token(self, req: ApiRequest) -> ApiResponse:
        """``POST /v1/requestToken`` (legacy packages).

        The lifetime is 3600 s, or ``token_ttl`` when that was changed from its default.

        Args:
            req: The request.

        Returns:
            ``{"accessToken", "expiresIn"}`` or a 401.
        """
        try:
            params = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(params, dict):
            return invalid_format()
        if params.get("clientId") != self.client_id or params.get("clientSecret") != (
            self.client_secret
        ):
            return ApiResponse(
                401, {"message": "Unauthorized", "errorcode": 1, "documentation": ""}
            )
        ttl = LEGACY_TOKEN_TTL if self.token_ttl == DEFAULT_TOKEN_TTL else self.token_ttl
        return ApiResponse(200, {"accessToken": self.tokens.issue(ttl), "expiresIn": ttl})

    # -- sync rows -------------------------------------------------------------------------

    @staticmethod
    def _unknown_de(key: str, de_id: str) -> ApiResponse:
        if key:
            return error(400, f"Data Extension with external key {key} not found.", 10000)
        return error(400, f"Data Extension with id {de_id} not found.", 10000)

    @staticmethod
    def _rowset_failure(cde: CompiledDataExtension, issues: list[RowIssue]) -> ApiResponse:
        return error(
            400,
            unable_to_save_message(cde.de.id),
            10006,
            additionalErrors=[
                {"message": issue.message, "errorcode": 10000, "documentation": ""}
                for issue in issues
            ],
        )

    def _rowset_answer(
        self, cde: CompiledDataExtension, outcome: RowsetOutcome
    ) -> ApiResponse | None:
        """Return the 400 for a rowset that stopped early, or None when every row was saved."""
        if outcome.never_saved:
            return error(400, unable_to_save_message(cde.de.id), 10006)
        if outcome.issues:
            return self._rowset_failure(cde, outcome.issues)
        if outcome.unknown_primary_key is not None:
            return error(400, f"Primary key '{outcome.unknown_primary_key}' does not exist.", 10000)
        return None

    def rowset(self, req: ApiRequest) -> ApiResponse:
        """``POST /hub/v1/dataevents/key:{key}/rowset`` — ordered, non-atomic upsert.

        Args:
            req: The request (``params["ref"]`` is ``key:<key>`` or a DE id).

        Returns:
            200 echoing the rows, or a 400.
        """
        cde, key, de_id = self._resolve_ref(req.params["ref"])
        if cde is None:
            return self._unknown_de(key, de_id)
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(body, list):
            return invalid_format()
        rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for item in body:
            if not isinstance(item, dict):
                return invalid_format()
            keys = item.get("keys")
            values = item.get("values")
            keys = {} if keys is None else keys
            values = {} if values is None else values
            if not isinstance(keys, dict) or not isinstance(values, dict):
                return invalid_format()
            rows.append((keys, values))
        config = self.faults.config
        outcome = self.writer.apply_rowset(
            cde, rows, config.bare_10006_folded(), sfmc_dates=config.date_storage == "sfmc"
        )
        return self._rowset_answer(cde, outcome) or ApiResponse(200, body)

    def row_put(self, req: ApiRequest) -> ApiResponse:
        """``PUT /hub/v1/dataevents/key:{key}/rows/{pk}:{value}[,{pk2}:{value2}]``.

        Args:
            req: The request (``params["ref"]`` and still-encoded ``params["pks"]``).

        Returns:
            200 ``{"keys", "values"}``, or a 400.
        """
        cde, key, de_id = self._resolve_ref(req.params["ref"])
        if cde is None:
            return self._unknown_de(key, de_id)
        keys: dict[str, Any] = {}
        for part in unquote(req.params["pks"]).split(","):
            name, sep, value = part.partition(":")
            if not sep or not name:
                return error(400, "Parameter {primaryKeys} is invalid.", 10001)
            keys[name] = value
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        values = body.get("values") if isinstance(body, dict) else None
        if values is None:
            values = {}
        if not isinstance(body, dict) or not isinstance(values, dict):
            return invalid_format()
        config = self.faults.config
        outcome = self.writer.apply_rowset(
            cde,
            [(keys, values)],
            config.bare_10006_folded(),
            sfmc_dates=config.date_storage == "sfmc",
        )
        return self._rowset_answer(cde, outcome) or ApiResponse(
            200, {"keys": keys, "values": values}
        )

    # -- async rows ------------------------------------------------------------------------

    def async_upsert(self, req: ApiRequest) -> ApiResponse:
        """``PUT /data/v1/async/dataextensions/key:{key}/rows``.

        Args:
            req: The request.

        Returns:
            202 with the request id, or a 400.
        """
        return self._async_submit(req, insert=False)

    def async_insert(self, req: ApiRequest) -> ApiResponse:
        """``POST /data/v1/async/dataextensions/key:{key}/rows``.

        Args:
            req: The request.

        Returns:
            202 with the request id, or a 400.
        """
        return self._async_submit(req, insert=True)

    def _async_submit(self, req: ApiRequest, *, insert: bool) -> ApiResponse:
        cde, key, de_id = self._resolve_ref(req.params["ref"])
        if cde is None:
            message = (
                "Failed to resolve the Custom Object from the provided ObjectReferenceIdentifier "
                f"[Id: {de_id}, Key: {key}]."
            )
            return ApiResponse(
                400,
                {
                    "requestId": str(uuid.uuid4()),
                    "resultMessages": [_result_message("CustomObjectNotFound", message)],
                },
            )
        sfmc_dates = self.faults.config.date_storage == "sfmc" and bool(cde.date_columns)
        items: Any = None if sfmc_dates else cde.decode_clean_items(req.body)
        clean = items is not None
        if not clean:
            try:
                body = parse_json(req.body)
            except ValueError:
                return invalid_format()
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                return invalid_format()
        if len(items) > MAX_ASYNC_ITEMS:
            return error(400, f"The maximum number of items is {MAX_ASYNC_ITEMS}.", 10005)
        if not items:
            return error(400, "At least one item is required.", 10002)
        if not clean and not all(isinstance(item, dict) for item in items):
            return invalid_format()
        job = self.jobs.submit(
            cde, items, insert=insert, faults=self.faults.decide_job(), clean=clean
        )
        messages: list[dict[str, Any]] = []
        if self.faults.config.async_accept_messages:
            messages = [dict(m) for m in ACCEPT_MESSAGES]
        return ApiResponse(202, {"requestId": job.request_id, "resultMessages": messages})

    @staticmethod
    def _job_not_found(request_id: str) -> ApiResponse:
        message = (
            "Unable to locate an Async Request Status Record for the provided RequestId: "
            f"{request_id}."
        )
        return ApiResponse(
            200,
            {
                "requestId": str(uuid.uuid4()),
                "resultMessages": [_result_message("AsyncRequestStatusNotFound", message)],
            },
        )

    def _job(self, request_id: str) -> AsyncJob | None:
        """Find a job: as it is now, or (``async_status_blocks``) once it has been processed."""
        if self.faults.config.async_status_blocks:
            return self.jobs.get(request_id)
        return self.jobs.peek(request_id)

    def async_status(self, req: ApiRequest) -> ApiResponse:
        """``GET /data/v1/async/{requestId}/status``, answered at once.

        Reports ``Pending`` before pickup, ``Executing`` while the job runs, then ``Complete``
        or ``Error``; the ``async_status_*`` modes make the report lag (`StatusScript`).

        Args:
            req: The request.

        Returns:
            200 with the job status (or without one, or the not-found result message).
        """
        job = self._job(req.params["id"])
        if job is None:
            return self._job_not_found(req.params["id"])
        config = self.faults.config
        state = self.jobs.report(
            job,
            StatusScript(
                missing=config.async_status_missing_polls,
                pending=config.async_pending_polls,
                executing=config.async_executing_polls,
                transient_error=config.async_transient_error_polls,
            ),
        )
        if state == MISSING:
            return ApiResponse(200, {"requestId": str(uuid.uuid4()), "resultMessages": []})
        transient = state == ERROR and job.status == COMPLETE
        status: dict[str, Any] = {"callDateTime": sfmc_timestamp(job.call_time)}
        if job.completion_time is not None and state in {COMPLETE, ERROR} and not transient:
            status["completionDateTime"] = sfmc_timestamp(job.completion_time)
        has_errors = transient or (job.has_errors and state in {COMPLETE, ERROR})
        status["hasErrors"] = has_errors
        if job.pickup_time is not None and state != PENDING:
            status["pickupDateTime"] = sfmc_timestamp(job.pickup_time)
        status["requestStatus"] = state
        status["resultStatus"] = "Has Errors" if has_errors else "OK"
        status["requestId"] = job.request_id
        return ApiResponse(200, {"status": status, "requestId": str(uuid.uuid4())})

    def async_results(self, req: ApiRequest) -> ApiResponse:
        """``GET /data/v1/async/{requestId}/results[?$page=N&$pageSize=M]``.

        Which spellings of the page parameters count, and the largest page served, follow the
        ``results_paging`` and ``results_page_cap`` modes; the answer reports the page and page
        size actually served.

        Args:
            req: The request.

        Returns:
            200 with one result item per submitted row (empty while pending).
        """
        config = self.faults.config
        paging = page_params(
            req.query, DEFAULT_RESULTS_PAGE_SIZE, _RESULTS_PREFIXES[config.results_paging]
        )
        if isinstance(paging, ApiResponse):
            return paging
        page, size = paging
        if config.results_page_cap is not None:
            size = min(size, config.results_page_cap)
        job = self._job(req.params["id"])
        if job is None:
            return self._job_not_found(req.params["id"])
        results = job.results if job.finished else []
        start = (page - 1) * size
        return ApiResponse(
            200,
            {
                "page": page,
                "pageSize": size,
                "count": len(results),
                "items": results[start : start + size],
                "requestId": job.request_id,
                "resultMessages": [],
            },
        )

    # -- contacts and journeys -------------------------------------------------------------

    def contacts(self, req: ApiRequest) -> ApiResponse:
        """``POST /contacts/v1/contacts``.

        Args:
            req: The request.

        Returns:
            200 with the contact, or a 400.
        """
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(body, dict):
            return invalid_format()
        contact_key = _contact_key(_get_folded(body, "contactKey"))
        if contact_key is None:
            return error(400, "ContactKey is required.", 10002)
        attribute_sets = body.get("attributeSets")
        if attribute_sets is not None and not isinstance(attribute_sets, list):
            return error(400, "AttributeSets must be an array.", 10001)
        if (
            self.faults.config.contacts_require_attribute_sets
            and not _names_a_creation_set(attribute_sets or [])
            and not self.store.contact_exists(contact_key)
        ):
            return ApiResponse(
                400,
                {
                    "operationStatus": "FAIL",
                    "rowsAffected": 0,
                    "contactKey": contact_key,
                    "requestServiceMessageID": str(uuid.uuid4()),
                    "hasErrors": True,
                    "resultMessages": [
                        {
                            "resultType": "Validation",
                            "resultClass": "Error",
                            "resultCode": "AttributeSetRequired",
                            "message": ATTRIBUTE_SETS_REQUIRED,
                        }
                    ],
                    "serviceMessageID": str(uuid.uuid4()),
                },
            )
        contact_id, is_new = self.store.upsert_contact(contact_key)
        return ApiResponse(
            200,
            {
                "operationStatus": "OK",
                "rowsAffected": 1,
                "contactKey": contact_key,
                "contactId": contact_id,
                "contactTypeID": 0,
                "isNewContactKey": is_new,
                "requestServiceMessageID": str(uuid.uuid4()),
                "hasErrors": False,
                "resultMessages": [],
                "serviceMessageID": str(uuid.uuid4()),
            },
        )

    @staticmethod
    def _unknown_event_definition(key: str, status: int = 400) -> ApiResponse:
        return error(status, f"Event definition key '{key}' was not found.", 30003)

    @staticmethod
    def _inactive(contact_key: str) -> str:
        return f"Contact '{contact_key}' is not active."

    def event(self, req: ApiRequest) -> ApiResponse:
        """``POST /interaction/v1/events`` (property names case-insensitive).

        Args:
            req: The request.

        Returns:
            201 ``{"eventInstanceId"}``, or a 400.
        """
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(body, dict):
            return invalid_format()
        contact_key = _contact_key(_get_folded(body, "ContactKey"))
        if contact_key is None:
            return error(400, "ContactKey is required.", 10002)
        raw_definition = _get_folded(body, "EventDefinitionKey")
        if not isinstance(raw_definition, str) or not raw_definition:
            return error(400, "EventDefinitionKey is required.", 10002)
        data = _get_folded(body, "Data")
        if data is None:
            data = {}
        if not isinstance(data, dict):
            return error(400, "Data must be an object.", 10001)
        found = self.store.event_definition(raw_definition)
        if found is None:
            return self._unknown_event_definition(raw_definition)
        definition, data_extension = found
        if contact_key in self.inactive_contacts:
            return error(400, self._inactive(contact_key), 30001)
        problem = self._event_data_problem(data_extension, data)
        if problem is not None:
            return error(400, problem, 10000)
        instance_id = str(uuid.uuid4())
        self.store.add_events([(contact_key, definition, data, instance_id)])
        self.store.enter_journeys(definition, [contact_key])
        return ApiResponse(201, {"eventInstanceId": instance_id})

    def async_events(self, req: ApiRequest) -> ApiResponse:
        """``POST /interaction/v1/async/events`` (up to 100 members).

        Args:
            req: The request.

        Returns:
            202 with a per-member outcome in request order, or a 400.
        """
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(body, dict):
            return invalid_format()
        raw_definition = _get_folded(body, "eventDefinitionKey")
        if not isinstance(raw_definition, str) or not raw_definition:
            return error(400, "EventDefinitionKey is required.", 10002)
        members = _get_folded(body, "members")
        if not isinstance(members, list) or not members:
            return error(400, "Members are required.", 10002)
        if len(members) > MAX_ASYNC_EVENT_MEMBERS:
            return error(400, "Interaction Count Limit Exceeded", 10000)
        found = self.store.event_definition(raw_definition)
        if found is None:
            return self._unknown_event_definition(raw_definition)
        definition, data_extension = found
        outcomes: list[dict[str, Any]] = []
        queued: list[tuple[str, str, Any, str]] = []
        for member in members:
            outcome = self._member_outcome(member, data_extension)
            if "eventInstanceId" in outcome:
                data = _get_folded(member, "data") or {}
                queued.append((outcome["contactKey"], definition, data, outcome["eventInstanceId"]))
            outcomes.append(outcome)
        self.store.add_events(queued)
        self.store.enter_journeys(definition, [contact for contact, *_ in queued])
        return ApiResponse(
            202,
            {
                "requestId": str(uuid.uuid4()),
                "count": len(members),
                "notQueuedCount": len(members) - len(queued),
                "members": outcomes,
            },
        )

    def _member_outcome(self, member: Any, data_extension: str | None) -> dict[str, Any]:
        """Decide one async-event member: queued (with an instance id) or refused."""
        if not isinstance(member, dict):
            return {"contactKey": None, "errorcode": 10002, "message": "ContactKey is required."}
        raw_key = _get_folded(member, "contactKey")
        contact_key = _contact_key(raw_key)
        if contact_key is None:
            return {"contactKey": raw_key, "errorcode": 10002, "message": "ContactKey is required."}
        data = _get_folded(member, "data")
        if data is not None and not isinstance(data, dict):
            return {
                "contactKey": contact_key,
                "errorcode": 10001,
                "message": "Data must be an object.",
            }
        if contact_key in self.inactive_contacts:
            return {
                "contactKey": contact_key,
                "errorcode": 30001,
                "message": self._inactive(contact_key),
            }
        problem = self._event_data_problem(data_extension, data or {})
        if problem is not None:
            return {"contactKey": contact_key, "errorcode": 10000, "message": problem}
        return {"contactKey": contact_key, "eventInstanceId": str(uuid.uuid4())}

    # -- reads -----------------------------------------------------------------------------

    def customobjectdata_get(self, req: ApiRequest) -> ApiResponse:
        """``GET /data/v1/customobjectdata/key/{key}/rowset`` (names lower-cased, like SFMC).

        Args:
            req: The request.

        Returns:
            200 with a page of rows, or a 404.
        """
        key = req.params["key"]
        cde = self.data_extension(key)
        if cde is None:
            return error(404, "Data Extension not found", 30003)
        paging = page_params(req.query, DEFAULT_ROWSET_PAGE_SIZE)
        if isinstance(paging, ApiResponse):
            return paging
        page, size = paging
        self.jobs.process_due()
        de = cde.de
        total = self.store.count_rows(de.id)
        rows = self.store.list_rows(de.id, offset=(page - 1) * size, limit=size)
        pk_names = cde.primary_key_names
        items = [
            {
                "keys": {k.lower(): v for k, v in cde.ordered(row).items() if k in pk_names},
                "values": {k.lower(): v for k, v in cde.ordered(row).items() if k not in pk_names},
            }
            for row in rows
        ]
        links = {"self": f"/v1/customobjectdata/key/{de.key}/rowset?$page={page}"}
        if page * size < total:
            links["next"] = f"/v1/customobjectdata/key/{de.key}/rowset?$page={page + 1}"
        if page > 1:
            links["previous"] = f"/v1/customobjectdata/key/{de.key}/rowset?$page={page - 1}"
        expires = datetime.now(UTC) + timedelta(minutes=20)
        return ApiResponse(
            200,
            {
                "links": links,
                "requestToken": str(uuid.uuid4()),
                "tokenExpireDateUtc": sfmc_timestamp(expires),
                "customObjectId": de.id,
                "customObjectKey": de.key,
                "pageSize": size,
                "page": page,
                "count": total,
                "top": 0,
                "items": items,
            },
        )

    def event_definition_get(self, req: ApiRequest) -> ApiResponse:
        """``GET /interaction/v1/eventDefinitions/key:{key}``.

        A definition bound to an entry DE names it (``dataExtensionId``,
        ``dataExtensionName``), so a client can read the DE's fields.

        Args:
            req: The request.

        Returns:
            200 with the definition, or a 404.
        """
        found = self.store.event_definition(req.params["key"])
        if found is None:
            return self._unknown_event_definition(req.params["key"], status=404)
        definition, data_extension = found
        body: dict[str, Any] = {
            "id": str(uuid.uuid5(_EVENT_NAMESPACE, definition.casefold())),
            "type": "APIEvent",
            "name": definition,
            "mode": "Production",
            "key": definition,
            "eventDefinitionKey": definition,
            "status": "Active",
            "category": "Event",
            "interactionCount": 0,
            "publishedInteractionCount": 0,
            "isVisibleInPicker": True,
        }
        cde = None if data_extension is None else self.data_extension(data_extension)
        if cde is not None:
            body["dataExtensionId"] = cde.de.id
            body["dataExtensionName"] = cde.de.name
        return ApiResponse(200, body)
