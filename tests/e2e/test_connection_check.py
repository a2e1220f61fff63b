"""`target-sfmc --test`: checks credentials and configured keys without writing rows."""

from __future__ import annotations

import json
import subprocess
import sys

from harness import base_config


def run_check(tmp_path, config):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return subprocess.run(
        [sys.executable, "-m", "target_sfmc", "--config", str(path), "--test"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_passes_and_writes_nothing(example_emulator, tmp_path):
    config = base_config(
        example_emulator,
        identify_data_extension_key="IDENTIFY",
        api_events=[{"event": "Signup", "event_definition_key": "APIEvent-signup"}],
        streams={"orders": {"type": "track", "data_extension_key": "ORDER_COMPLETED"}},
    )
    proc = run_check(tmp_path, config)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""
    assert "OK   data extension 'IDENTIFY'" in proc.stderr
    assert "OK   data extension 'ORDER_COMPLETED'" in proc.stderr
    assert "OK   event definition 'APIEvent-signup'" in proc.stderr
    counts = example_emulator.request_counts()
    # Reads only: rows, Data Extension definitions (primary keys, field count), definitions.
    assert set(counts) == {
        "token",
        "customobjectdata_get",
        "customobjects_search",
        "customobject_fields",
        "event_definition_get",
    }
    assert example_emulator.rows("IDENTIFY") == []


def test_check_reports_missing_keys_and_bad_credentials(example_emulator, tmp_path):
    config = base_config(
        example_emulator,
        identify_data_extension_key="NOPE",
        api_events=[{"event": "Signup", "event_definition_key": "APIEvent-nope"}],
    )
    proc = run_check(tmp_path, config)
    assert proc.returncode == 1
    assert "FAIL data extension 'NOPE'" in proc.stderr
    assert "FAIL event definition 'APIEvent-nope'" in proc.stderr
    proc = run_check(tmp_path, {**config, "client_secret": "wrong-secret"})
    assert proc.returncode == 1
    assert "FAIL authentication" in proc.stderr
    assert "invalid_client" in proc.stderr
    assert "wrong-secret" not in proc.stderr


def test_check_calls_the_soap_api_when_rows_may_be_deleted(example_emulator, tmp_path):
    streams = {"orders": {"type": "track", "data_extension_key": "ORDER_COMPLETED"}}
    plain = run_check(tmp_path, base_config(example_emulator, streams=streams))
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert "SOAP API" not in plain.stderr
    assert "soap" not in example_emulator.request_counts()  # upserts alone never use SOAP

    for settings, why in (
        ({"hard_delete": True}, "(hard_delete)"),
        ({"load_method": "overwrite"}, "(load_method 'overwrite')"),
    ):
        example_emulator.reset_log()
        proc = run_check(tmp_path, base_config(example_emulator, streams=streams, **settings))
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"OK   SOAP API '{example_emulator.url}/Service.asmx': Retrieve answered OK" in (
            proc.stderr
        )
        assert why in proc.stderr
        assert example_emulator.request_counts()["soap"] == {200: 1}

    example_emulator.set_faults(forbidden_endpoints=["soap"])
    refused = run_check(tmp_path, base_config(example_emulator, streams=streams, hard_delete=True))
    assert refused.returncode == 1
    failed = [line for line in refused.stderr.splitlines() if "FAIL SOAP API" in line]
    assert len(failed) == 1, refused.stderr[-2000:]
    assert "HTTP 403" in failed[0]
    assert "(needed by hard_delete)" in failed[0]
    assert "Connection check FAILED." in refused.stderr
