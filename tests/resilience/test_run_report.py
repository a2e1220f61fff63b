"""`run_report_path`: the real CLI writes one JSON report at the end of every run.

Each test runs `python -m target_sfmc` against the emulator and reads the report it left:
the figures must be the summary line's, the STATE the last one printed on stdout, the error
the sentence the run failed with, and nothing in it a secret, a token or a row value.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

from cli_harness import run_target, summary, target_command, write_config
from conftest import (
    CLIENT_SECRET,
    TRACEBACK,
    USERS_SCHEMA,
    LiveTarget,
    as_text,
    contact_keys,
    make_config,
    record_line,
    schema_line,
    state_line,
    wait_until,
)

if TYPE_CHECKING:
    from pathlib import Path

API_FIGURES = re.compile(r"api_calls=(\d+) retries=(\d+) throttled_429=(\d+)")
# Every value a record below carries is marked, so that finding one in a report is a leak.
MARK = "rowvalue"


def users(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {"user_id": f"{MARK}-{prefix}{i:03d}", "email": f"{MARK}.{prefix}{i}@example.com"}
        for i in range(count)
    ]


def keys(records: list[dict[str, Any]]) -> set[str]:
    return {record["user_id"] for record in records}


def lines_for(*chunks: list[dict[str, Any]]) -> list[str]:
    lines = [schema_line("users", USERS_SCHEMA)]
    for number, records in enumerate(chunks, start=1):
        lines += [record_line("users", record) for record in records]
        lines.append(state_line({"chunk": number}))
    return lines


def read_report(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    assert MARK not in text, text
    assert CLIENT_SECRET not in text
    return json.loads(text)


def assert_no_tokens(report_path: Path, emulator: Any) -> None:
    text = report_path.read_text(encoding="utf-8")
    tokens = emulator.issued_tokens
    assert tokens, "the run never authenticated"
    assert not [token for token in tokens if token in text]


def assert_times(report: dict[str, Any]) -> None:
    started = dt.datetime.fromisoformat(report["started_at"])
    ended = dt.datetime.fromisoformat(report["ended_at"])
    assert report["started_at"].endswith("Z")
    assert report["ended_at"].endswith("Z")
    assert started.utcoffset() == dt.timedelta(0)
    assert started <= ended


def assert_matches_summary(report: dict[str, Any], stderr: str) -> None:
    """The report's totals and API figures are the ones of the summary line."""
    line = summary(stderr)
    totals = report["totals"]
    for name in ("read", "written", "merged", "skipped", "rejected"):
        assert totals[name] == line[name], (name, totals, line)
    reasons = dict(item.split("=") for item in str(line["reasons"]).split(", ") if "=" in item)
    assert totals["skipped_by_reason"] == {k: int(v) for k, v in reasons.items()}
    calls, retries, throttled = map(int, API_FIGURES.findall(stderr)[-1])
    assert report["api"] == {"calls": calls, "retries": retries, "throttled_429": throttled}
    assert totals["deleted"] == 0
    assert set(report["streams"]) <= {"users", "orders"}
    for name in ("read", "written", "merged", "skipped", "rejected", "unconfirmed"):
        assert sum(s[name] for s in report["streams"].values()) == totals[name], name


def test_a_successful_run_reports_its_figures_and_last_state(emulators, tmp_path):
    emulator = emulators.start()
    report_path = tmp_path / "reports" / "nested" / "run.json"  # folders are created
    records = [*users("a", 30), {"email": "   "}]  # one skipped: no identifier
    config = make_config(emulator, run_report_path=str(report_path), batch_size_rows=10)

    run = run_target(tmp_path, config, lines_for(records[:20], records[20:]))

    assert run.returncode == 0, run.tail()
    report = read_report(report_path)
    assert_no_tokens(report_path, emulator)
    assert report["exit_status"] == 0
    assert report["outcome"] == "succeeded"
    assert report["error"] is None
    assert report["last_state"] == run.states[-1] == {"chunk": 2}
    assert_times(report)
    assert_matches_summary(report, run.stderr)
    assert report["streams"]["users"] == report["totals"]
    assert report["totals"]["read"] == 31
    assert report["totals"]["written"] == 30
    assert report["totals"]["skipped_by_reason"] == {"missing_identifier": 1}
    assert report["totals"]["unconfirmed"] == 0
    assert len(contact_keys(emulator)) == 30
    # Replaced atomically: no temporary file is left beside it.
    assert [p.name for p in report_path.parent.iterdir()] == ["run.json"]


