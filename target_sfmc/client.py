"""SFMC REST client: endpoints, bearer auth with refresh on 401, SFMC error bodies."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

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
        self.tokens = TokenProvider(
            self.transport,
            auth_base_url=settings.auth_base_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            account_id=settings.account_id,
            legacy=settings.uses_legacy_auth,
            budget=self.budget,
        )

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
    ) -> Any:
        """Call a REST endpoint and return its JSON body.

        Args:
            method: HTTP method.
            path: Path below the REST base URL.
            endpoint: Short endpoint name for logs, stats and errors.
            payload: JSON payload (encoded exactly), or None.
            body: Pre-encoded JSON body (takes precedence over payload).

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
                retry_on=_is_unsaved_without_details,
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

    def upsert_rowset(self, key: str, body: bytes) -> None:
        """Synchronously upsert up to 50 rows encoded as ``[{"keys":…,"values":…}]``.

        Args:
            key: Data Extension external key.
            body: Encoded rowset.
        """
        self.call(
            "POST", f"/hub/v1/dataevents/{self._de_path(key)}/rowset", endpoint="rowset", body=body
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
        messages = answer.get("resultMessages") if isinstance(answer, dict) else None
        if not request_id or messages:
            first = messages[0] if isinstance(messages, list) and messages else {}
            raise SfmcApiError(
                endpoint="async_upsert",
                status=200,
                error_code=first.get("resultCode", "none") if isinstance(first, dict) else "none",
                message=str(first.get("message", "no request id"))
                if isinstance(first, dict)
                else "no request id",
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

    def async_results(self, request_id: str) -> list[dict[str, Any]]:
        """Read every per-row result of an async request, in submission order.

        Args:
            request_id: The request id.

        Returns:
            One item per submitted row.
        """
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.call(
                "GET",
                f"/data/v1/async/{quote(request_id, safe='')}/results"
                f"?$page={page}&$pageSize={ASYNC_RESULTS_PAGE_SIZE}",
                endpoint="async_results",
            )
            batch = answer.get("items", []) if isinstance(answer, dict) else []
            items.extend(item for item in batch if isinstance(item, dict))
            count = answer.get("count", 0) if isinstance(answer, dict) else 0
            if not batch or len(items) >= int(count or 0):
                return items
            page += 1

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
