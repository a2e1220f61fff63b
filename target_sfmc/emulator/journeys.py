"""Journeys: membership that entry events add to and ``contactexit`` removes from.

A journey is entered through its entry event definition: every entry event SFMC accepts for
that definition makes the contact a member of each journey using it (up to ten journeys may
share one definition). ``POST /interaction/v1/interactions/contactexit`` takes an array of up
to 50 ``{"ContactKey", "DefinitionKey", "Versions"?}`` (``DefinitionKey`` is the journey's
key) and answers 202 ``{"errors": [...]}``, listing only the contacts whose exit was ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from target_sfmc.emulator.schema import DefinitionError, Journey, parse_journey
from target_sfmc.emulator.wire import ApiRequest, ApiResponse, error, invalid_format, parse_json

if TYPE_CHECKING:
    from collections.abc import Mapping

    from target_sfmc.emulator.faults import FaultInjector
    from target_sfmc.emulator.store import Store

MAX_EXITS_PER_REQUEST = 50
INVALID_JOURNEY = "Exit request Ignored - Invalid Interaction Name."
DUPLICATE_REQUEST = "Exit request Ignored - Duplicate Request"
# The emulator's own words (no capture of SFMC's answer for this case was found).
NOT_IN_JOURNEY = "Exit request Ignored - Contact is not in the journey."
CONTACT_KEY_REQUIRED = "Exit request Ignored - ContactKey is required."
TOO_MANY_CONTACTS = f"At most {MAX_EXITS_PER_REQUEST} contacts can exit in one request."


def _folded(obj: Mapping[str, Any], name: str) -> Any:
    folded = name.casefold()
    return next((value for key, value in obj.items() if key.casefold() == folded), None)


def _versions(raw: Any) -> list[int] | None:
    if isinstance(raw, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
        return raw
    return None


def _ignored(contact_key: Any, journey_key: Any, message: str) -> dict[str, Any]:
    return {
        "contactKey": contact_key,
        "definitionKey": journey_key,
        "status": [{"version": 1, "message": message}],
    }


class JourneysApi:
    """Journeys and ``contactexit``, mixed into `SfmcApi`."""

    store: Store
    faults: FaultInjector

    def add_journey(self, raw: Mapping[str, Any]) -> Journey:
        """Register (or redefine) a journey.

        Args:
            raw: ``{"key", "event_definition_key"}``; the definition must exist.

        Returns:
            The journey.

        Raises:
            DefinitionError: If the journey is malformed or names an unknown definition.
        """
        journey = parse_journey(dict(raw))
        found = self.store.event_definition(journey.event_definition_key)
        if found is None:
            raise DefinitionError(
                f"Journey {journey.key!r} names event definition "
                f"{journey.event_definition_key!r}, which does not exist."
            )
        self.store.add_journey(journey.key, found[0])
        return Journey(journey.key, found[0])

    def contactexit(self, req: ApiRequest) -> ApiResponse:
        """``POST /interaction/v1/interactions/contactexit``.

        Args:
            req: The request: an array of ``{"ContactKey", "DefinitionKey", "Versions"?}``.

        Returns:
            202 ``{"errors": [...]}`` (one entry per contact whose exit was ignored), or a 400.
        """
        try:
            body = parse_json(req.body)
        except ValueError:
            return invalid_format()
        if not isinstance(body, list) or not body:
            return invalid_format()
        if len(body) > MAX_EXITS_PER_REQUEST:
            return error(400, TOO_MANY_CONTACTS, 10005)
        report_absent = self.faults.config.contactexit_reports_absent
        errors: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for item in body:
            if not isinstance(item, dict):
                errors.append(_ignored(None, None, CONTACT_KEY_REQUIRED))
                continue
            contact, raw_journey = _folded(item, "ContactKey"), _folded(item, "DefinitionKey")
            if not isinstance(contact, str) or not contact.strip():
                errors.append(_ignored(contact, raw_journey, CONTACT_KEY_REQUIRED))
                continue
            journey = self.store.journey_key(raw_journey) if isinstance(raw_journey, str) else None
            if journey is None:
                errors.append(_ignored(contact, raw_journey, INVALID_JOURNEY))
                continue
            if (journey.casefold(), contact) in seen:
                errors.append(_ignored(contact, raw_journey, DUPLICATE_REQUEST))
                continue
            seen.add((journey.casefold(), contact))
            left = self.store.exit_journey(journey, contact, _versions(_folded(item, "Versions")))
            if not left and report_absent:
                errors.append(_ignored(contact, raw_journey, NOT_IN_JOURNEY))
        return ApiResponse(202, {"errors": errors})
