"""The scheduled job of `meltano.yml`, run again and again by real Meltano against the emulator.

`users-to-sfmc` (= `tap-jsonl target-sfmc`) and its hourly schedule are the repository's own;
the test copies `meltano.yml` into a throw-away project (see `test_meltano_run.py` for how
Meltano and the plugins are installed) and runs the job the way a scheduler does — through
`meltano schedule run users-to-sfmc-hourly` or `meltano run users-to-sfmc` — checking what
the emulator received and stored, Meltano's stored STATE, exit codes and the run report.

tap-jsonl 0.3.1 does not read its bookmarks back (see `test_meltano_run.py`): every file its
glob matches is sent again on every run, once per partition in the state. The test measures
what the tap emitted from the tap's own log ("Processed N rows") and proves the target sends
each re-emitted row once and nothing else. For runs with nothing new, or with only a new file,
the loaded files are moved out of the glob after their run, as a landing folder is used.

The emulator's row writer is wrapped so that the test sees every row SFMC received, in order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_meltano_run import (
    CLI_TIMEOUT,
    CLIENT_ID,
    CLIENT_SECRET,
    DE_KEY,
    EXAMPLES,
    EXPECTED,
    INSTALL_TIMEOUT,
    REPO,
    RUN_TIMEOUT,
    SDC_COLUMNS,
    STATE_ID,
    Meltano,
    _check,
    _clean_env,
    cache_dir,
    meltano_executable,
    output_of,
)

from target_sfmc.emulator import SfmcEmulator

JOB = "users-to-sfmc"
SCHEDULE = "users-to-sfmc-hourly"
REPORT = Path("output") / "target-sfmc-run-report.json"
LANDING = Path("examples") / "meltano"  # the tap's glob: examples/meltano/*.jsonl
# A line Meltano relays from the target: `<time> [error    ] target-sfmc  <message>`.
TARGET_LINE = re.compile(r"\[(?P<level>[a-z]+)\s*\] target-sfmc\s+(?P<message>.*)$")
TAP_PROCESSED = re.compile(r"tap-jsonl\s+Processed (\d+) rows from (\S+)")
TRACEBACK = "Traceback (most recent call last)"
MISSING_DE = "USERS_MISSING_DE"


def users(prefix: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "user_id": f"{prefix}-{i:03d}",
            "email": f"{prefix}.{i}@example.com",
            "first_name": f"{prefix.title()} {i}",
            "logins": i,
        }
        for i in range(count)
    ]


class ReceivedRows:
    """Every Data Extension row SFMC received (DE key, Contact Key), in arrival order."""

    def __init__(self, emulator: SfmcEmulator) -> None:
        self.rows: list[tuple[str, str]] = []
        writer = emulator.api.writer
        apply_rowset = writer.apply_rowset

        def recording(cde: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
            for keys, _values in rows:
                folded = {str(name).casefold(): value for name, value in keys.items()}
                self.rows.append((cde.de.key, str(folded.get("contact key"))))
            return apply_rowset(cde, rows, *args, **kwargs)

        writer.apply_rowset = recording  # type: ignore[method-assign]

    def since(self, mark: int) -> Counter[str]:
        """Contact Keys received after ``mark`` rows, with how often each came."""
        return Counter(key for de, key in self.rows[mark:] if de == DE_KEY)


@pytest.fixture(scope="module")
def sfmc():
    definition = json.loads((EXAMPLES / "data_extensions.json").read_text())
    for de in definition["data_extensions"]:
        if de["key"] == DE_KEY:
            de["fields"] += [{"name": name, "type": "Text", "length": 500} for name in SDC_COLUMNS]
    with SfmcEmulator(
        data_extensions=definition["data_extensions"],
        event_definitions=definition.get("event_definitions", []),
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    ) as emu:
        emu.received = ReceivedRows(emu)  # type: ignore[attr-defined]
        yield emu


@pytest.fixture(scope="module")
def meltano(tmp_path_factory: pytest.TempPathFactory, sfmc: SfmcEmulator) -> Meltano:
    """A project holding the repository's `meltano.yml` (the target installed from here)."""
    project = tmp_path_factory.mktemp("scheduled-project")
    config = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    (loader,) = [p for p in config["plugins"]["loaders"] if p["name"] == "target-sfmc"]
    loader["pip_url"] = f"-e {REPO}"
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (project / LANDING).mkdir(parents=True)
    (project / "archive").mkdir()
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        shutil.copy2(path, project / LANDING / path.name)

    exe = meltano_executable()
    env = _clean_env()
    env.update(
        PATH=f"{exe.parent}{os.pathsep}{env.get('PATH', '')}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_DISABLE_TRACKING="true",
        NO_COLOR="1",
        SFMC_EMULATOR_URL=sfmc.url,
        TARGET_SFMC_CLIENT_ID=CLIENT_ID,
        TARGET_SFMC_CLIENT_SECRET=CLIENT_SECRET,
    )
    env.setdefault("UV_CACHE_DIR", str(cache_dir() / "uv"))
    env.setdefault("UV_COMPILE_BYTECODE", "1")
    if "PIP_INDEX_URL" in env:
        env.setdefault("UV_DEFAULT_INDEX", env["PIP_INDEX_URL"])
    if "PIP_CERT" in env:
        env.setdefault("SSL_CERT_FILE", env["PIP_CERT"])
    runner = Meltano(exe=exe, project=project, env=env)
    _check(runner("install", timeout=INSTALL_TIMEOUT), "meltano install")
    return runner