def test_a_run_with_nothing_new_is_quiet_and_reports_zeros(emulators, tmp_path):
    emulator = emulators.start()
    report_path = tmp_path / "run.json"
    config = make_config(emulator, run_report_path=str(report_path))

    run = run_target(tmp_path, config, [schema_line("users", USERS_SCHEMA), state_line({"n": 7})])

    assert run.returncode == 0, run.tail()
    summary_lines = [line for line in run.stderr.splitlines() if "Summary" in line]
    assert len(summary_lines) == 1, run.stderr
    assert "Summary: read=0 written=0" in summary_lines[0]
    assert not re.search(r"\| (WARNING|ERROR|CRITICAL) ", run.stderr), run.stderr
    assert run.states == [{"n": 7}]
    # Only reads (the token, the Data Extension's definition): nothing is written.
    assert [
        r for r in emulator.request_log() if r["method"] != "GET" and r["endpoint"] != "token"
    ] == []
    report = read_report(report_path)
    assert report["outcome"] == "succeeded"
    assert report["totals"]["read"] == 0
    calls = len(emulator.request_log())  # the token and definition reads
    assert report["api"] == {"calls": calls, "retries": 0, "throttled_429": 0}
    assert report["last_state"] == {"n": 7}


def test_a_rejected_row_fails_the_run_and_the_report_says_why(emulators, tmp_path):
    emulator = emulators.start()
    report_path = tmp_path / "run.json"
    report_path.write_text('{"outcome": "succeeded", "from": "an earlier run"}\n')
    good = users("g", 10)
    bad = {"user_id": f"{MARK}-bad", "email": f"{MARK}-not-an-email"}
    config = make_config(emulator, run_report_path=str(report_path), batch_size_rows=50)

    run = run_target(tmp_path, config, lines_for(good, [bad]))

    assert run.returncode == 1, run.tail()
    report = read_report(report_path)
    assert report["exit_status"] == 1
    assert report["outcome"] == "failed"
    errors = re.findall(r"\| ERROR +\| target-sfmc +\| (.*)", run.stderr)
    assert errors, run.stderr
    assert report["error"] == errors[-1]
    assert "stream 'users' were rejected" in report["error"]
    assert report["totals"]["rejected"] == 1
    # The SDK emits STATE when everything read is confirmed: never in this run.
    assert run.states == []
    assert report["last_state"] is None
    assert_matches_summary(report, run.stderr)


def test_a_run_that_cannot_authenticate_reports_one_sentence(emulators, tmp_path):
    emulator = emulators.start()
    report_path = tmp_path / "run.json"
    config = make_config(
        emulator, run_report_path=str(report_path), client_secret=f"{MARK}-wrong-secret"
    )

    run = run_target(tmp_path, config, lines_for(users("x", 5)))

    assert run.returncode == 1, run.tail()
    assert TRACEBACK not in run.stderr
    report = read_report(report_path)
    assert report["outcome"] == "failed"
    assert report["error"].startswith("SFMC rejected the token request for authentication")
    assert "client_secret" in report["error"]  # what to check
    assert report["last_state"] is None
    assert run.stdout == ""
    # The Data Extension's definition is read at the stream's SCHEMA, so authentication
    # fails there, before any record is read.
    assert report["totals"]["read"] == 0
    assert_matches_summary(report, run.stderr)


