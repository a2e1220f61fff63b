"""Contacts: each Contact Key is created (or updated) once per run, before its Identify row."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from target_sfmc.errors import SfmcApiError, TargetSfmcError, without_quoted_values
from target_sfmc.loading.concurrency import run_all

if TYPE_CHECKING:
    from collections.abc import Iterable
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient

_BAD_REQUEST = 400
# This many identical refusals in a row stop the run with one sentence.
REPEATED_REFUSALS_TO_STOP = 20


@dataclass
class ContactRegistry:
    """Remembers which Contacts this run created (or is creating); shared by every stream.

    Streams drain side by side, so two of them can need the same new Contact at once: the
    first asks SFMC, the other waits for that answer instead of asking again.
    """

    client: SfmcClient
    executor: Executor
    # Contact Key -> its creation: None once created, SFMC's refusal, or still under way.
    _creations: dict[str, Future[SfmcApiError | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # The same refusal, again and again with no creation between: an account problem.
    _same_refusals: int = 0
    _last_refusal: tuple[str, str] | None = None

    def ensure(self, contact_keys: Iterable[str]) -> dict[str, SfmcApiError]:
        """Create the contacts not created yet in this run.

        Args:
            contact_keys: Contact Keys the batch needs.

        Returns:
            Contact Key -> SFMC's refusal, for contacts SFMC would not create.
        """
        asked: dict[str, Future[SfmcApiError | None]] = {}
        mine: list[tuple[str, Future[SfmcApiError | None]]] = []
        with self._lock:
            for key in sorted(set(contact_keys)):
                creation = self._creations.get(key)
                if creation is None:
                    creation = self._creations[key] = Future()
                    mine.append((key, creation))
                asked[key] = creation
        run_all(self.executor, self._create, mine)
        self._stop_on_repeated_refusals()
        failures: dict[str, SfmcApiError] = {}
        for key, creation in asked.items():
            refusal = creation.result()  # another stream's creation may still be under way
            if refusal is not None:
                failures[key] = refusal
        return failures

    def _create(self, item: tuple[str, Future[SfmcApiError | None]]) -> None:
        key, creation = item
        try:
            self.client.create_contact(key)
        except SfmcApiError as exc:
            if exc.status != _BAD_REQUEST:
                creation.set_exception(exc)
                raise
            self._note_outcome(exc)
            creation.set_result(exc)
        except BaseException as exc:
            creation.set_exception(exc)
            raise
        else:
            self._note_outcome(None)
            creation.set_result(None)

    def _note_outcome(self, refusal: SfmcApiError | None) -> None:
        with self._lock:
            if refusal is None:
                self._same_refusals, self._last_refusal = 0, None
                return
            reason = (str(refusal.error_code), refusal.message_for_row)
            same = reason == self._last_refusal
            self._same_refusals = self._same_refusals + 1 if same else 1
            self._last_refusal = reason

    def _stop_on_repeated_refusals(self) -> None:
        with self._lock:
            count, reason = self._same_refusals, self._last_refusal
        if count >= REPEATED_REFUSALS_TO_STOP and reason is not None:
            code, message = reason
            raise TargetSfmcError(
                f"SFMC refused the last {count} Contacts it was asked to create, all for the "
                f"same reason (error code {code}: {without_quoted_values(message)}); this is an "
                "account or package setting, not a data problem. Fix it in SFMC, or set "
                "do_not_create_or_update_contacts to true to load the rows without Contacts."
            )