# -- running the job -------------------------------------------------------------------------


def run_job(meltano: Meltano, *options: str, **env: str) -> subprocess.CompletedProcess[str]:
    return meltano("run", *options, JOB, timeout=RUN_TIMEOUT, **env)


def run_schedule(meltano: Meltano, **env: str) -> subprocess.CompletedProcess[str]:
    """What cron, Airflow or Dagster do every hour."""
    return meltano("schedule", "run", SCHEDULE, timeout=RUN_TIMEOUT, **env)


def stored_state(meltano: Meltano) -> dict[str, Any] | None:
    proc = meltano("--environment=dev", "state", "get", STATE_ID)
    if proc.returncode != 0 and "not found" in output_of(proc).lower():
        return None
    _check(proc, "meltano state get")
    return json.loads(proc.stdout)


def report_of(meltano: Meltano) -> dict[str, Any]:
    text = (meltano.project / REPORT).read_text(encoding="utf-8")
    assert CLIENT_SECRET not in text
    assert "@example.com" not in text  # no row values
    return json.loads(text)


def report_bytes(meltano: Meltano) -> bytes | None:
    path = meltano.project / REPORT
    return path.read_bytes() if path.exists() else None


def target_lines(proc: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    """(level, message) of every line the target logged, as Meltano relays them."""
    found = (TARGET_LINE.search(line) for line in output_of(proc).splitlines())
    return [(m["level"], m["message"]) for m in found if m]


def tap_emitted(proc: subprocess.CompletedProcess[str]) -> int:
    """Records tap-jsonl says it sent in this run."""
    return sum(int(count) for count, _path in TAP_PROCESSED.findall(output_of(proc)))


def rows_by_key(sfmc: SfmcEmulator) -> dict[str, dict[str, Any]]:
    rows = sfmc.rows(DE_KEY)
    by_key = {row["Contact Key"]: row for row in rows}
    assert len(by_key) == len(rows), "a Contact Key is stored twice"
    return by_key


def land(meltano: Meltano, name: str, records: list[dict[str, Any]]) -> Path:
    path = meltano.project / LANDING / name
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def archive_landed(meltano: Meltano) -> None:
    """Move loaded files out of the tap's glob (after a run that exited 0)."""
    for path in (meltano.project / LANDING).glob("*.jsonl"):
        path.rename(meltano.project / "archive" / path.name)


def partition_files(state: dict[str, Any]) -> set[str]:
    bookmarks = state["singer_state"]["bookmarks"]["users"]
    return {Path(p["context"]["_sdc_filename"]).name for p in bookmarks["partitions"]}


def assert_stored(sfmc: SfmcEmulator, records: list[dict[str, Any]]) -> None:
    rows = rows_by_key(sfmc)
    for record in records:
        row = rows[record["user_id"]]
        assert (row["Email"], row["First Name"], row["Logins"]) == (
            record["email"],
            record["first_name"],
            record["logins"],
        ), row


def assert_loud_failure(proc: subprocess.CompletedProcess[str], meltano: Meltano) -> str:
    """Exit 1, one error sentence from the target (also in the report), no traceback."""
    assert proc.returncode == 1, output_of(proc)[-4000:]
    out = output_of(proc)
    assert TRACEBACK not in out, out[-4000:]
    errors = [message for level, message in target_lines(proc) if level in {"error", "critical"}]
    assert len(errors) == 1, (errors, out[-4000:])
    (sentence,) = errors
    report = report_of(meltano)
    assert report["exit_status"] == 1
    assert report["outcome"] == "failed"
    assert report["error"] == sentence
    assert report["last_state"] is None
    assert "Incremental state has been updated" not in out
    return sentence


# -- the tests -------------------------------------------------------------------------------


def test_the_job_and_its_hourly_schedule_are_listed(meltano: Meltano) -> None:
    proc = meltano("schedule", "list", "--format=json", timeout=CLI_TIMEOUT)
    _check(proc, "meltano schedule list")
    (schedule,) = json.loads(proc.stdout)["schedules"]["job"]
    assert schedule["name"] == SCHEDULE
    assert schedule["cron_interval"] == "0 * * * *"
    assert schedule["job"] == {"name": JOB, "tasks": ["tap-jsonl target-sfmc"]}


def first_run_loads_everything(meltano: Meltano, sfmc: SfmcEmulator) -> dict[str, Any]:
    received: ReceivedRows = sfmc.received  # type: ignore[attr-defined]
    first = run_schedule(meltano)
    _check(first, "first scheduled run")
    rows = rows_by_key(sfmc)
    assert set(rows) == set(EXPECTED)
    for key, expected in EXPECTED.items():
        assert {k: rows[key][k] for k in expected} == expected, key
    assert received.since(0) == Counter(dict.fromkeys(EXPECTED, 1))
    state = stored_state(meltano)
    assert state is not None
    assert partition_files(state) == {"users-2024-01.jsonl", "users-2024-02.jsonl"}
    report = report_of(meltano)
    assert report["outcome"] == "succeeded"
    assert report["exit_status"] == 0
    assert report["error"] is None
    assert report["totals"]["read"] == tap_emitted(first) == len(EXPECTED)
    assert report["totals"]["written"] == len(EXPECTED)
    assert report["last_state"] == state["singer_state"]
    return state


def rerun_sends_each_re_emitted_row_once(
    meltano: Meltano, sfmc: SfmcEmulator, state: dict[str, Any]
) -> None:
    received: ReceivedRows = sfmc.received  # type: ignore[attr-defined]
    rows, contacts, mark = rows_by_key(sfmc), sfmc.contacts(), len(received.rows)
    again = run_job(meltano)
    _check(again, "second run, same files")
    emitted = tap_emitted(again)
    assert emitted >= len(EXPECTED)
    assert received.since(mark) == Counter(dict.fromkeys(EXPECTED, 1))
    assert rows_by_key(sfmc) == rows
    assert sfmc.contacts() == contacts
    report = report_of(meltano)
    assert report["totals"]["read"] == emitted
    assert report["totals"]["written"] == len(EXPECTED)
    assert report["totals"]["merged"] == emitted - len(EXPECTED)
    assert report["last_state"] == state["singer_state"]  # what Meltano stores: unchanged


def nothing_new_is_a_quiet_success(
    meltano: Meltano, sfmc: SfmcEmulator, state: dict[str, Any]
) -> None:
    seen = len(sfmc.request_log())
    quiet = run_job(meltano)
    _check(quiet, "run with nothing new")
    lines = target_lines(quiet)
    assert [level for level, _ in lines if level not in {"info", "debug"}] == [], lines
    summaries = [message for _, message in lines if "Summary" in message]
    assert len(summaries) == 1, summaries
    assert summaries[0].startswith("Summary: read=0 written=0 merged=0 skipped=0 rejected=0")
    # Only reads (the token, the Data Extension's definition): nothing is written.
    writes = [
        r for r in sfmc.request_log()[seen:] if r["method"] != "GET" and r["endpoint"] != "token"
    ]
    assert writes == []
    report = report_of(meltano)
    assert report["outcome"] == "succeeded"
    assert report["totals"]["read"] == 0
    reads = len(sfmc.request_log()) - seen  # the token (once cached: none) and definitions
    assert report["api"] == {"calls": reads, "retries": 0, "throttled_429": 0}
    assert report["last_state"] == state["singer_state"]


def a_new_file_sends_only_its_rows(
    meltano: Meltano, sfmc: SfmcEmulator, state: dict[str, Any]
) -> None:
    received: ReceivedRows = sfmc.received  # type: ignore[attr-defined]
    rows = rows_by_key(sfmc)
    new = users("u-3", 3)
    new_keys = {r["user_id"] for r in new}
    land(meltano, "users-2024-03.jsonl", new)
    mark = len(received.rows)
    third = run_job(meltano)
    _check(third, "run with a new file")
    assert received.since(mark) == Counter(dict.fromkeys(new_keys, 1))
    after = rows_by_key(sfmc)
    assert set(after) == set(rows) | new_keys
    assert {k: after[k] for k in rows} == rows
    assert_stored(sfmc, new)
    assert {c["contactKey"] for c in sfmc.contacts()} == set(rows) | new_keys
    newer = stored_state(meltano)
    assert newer is not None
    assert partition_files(newer) == partition_files(state) | {"users-2024-03.jsonl"}
    report = report_of(meltano)
    assert report["totals"]["read"] == tap_emitted(third)
    assert report["totals"]["written"] == len(new)
    assert report["last_state"] == newer["singer_state"]


def test_incremental_runs_send_only_what_the_tap_emits(
    meltano: Meltano, sfmc: SfmcEmulator
) -> None:
    # 1. The first scheduled run loads every example row once.
    state = first_run_loads_everything(meltano, sfmc)
    # 2a. Run again, files unchanged: tap-jsonl re-emits its files (once per partition in
    #     the state). SFMC receives each of those rows once, nothing else; nothing changes.
    rerun_sends_each_re_emitted_row_once(meltano, sfmc, state)
    # 2b. Nothing new for the tap (the loaded files left the landing folder): SCHEMA and
    #     STATE only. Quiet success: exit 0, one summary line, no warning, no SFMC call.
    archive_landed(meltano)
    nothing_new_is_a_quiet_success(meltano, sfmc, state)
    # 3. A new file: only its rows reach SFMC; the rows loaded before are not touched.
    a_new_file_sends_only_its_rows(meltano, sfmc, state)
    archive_landed(meltano)
    assert not [o for o in meltano.outputs if CLIENT_SECRET in o]


def test_failures_exit_1_with_one_sentence_and_load_later(
    meltano: Meltano, sfmc: SfmcEmulator
) -> None:
    archive_landed(meltano)
    pending = users("u-5", 2)
    pending_keys = {r["user_id"] for r in pending}
    before_rows = rows_by_key(sfmc)
    before_state = stored_state(meltano)
    land(meltano, "users-2024-05.jsonl", pending)

    # Credentials rotated in SFMC but not in the scheduler: exit 1, one sentence that says
    # what to check, nothing loaded, STATE not advanced.
    wrong_secret = "rotated-secret-not-the-real-one"
    denied = run_schedule(meltano, TARGET_SFMC_CLIENT_SECRET=wrong_secret)
    sentence = assert_loud_failure(denied, meltano)
    assert sentence.startswith("SFMC rejected the token request for authentication")
    assert "client_secret" in sentence
    assert wrong_secret not in output_of(denied)
    assert rows_by_key(sfmc) == before_rows

    # The Data Extension the job loads does not exist (renamed, other business unit): the
    # sentence names it and the stream.
    missing = run_schedule(meltano, TARGET_SFMC_IDENTIFY_DATA_EXTENSION_KEY=MISSING_DE)
    sentence = assert_loud_failure(missing, meltano)
    assert MISSING_DE in sentence
    assert "'users'" in sentence
    assert rows_by_key(sfmc) == before_rows
    assert stored_state(meltano) == before_state

    # Fixed: the next scheduled run loads what the failed ones could not.
    fixed = run_job(meltano)
    _check(fixed, "run after the fix")
    assert set(rows_by_key(sfmc)) == set(before_rows) | pending_keys
    assert_stored(sfmc, pending)
    report = report_of(meltano)
    assert report["outcome"] == "succeeded"
    assert "users-2024-05.jsonl" in partition_files({"singer_state": report["last_state"]})
    archive_landed(meltano)
    assert not [o for o in meltano.outputs if CLIENT_SECRET in o]


def kill_while_loading(meltano: Meltano, sfmc: SfmcEmulator, keys: set[str]) -> int:
    """Run the job and SIGKILL Meltano, the tap and the target once SFMC holds some of the keys.

    SFMC answers slowly meanwhile and the target sends one request at a time, so that the run
    is still loading when it dies, as when a machine or a container dies.

    Returns:
        The killed process's return code.
    """
    sfmc.set_faults(latency_ms=100)
    log_path = meltano.project / "killed-run.log"
    try:
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [str(meltano.exe), "run", JOB],
                cwd=meltano.project,
                env={**meltano.env, "TARGET_SFMC_MAX_CONCURRENT_REQUESTS": "1"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + RUN_TIMEOUT
            while not keys & set(rows_by_key(sfmc)) and proc.poll() is None:
                assert time.monotonic() < deadline, log_path.read_text()[-4000:]
                time.sleep(0.02)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    finally:
        sfmc.set_faults()
    meltano.outputs.append(log_path.read_text())
    return proc.returncode


# Last in this module: Meltano keeps the killed run marked as running until its heartbeat is
# 5 minutes old, and refuses every run of the job without `--force` until then.
def test_a_killed_run_is_completed_by_the_next_one(meltano: Meltano, sfmc: SfmcEmulator) -> None:
    received: ReceivedRows = sfmc.received  # type: ignore[attr-defined]
    archive_landed(meltano)
    big = users("u-4", 100)
    keys = {r["user_id"] for r in big}
    before_rows = rows_by_key(sfmc)
    before_state = stored_state(meltano)
    before_report = report_bytes(meltano)
    land(meltano, "users-2024-04.jsonl", big)

    code = kill_while_loading(meltano, sfmc, keys)

    assert code == -signal.SIGKILL, meltano.outputs[-1][-4000:]
    loaded = keys & set(rows_by_key(sfmc))
    assert 0 < len(loaded) < len(big), "the run was not killed mid-way"
    # Nothing confirmed the run: Meltano's state and the last report are the previous run's
    # (the report is replaced by a rename, never left half-written).
    assert stored_state(meltano) == before_state
    assert report_bytes(meltano) == before_report

    # Meltano still counts the killed run as running: the next run is refused (exit 1) until
    # its heartbeat is 5 minutes old...
    refused = run_job(meltano)
    assert refused.returncode == 1
    assert "is already running" in output_of(refused)
    assert "--force" in output_of(refused)
    assert report_bytes(meltano) == before_report

    # ...or it is forced: every row is then present once, with its values; nothing is lost.
    mark = len(received.rows)
    rerun = run_job(meltano, "--force")
    _check(rerun, "forced run after the kill")
    after = rows_by_key(sfmc)
    assert set(after) == set(before_rows) | keys
    assert {k: after[k] for k in before_rows} == before_rows
    assert_stored(sfmc, big)
    assert set(received.since(mark)) == keys
    report = report_of(meltano)
    assert report["outcome"] == "succeeded"
    assert report["totals"]["written"] == len(big)
    state = stored_state(meltano)
    assert state is not None
    assert "users-2024-04.jsonl" in partition_files(state)
    assert report["last_state"] == state["singer_state"]
    archive_landed(meltano)
    print("meltano timings", meltano.timings)  # noqa: T201
