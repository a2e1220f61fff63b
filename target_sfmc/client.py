"""SFMC client: the REST endpoints for rows (sync and async), Contacts, Journey events and exits.

Authenticated calls are in :mod:`target_sfmc.client_base`, Data Extension definitions in
:mod:`target_sfmc.client_definitions`; :class:`SfmcClient` has them all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from target_sfmc.client_definitions import DataExtensionCalls
from target_sfmc.errors import SfmcApiError

ASYNC_RESULTS_PAGE_SIZE = 5000
MAX_RESULTS_PAGES = 1000


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


class SfmcClient(DataExtensionCalls):
    """Thread-safe client for the SFMC REST endpoints the target uses."""

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
