"""Taking contacts out of journeys, in order with the entry events of the same contacts.

``POST /interaction/v1/interactions/contactexit`` takes up to 50 ``{"ContactKey",
"DefinitionKey"}`` (the journey's key) and lists, per contact, the exits SFMC ignored. A
contact that is not in the journey (or whose exit was already requested) has nothing to
leave: that is no error. Other per-contact errors (an unknown journey) refuse that contact.

Streams that both enter and exit journeys send their actions in *waves*: the n-th action of
each contact goes in wave n, so a contact that joins, leaves and joins again within one batch
gets its entry event, exit and entry event in that order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_sfmc.errors import SfmcApiError
from target_sfmc.loading.concurrency import run_all
from target_sfmc.records import JourneyEvent, JourneyExit, LoadResult, SfmcRejection

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient
    from target_sfmc.loading.journeys import JourneyEventLoader

EXITS_PER_REQUEST = 50
_BAD_REQUEST = 400
# Per-contact answers that mean the contact is already out of the journey (or on its way).
_NOTHING_TO_LEAVE = re.compile(
    r"duplicate request|not (?:in|part of|a member of|found in) (?:the |this )?"
    r"(?:journey|interaction)",
    re.IGNORECASE,
)


def _messages(entry: dict[str, Any]) -> list[str]:
    statuses = entry.get("status")
    if not isinstance(statuses, list):
        return [str(entry.get("message") or "SFMC ignored the exit request")]
    return [
        str(status.get("message") or "SFMC ignored the exit request")
        for status in statuses
        if isinstance(status, dict)
    ] or ["SFMC ignored the exit request"]


@dataclass
class JourneyExitLoader:
    """Sends journey exits and reports each contact's outcome."""

    client: SfmcClient
    executor: Executor

    def exit(self, journey_key: str, exits: list[JourneyExit]) -> LoadResult:
        """Take contacts out of one journey.

        Args:
            journey_key: The journey's key.
            exits: The exits (each contact at most once).

        Returns:
            Confirmed exits (a contact not in the journey counts as out) and refused ones.
        """
        chunks = [exits[i : i + EXITS_PER_REQUEST] for i in range(0, len(exits), EXITS_PER_REQUEST)]
        result = LoadResult()
        for part in run_all(self.executor, lambda c: self._send(journey_key, c), chunks):
            result.extend(part)
        return result

    def _send(self, journey_key: str, exits: list[JourneyExit]) -> LoadResult:
        body = [{"ContactKey": e.contact_key, "DefinitionKey": journey_key} for e in exits]
        try:
            errors = self.client.exit_contacts(body)
        except SfmcApiError as exc:
            if exc.status != _BAD_REQUEST:
                raise
            return LoadResult(
                rejected=[SfmcRejection(e, exc.message_for_row, exc.error_code) for e in exits]
            )
        refused: dict[str, str] = {}
        for entry in errors:
            messages = _messages(entry)
            if all(_NOTHING_TO_LEAVE.search(message) for message in messages):
                continue
            refused.setdefault(str(entry.get("contactKey")), "; ".join(messages))
        result = LoadResult()
        for item in exits:
            message = refused.get(item.contact_key)
            if message is None:
                result.confirm((item,))
            else:
                result.rejected.append(SfmcRejection(item, message, "contactexit"))
        return result


def load_in_order(
    actions: list[JourneyEvent | JourneyExit],
    events: JourneyEventLoader,
    exits: JourneyExitLoader,
) -> LoadResult:
    """Send entry events and exits so that each contact's actions keep their input order.

    Args:
        actions: A batch's events and exits, in input order.
        events: The entry event loader.
        exits: The exit loader.

    Returns:
        Every action's outcome.
    """
    waves: list[list[JourneyEvent | JourneyExit]] = []
    seen: dict[str, int] = {}
    for action in actions:
        depth = seen.get(action.contact_key, 0)
        seen[action.contact_key] = depth + 1
        if depth == len(waves):
            waves.append([])
        waves[depth].append(action)
    result = LoadResult()
    for wave in waves:
        entries: dict[str, list[JourneyEvent]] = {}
        leaving: dict[str, list[JourneyExit]] = {}
        for action in wave:
            if isinstance(action, JourneyEvent):
                entries.setdefault(action.event_definition_key, []).append(action)
            else:
                leaving.setdefault(action.journey_key, []).append(action)
        for definition_key, wave_events in entries.items():
            result.extend(events.load(definition_key, wave_events))
        for journey_key, wave_exits in leaving.items():
            result.extend(exits.exit(journey_key, wave_exits))
    return result
