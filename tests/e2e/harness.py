"""Constants and config for the end-to-end tests; the CLI runner lives in tests/cli_harness.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cli_harness import TargetRun, run_target, singer_lines, summary

from target_sfmc.emulator import SfmcEmulator

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "EXAMPLES",
    "SUBDOMAIN",
    "TargetRun",
    "base_config",
    "run_target",
    "singer_lines",
    "summary",
]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLIENT_ID = "e2e-client"
CLIENT_SECRET = "e2e-secret-value-never-logged"
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"


def base_config(emulator: SfmcEmulator, **overrides: Any) -> dict[str, Any]:
    """A config pointing at the emulator."""
    config: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subdomain": SUBDOMAIN,
        "auth_url": emulator.url,
        "retry_backoff_ms": 50,
    }
    config.update(overrides)
    return config
