"""Journey Builder entry events: the batch endpoint for several, the single one otherwise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from target_sfmc.errors import SfmcApiError
from target_sfmc.loading.concurrency import run_all
from target_sfmc.records import LoadResult, SfmcRejection

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient
    from target_sfmc.records import JourneyEvent

EVENTS_PER_BATCH_REQUEST = 100
_BAD_REQUEST = 400


@dataclass
class JourneyEventLoader:
    """Sends entry events and reports each one's outcome."""

    client: SfmcClient
    executor: Executor

    def load(self, definition_key: str, events: list[JourneyEvent]) -> LoadResult:
        """Send events for one definition and report each one's outcome.

        Args:
            definition_key: Event definition key.
            events: Events to send.

        Returns:
            Written and rejected events.
        """
        if len(events) == 1:
            return self._send_one(events[0])
        chunks = [
            events[i : i + EVENTS_PER_BATCH_REQUEST]
            for i in range(0, len(events), EVENTS_PER_BATCH_REQUEST)
        ]
        result = LoadResult()
        for part in run_all(self.executor, lambda c: self._send_batch(definition_key, c), chunks):
            result.extend(part)
        return result

    def _send_one(self, event: JourneyEvent) -> LoadResult:
        try:
            self.client.fire_event(event.contact_key, event.event_definition_key, event.data)
        except SfmcApiError as exc:
            if exc.status != _BAD_REQUEST:
                raise
            return LoadResult(rejected=[SfmcRejection(event, exc.message_for_row, exc.error_code)])
        return LoadResult().confirm((event,))

    def _send_batch(self, definition_key: str, events: list[JourneyEvent]) -> LoadResult:
        members = [{"contactKey": e.contact_key, "data": e.data} for e in events]
        try:
            answers = self.client.fire_events_batch(definition_key, members)
        except SfmcApiError as exc:
            if exc.status != _BAD_REQUEST:
                raise
            return LoadResult(
                rejected=[SfmcRejection(e, exc.message_for_row, exc.error_code) for e in events]
            )
        result = LoadResult()
        for position, event in enumerate(events):
            answer = answers[position] if position < len(answers) else {}
            if answer.get("eventInstanceId"):
                result.confirm((event,))
            else:
                result.rejected.append(
                    SfmcRejection(
                        event,
                        str(answer.get("message") or "SFMC did not queue the event"),
                        answer.get("errorcode"),
                    )
                )
        return result
