"""Helpers that drive the real `target-sfmc` CLI against the emulator over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from target_sfmc.emulator import SfmcEmulator

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLIENT_ID = "e2e-client"
CLIENT_SECRET = "e2e-secret-value-never-logged"
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"


@dataclass
class TargetRun:
    """Outcome of one CLI run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


def singer_lines(
    stream: str,
    schema: dict,
    records: list[dict],
    key_properties: list[str] | None = None,
    state: dict | None = None,
) -> list[str]:
    """Build Singer input lines for one stream."""
    lines = [
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": stream,
                "schema": schema,
                "key_properties": key_properties or [],
            }
        )
    ]
    lines += [json.dumps({"type": "RECORD", "stream": stream, "record": r}) for r in records]
    if state is not None:
        lines.append(json.dumps({"type": "STATE", "value": state}))
    return lines


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


def run_target(
    tmp_path: Path,
    config: dict[str, Any],
    lines: list[str] | str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> TargetRun:
    """Run `python -m target_sfmc --config <file>` with the lines on stdin."""
    config_path = tmp_path / f"config-{len(list(tmp_path.glob('config-*.json')))}.json"
    config_path.write_text(json.dumps(config))
    text = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
    proc = subprocess.run(
        [sys.executable, "-m", "target_sfmc", "--config", str(config_path)],
        input=text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return TargetRun(proc.returncode, proc.stdout, proc.stderr)
