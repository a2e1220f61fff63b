"""The SFMC client's authenticated calls: REST and SOAP, on the shared transport and budget.

A REST call carries the bearer token, gets one refresh per 401 and reads SFMC's error bodies;
a SOAP call carries the token in its envelope.

The endpoints are methods of the subclasses: Data Extension definitions and folders in
:mod:`target_sfmc.client_definitions`, rows, Contacts and Journey events in
:mod:`target_sfmc.client`.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from target_sfmc import soap
from target_sfmc.auth import TokenProvider
from target_sfmc.budget import AccountBudget
from target_sfmc.errors import SfmcApiError
from target_sfmc.jsonio import encode_json
from target_sfmc.limiter import RateLimiter
from target_sfmc.transport import ApiStats, RetryPolicy, Transport

if TYPE_CHECKING:
    from xml.etree import ElementTree as ET

    import requests

    from target_sfmc.settings import ClientSettings

LOGGER = logging.getLogger("target-sfmc.client")

MAX_TOKEN_REFRESHES_PER_CALL = 3


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


class ClientBase:
    """Thread-safe authenticated calls to SFMC (REST and SOAP); endpoints are in subclasses."""

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