def test_a_refused_config_still_replaces_the_report(emulators, tmp_path):
    emulator = emulators.start()
    report_path = tmp_path / "run.json"
    report_path.write_text('{"outcome": "succeeded", "from": "an earlier run"}\n')
    config = make_config(emulator, streams={"users": {"type": "identify"}})  # no DE key
    config_path = write_config(tmp_path, config)

    proc = subprocess.run(
        target_command(config_path, "--config", "ENV"),
        input=as_text(lines_for(users("c", 2))),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TARGET_SFMC_RUN_REPORT_PATH": str(report_path)},
    )

    assert proc.returncode == 1, proc.stderr
    report = read_report(report_path)
    assert report["outcome"] == "failed"
    assert report["error"] == (
        "Stream 'users' (identify) needs 'data_extension_key' or 'identify_data_extension_key'."
    )
    assert report["error"] in proc.stderr
    assert report["streams"] == {}
    assert report["last_state"] is None
    # Only reads (the token, the Data Extension's definition): nothing is written.
    assert [
        r for r in emulator.request_log() if r["method"] != "GET" and r["endpoint"] != "token"
    ] == []


def test_a_report_path_that_cannot_be_written_is_refused_at_start(emulators, tmp_path):
    emulator = emulators.start()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    config = make_config(emulator, run_report_path=str(blocker / "run.json"))

    run = run_target(tmp_path, config, lines_for(users("p", 2)))

    assert run.returncode == 1, run.tail()
    assert "Setting 'run_report_path' cannot be written" in run.stderr
    # Only reads (the token, the Data Extension's definition): nothing is written.
    assert [
        r for r in emulator.request_log() if r["method"] != "GET" and r["endpoint"] != "token"
    ] == []
    assert TRACEBACK not in run.stderr


def test_sigterm_while_a_batch_loads_is_reported_as_terminated(emulators, tmp_path):
    emulator = emulators.start(latency_ms=300)
    report_path = tmp_path / "run.json"
    config = make_config(
        emulator, run_report_path=str(report_path), batch_size_rows=200, max_concurrent_requests=1
    )
    live = LiveTarget.start(tmp_path, config, snapshot=lambda: contact_keys(emulator))
    live.feed(lines_for(users("s", 200), users("t", 50)))
    assert wait_until(lambda: bool(contact_keys(emulator)), timeout=60), live.stderr[-3000:]
    assert len(contact_keys(emulator)) < 200  # still loading the first batch

    live.send_signal(signal.SIGTERM)
    code = live.wait(timeout=60)

    assert code == 128 + signal.SIGTERM, live.stderr[-3000:]
    report = read_report(report_path)
    assert report["exit_status"] == code
    assert report["outcome"] == "terminated"
    assert report["error"].startswith("Stopped by SIGTERM while a batch was loading")
    assert report["last_state"] == (live.states[-1] if live.states else None)
    assert report["last_state"] != {"chunk": 2}
    assert report["totals"]["unconfirmed"] > 0
    assert_matches_summary(report, live.stderr)


def test_sigterm_while_idle_loads_what_was_read_then_reports(emulators, tmp_path):
    emulator = emulators.start()
    report_path = tmp_path / "run.json"
    config = make_config(emulator, run_report_path=str(report_path), batch_size_rows=20)
    first, second = users("i", 20), users("j", 5)
    live = LiveTarget.start(tmp_path, config, snapshot=lambda: contact_keys(emulator))
    live.feed(lines_for(first, second))  # stdin stays open: the target waits for more
    # The first batch is confirmed (the SDK's timer metric for it is logged once the load
    # returned); the second chunk waits in memory for more input.
    assert wait_until(lambda: '"status":"succeeded"' in live.stderr, timeout=60), live.stderr
    assert keys(first) <= contact_keys(emulator)
    time.sleep(1.0)  # and it has read the lines after that batch (it waits on stdin now)

    live.send_signal(signal.SIGTERM)
    code = live.wait(timeout=60)

    assert code == 128 + signal.SIGTERM, live.stderr[-3000:]
    report = read_report(report_path)
    assert report["outcome"] == "terminated"
    assert report["error"].startswith("Stopped by SIGTERM")
    assert live.states, (report, live.stderr[-3000:])
    assert report["last_state"] == live.states[-1] == {"chunk": 2}
    assert keys(first) | keys(second) <= contact_keys(emulator)
    assert_matches_summary(report, live.stderr)
