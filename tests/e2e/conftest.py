"""Fixtures for end-to-end tests of the CLI against the emulator."""

from __future__ import annotations

import json

import pytest
from harness import CLIENT_ID, CLIENT_SECRET, EXAMPLES

from target_sfmc.emulator import SfmcEmulator


@pytest.fixture
def example_emulator():
    """The emulator loaded with the example Data Extensions."""
    definition = json.loads((EXAMPLES / "data_extensions.json").read_text())
    with SfmcEmulator(
        data_extensions=definition["data_extensions"],
        event_definitions=definition["event_definitions"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    ) as emulator:
        yield emulator
