"""Contacts: each Contact Key is created (or updated) once per run, before its Identify row."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from target_sfmc.errors import SfmcApiError
from target_sfmc.loading.concurrency import run_all

if TYPE_CHECKING:
    from collections.abc import Iterable
    from concurrent.futures import Executor

    from target_sfmc.client import SfmcClient

_BAD_REQUEST = 400


@dataclass
class ContactRegistry:
    """Remembers which Contacts this run created; shared by every stream."""

    client: SfmcClient
    executor: Executor
    _created: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ensure(self, contact_keys: Iterable[str]) -> dict[str, SfmcApiError]:
        """Create the contacts not created yet in this run.

        Args:
            contact_keys: Contact Keys the batch needs.

        Returns:
            Contact Key -> SFMC's refusal, for contacts SFMC would not create.
        """
        with self._lock:
            missing = sorted(set(contact_keys) - self._created)
        failures: dict[str, SfmcApiError] = {}

        def create(contact_key: str) -> None:
            try:
                self.client.create_contact(contact_key)
            except SfmcApiError as exc:
                if exc.status != _BAD_REQUEST:
                    raise
                failures[contact_key] = exc
                return
            with self._lock:
                self._created.add(contact_key)

        run_all(self.executor, create, missing)
        return failures
