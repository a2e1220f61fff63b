"""Fixtures of the corpus tests: emulators started on loopback, stopped at teardown."""

from __future__ import annotations

from typing import Any

import pytest
from corpus_harness import CLIENT_ID, CLIENT_SECRET

from target_sfmc.emulator import SfmcEmulator


@pytest.fixture
def emulators():
    """Start emulators with the given Data Extensions: ``emulators(data_extensions)``."""
    started: list[SfmcEmulator] = []

    def start(data_extensions: list[dict[str, Any]]) -> SfmcEmulator:
        emulator = SfmcEmulator(
            data_extensions=data_extensions, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        emulator.start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.close()
