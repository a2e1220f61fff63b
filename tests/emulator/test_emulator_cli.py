"""Emulator: the ``sfmc-emulator`` command line."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from target_sfmc.emulator import FaultConfig
from target_sfmc.emulator.cli import build_parser, fault_settings, main
from target_sfmc.emulator.samples import SAMPLE_DATA_EXTENSIONS

LISTENING = re.compile(r"^SFMC emulator listening on (http://127\.0\.0\.1:(\d+))$")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def emulator_command() -> list[str]:
    """The installed console script when present, else the module."""
    script = Path(sys.executable).with_name("sfmc-emulator")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "target_sfmc.emulator.cli"]


def test_cli_serves_until_terminated(tmp_path):
    definitions = tmp_path / "des.json"
    definitions.write_text(
        json.dumps({"data_extensions": SAMPLE_DATA_EXTENSIONS, "event_definitions": ["E1"]})
    )
    proc = subprocess.Popen(
        [
            *emulator_command(),
            "--port",
            "0",
            "--data-extensions",
            str(definitions),
            "--client-id",
            "cli-id",
            "--client-secret",
            "cli-secret",
            "--token-ttl",
            "600",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = LISTENING.match(line)
        assert match, line
        url = match.group(1)
        token = requests.post(
            url + "/v2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "cli-id",
                "client_secret": "cli-secret",
            },
            timeout=10,
        )
        assert token.status_code == 200
        assert token.json()["expires_in"] == 600
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        rowset = requests.post(
            url + "/hub/v1/dataevents/key:IDENTIFY/rowset",
            json=[{"keys": {"Contact Key": "u1"}, "values": {"Plan": "pro"}}],
            headers=auth,
            timeout=10,
        )
        assert rowset.status_code == 200
        rows = requests.get(url + "/_emulator/data-extensions/IDENTIFY/rows", timeout=10).json()
        assert rows == [{"Contact Key": "u1", "Plan": "pro"}]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    assert stderr == ""  # quiet by default


def test_cli_rejects_a_bad_definition_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"data_extensions": [{"key": "X", "fields": [{"name": "A", "type": "Blob"}]}]}')
    assert main(["--port", "0", "--data-extensions", str(bad)]) == 2
    assert "unknown type" in capsys.readouterr().err


def test_cli_fault_flags_map_to_fault_settings():
    args = build_parser().parse_args(
        [
            "--fault-500",
            "0.1",
            "--fault-503",
            "0.05",
            "--fault-429",
            "0.05",
            "--fault-drop",
            "0.05",
            "--fault-token-expiry-s",
            "5",
            "--fault-async-error",
            "0.1",
            "--fault-async-deadlock",
            "0.2",
            "--fault-seed",
            "9",
            "--fault-token-endpoint",
        ]
    )
    assert FaultConfig.from_dict(fault_settings(args)) == FaultConfig(
        error_500=0.1,
        error_503=0.05,
        error_429=0.05,
        drop_connection=0.05,
        token_expiry_s=5.0,
        async_error=0.1,
        async_deadlock=0.2,
        seed=9,
        fault_token_endpoint=True,
    )
    assert fault_settings(build_parser().parse_args([])) == {}
