"""Helpers for the resilience tests: emulators, the real CLI, Singer input and log checks.

Everything here drives `python -m target_sfmc` as a subprocess against an in-process
`SfmcEmulator`, the way a scheduler would run the target.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from cli_harness import summary, target_command, write_config

from target_sfmc.emulator import SfmcEmulator

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

CLIENT_ID = "resilience-client-id"
CLIENT_SECRET = "rs-S3cret-9f3b7c2e41d8-never-logged"
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"  # 28 chars, starts with "mc"
TRACEBACK = "Traceback (most recent call last)"

IDENTIFY_DE = "IDENT"
ORDERS_DE = "ORDERS"

DATA_EXTENSIONS: list[dict[str, Any]] = [
    {
        "key": IDENTIFY_DE,
        "fields": [
            {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
            {"name": "Email", "type": "EmailAddress"},
            {"name": "Score", "type": "Number"},
            {"name": "Plan", "type": "Text", "length": 50},
            {"name": "Nick", "type": "Text", "length": 10},
            {"name": "Joined At", "type": "Date"},
        ],
    },
    {
        "key": ORDERS_DE,
        "fields": [
            {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
            {"name": "Order Id", "type": "Text", "length": 50, "primary_key": True},
            {"name": "Total", "type": "Decimal", "precision": 18, "scale": 2},
            {"name": "Note", "type": "Text", "length": 100},
        ],
    },
]

USERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "score": {"type": ["integer", "null"]},
        "plan": {"type": ["string", "null"]},
        "nick": {"type": ["string", "null"]},
        "joined_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

ORDERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "order_id": {"type": "string"},
        "total": {"type": "number"},
        "note": {"type": ["string", "null"]},
    },
}

STREAMS: dict[str, Any] = {
    "users": {"type": "identify", "data_extension_key": IDENTIFY_DE},
    "orders": {
        "type": "track",
        "data_extension_key": ORDERS_DE,
        "primary_keys": "Contact Key, Order Id",
    },
}


# -- emulators -----------------------------------------------------------------------------


class Emulators:
    """Starts emulators that remember every access token they issue; stops them at teardown.

    The emulator has no public way to list issued tokens, so the token registry's ``issue``
    is wrapped on each instance.
    """

    def __init__(self) -> None:
        self._started: list[SfmcEmulator] = []

    def start(self, **kwargs: Any) -> SfmcEmulator:
        kwargs.setdefault("data_extensions", DATA_EXTENSIONS)
        kwargs.setdefault("client_id", CLIENT_ID)
        kwargs.setdefault("client_secret", CLIENT_SECRET)
        emulator = SfmcEmulator(**kwargs)
        issued: list[str] = []
        registry = emulator.api.tokens
        original_issue = registry.issue

        def issue(ttl: float) -> str:
            token = original_issue(ttl)
            issued.append(token)
            return token

        registry.issue = issue  # type: ignore[method-assign]
        emulator.issued_tokens = issued  # type: ignore[attr-defined]
        emulator.start()
        self._started.append(emulator)
        return emulator

    def close(self) -> None:
        for emulator in self._started:
            emulator.close()


@pytest.fixture
def emulators() -> Iterator[Emulators]:
    factory = Emulators()
    try:
        yield factory
    finally:
        factory.close()


# -- config and input ----------------------------------------------------------------------


def make_config(emulator: SfmcEmulator | None, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subdomain": SUBDOMAIN,
        "retry_backoff_ms": 50,
        "requests_per_second": 50,
        "do_not_create_or_update_contacts": True,
        "streams": STREAMS,
    }
    if emulator is not None:
        config["auth_url"] = emulator.url
    config.update(overrides)
    return config


def schema_line(
    stream: str, schema: dict[str, Any], key_properties: list[str] | None = None
) -> str:
    return json.dumps(
        {
            "type": "SCHEMA",
            "stream": stream,
            "schema": schema,
            "key_properties": key_properties or [],
        }
    )


def record_line(stream: str, record: dict[str, Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": record})


def state_line(value: dict[str, Any]) -> str:
    return json.dumps({"type": "STATE", "value": value})


def as_text(lines: Iterable[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


# -- running the CLI -----------------------------------------------------------------------


@dataclass
class StateSighting:
    """A STATE line and what the emulator held when the test read it."""

    value: dict[str, Any]
    snapshot: Any


@dataclass
class LiveTarget:
    """A running target fed through a pipe; STATE lines are checked as they appear."""

    proc: subprocess.Popen[bytes]
    stderr_path: Path
    snapshot: Callable[[], Any]
    sightings: list[StateSighting] = field(default_factory=list)
    raw_stdout: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @classmethod
    def start(
        cls, tmp_path: Path, config: dict[str, Any], snapshot: Callable[[], Any]
    ) -> LiveTarget:
        config_path = write_config(tmp_path, config)
        stderr_path = tmp_path / f"{config_path.stem}.stderr"
        with stderr_path.open("wb") as stderr:
            proc = subprocess.Popen(
                target_command(config_path),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        live = cls(proc=proc, stderr_path=stderr_path, snapshot=snapshot)
        live._reader = threading.Thread(target=live._read_stdout, daemon=True)
        live._reader.start()
        return live

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", errors="replace")
            self.raw_stdout.append(line)
            if line.strip():
                # Snapshot first: the target emits STATE only after confirming its rows,
                # so whatever those rows are, they are in the emulator by now.
                snapshot = self.snapshot()
                self.sightings.append(StateSighting(json.loads(line), snapshot))

    def feed(self, lines: Iterable[str], *, close: bool = False) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(as_text(lines).encode("utf-8"))
            self.proc.stdin.flush()
            if close:
                self.proc.stdin.close()
        except BrokenPipeError:
            pass

    def send_signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 60) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        return code

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def states(self) -> list[dict[str, Any]]:
        return [s.value for s in self.sightings]


def wait_until(condition: Callable[[], bool], timeout: float = 30, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


# -- checks --------------------------------------------------------------------------------


def assert_accounted(stderr: str, read: int | None = None) -> dict[str, Any]:
    """read = written + merged + skipped + rejected (and read is what was sent, if given)."""
    counts = summary(stderr)
    assert counts["read"] == (
        counts["written"] + counts["merged"] + counts["skipped"] + counts["rejected"]
    ), counts
    if read is not None:
        assert counts["read"] == read, counts
    return counts


def max_requests_in_any_second(emulator: SfmcEmulator) -> int:
    """Most requests whose arrival falls in any window (t - 1 s, t] (the emulator's window)."""
    times = sorted(entry["time"] for entry in emulator.request_log())
    most = 0
    start = 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def contact_keys(emulator: SfmcEmulator, key: str = IDENTIFY_DE) -> set[str]:
    return {row["Contact Key"] for row in emulator.rows(key)}


def sorted_rows(emulator: SfmcEmulator, key: str) -> list[dict[str, Any]]:
    rows = emulator.rows(key)
    return sorted(rows, key=lambda row: json.dumps(row, sort_keys=True, default=str))


def assert_clean_failure_output(text: str, *secrets: str) -> None:
    """No bare traceback, and none of the given values."""
    assert TRACEBACK not in text, text[-4000:]
    for secret in secrets:
        assert secret not in text, f"{secret[:40]!r} leaked:\n{text[-3000:]}"
