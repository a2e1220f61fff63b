"""Shared by the CLI test suites: run `python -m target_sfmc` for real and read what it printed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

SUMMARY = re.compile(
    r"Summary(?: \(run failed\))?: read=(?P<read>\d+) written=(?P<written>\d+) "
    r"merged=(?P<merged>\d+) skipped=(?P<skipped>\d+)(?: \((?P<reasons>[^)]*)\))? "
    r"rejected=(?P<rejected>\d+)(?: deleted=(?P<deleted>\d+))?"
)


@dataclass
class TargetRun:
    """Outcome of one finished CLI run."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    def tail(self) -> str:
        return f"rc={self.returncode}\nstdout={self.stdout[-2000:]}\nstderr={self.stderr[-4000:]}"


def singer_lines(
    stream: str,
    schema: dict,
    records: list[dict],
    key_properties: list[str] | None = None,
    state: dict | None = None,
) -> list[str]:
    """Singer input lines for one stream: SCHEMA, RECORDs, optional STATE."""
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


def target_command(config_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "target_sfmc", "--config", str(config_path), *extra]


def write_config(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / f"config-{len(list(tmp_path.glob('config-*.json')))}.json"
    path.write_text(json.dumps(config))
    return path


def run_target(
    tmp_path: Path,
    config: dict[str, Any],
    lines: Iterable[str] | str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
) -> TargetRun:
    """Run the CLI with the lines on stdin and wait for it."""
    text = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
    proc = subprocess.run(
        target_command(write_config(tmp_path, config)),
        input=text,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    return TargetRun(proc.returncode, proc.stdout, proc.stderr)


def summary(stderr: str) -> dict[str, Any]:
    """The totals of the last summary line the target logged."""
    matches = list(SUMMARY.finditer(stderr))
    assert matches, f"no summary line in stderr:\n{stderr[-3000:]}"
    found = matches[-1].groupdict()
    return {k: (int(v) if v is not None and v.isdigit() else v or "") for k, v in found.items()}
