"""Fixtures of the corpus tests: emulators started on loopback, stopped at teardown."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from corpus_harness import started_emulator

from target_sfmc.emulator import SfmcEmulator


@pytest.fixture
def emulators():
    """Start emulators with the given Data Extensions: ``emulators(data_extensions)``."""
    with contextlib.ExitStack() as stack:

        def start(data_extensions: list[dict[str, Any]]) -> SfmcEmulator:
            return stack.enter_context(started_emulator(data_extensions))

        yield start
