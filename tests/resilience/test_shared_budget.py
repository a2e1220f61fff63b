"""Several pipelines, one SFMC account: one budget and one token for all of them (issue #18).

Three real target processes, each at the default settings, load into one emulator limited to
20 requests/s. Everything is measured from the emulator's request log (arrival times at
"SFMC"), never from the target's own clock. Each process writes its own Data Extension, so
the log tells whose request each one was; the busy share is taken over the time all three
were sending.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from cli_harness import summary, target_command, write_config
from conftest import CLIENT_ID, CLIENT_SECRET, SUBDOMAIN, max_requests_in_any_second

from target_sfmc.emulator import SfmcEmulator

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Emulators

LIMIT = 20  # the emulator's (and the target's default) requests per second
PROCESSES = 3
# Rows per process: 50 a rowset, so 100 requests each, 300 in all: ~15 s at the limit.
ROWS = 5000
LATENCY_MS = 60

PIPELINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "plan": {"type": ["string", "null"]},
        "score": {"type": ["integer", "null"]},
    },
}


def pipeline_de(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "fields": [
            {"name": "User Id", "type": "Text", "length": 50, "primary_key": True},
            {"name": "Plan", "type": "Text", "length": 20},
            {"name": "Score", "type": "Number"},
        ],
    }


def pipeline_keys() -> list[str]:
    return [f"PIPELINE_{n}" for n in range(1, PROCESSES + 1)]


def pipeline_config(emulator: SfmcEmulator, key: str, **overrides: Any) -> dict[str, Any]:
    """Default settings (rate limit, concurrency, budget store, token cache) for one pipeline."""
    config: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subdomain": SUBDOMAIN,
        "auth_url": emulator.url,
        "streams": {"events": {"type": "track", "data_extension_key": key}},
    }
    config.update(overrides)
    return config


def pipeline_input(path: Path, key: str, rows: int) -> Path:
    lines = [
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": "events",
                "schema": PIPELINE_SCHEMA,
                "key_properties": ["user_id"],
            }
        )
    ]
    lines += [
        json.dumps(
            {
                "type": "RECORD",
                "stream": "events",
                "record": {"user_id": f"{key}-{i:06d}", "plan": "pro", "score": i},
            }
        )
        for i in range(rows)
    ]
    lines.append(json.dumps({"type": "STATE", "value": {"done": key}}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_together(
    tmp_path: Path, emulator: SfmcEmulator, rows: int = ROWS, **overrides: Any
) -> list[tuple[int, str, str]]:
    """Start one target per pipeline at the same moment; return (exit code, stdout, stderr)."""
    procs = []
    for key in pipeline_keys():
        config_path = write_config(tmp_path, pipeline_config(emulator, key, **overrides))
        input_path = pipeline_input(tmp_path / f"{key}.singer", key, rows)
        out, err = tmp_path / f"{key}.out", tmp_path / f"{key}.err"
        with input_path.open("rb") as stdin, out.open("wb") as stdout, err.open("wb") as stderr:
            procs.append(
                (
                    subprocess.Popen(
                        target_command(config_path), stdin=stdin, stdout=stdout, stderr=stderr
                    ),
                    out,
                    err,
                )
            )
    results = []
    for proc, out, err in procs:
        try:
            code = proc.wait(timeout=240)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        results.append((code, out.read_text(), err.read_text(errors="replace")))
    return results


def shares(emulator: SfmcEmulator) -> tuple[float, dict[str, int], float]:
    """Busy share of the budget and each pipeline's requests while all of them were sending.

    Returns:
        (requests admitted per second / LIMIT, pipeline -> requests, seconds measured).
    """
    entries = [e for e in emulator.request_log() if e["status"] != 429]
    owner = re.compile(r"key:(PIPELINE_\d+)")
    times: dict[str, list[float]] = {key: [] for key in pipeline_keys()}
    for entry in entries:
        found = owner.search(entry["path"])
        if found:
            times[found.group(1)].append(entry["time"])
    start = max(min(t) for t in times.values())
    end = min(max(t) for t in times.values())
    assert end - start > 3, f"the pipelines hardly overlapped ({end - start:.1f} s)"
    inside = sorted(e["time"] for e in entries if start <= e["time"] <= end)
    # n requests in [first, last] occupy n - 1 spacings: the rate over the measured span.
    achieved = (len(inside) - 1) / (inside[-1] - inside[0])
    per_pipeline = {key: sum(start <= t <= end for t in ts) for key, ts in times.items()}
    return achieved / LIMIT, per_pipeline, end - start


def throttled(emulator: SfmcEmulator) -> int:
    return sum(by_status.get(429, 0) for by_status in emulator.request_counts().values())


def token_requests(emulator: SfmcEmulator) -> int:
    counts = emulator.request_counts()
    return sum(counts.get("token", {}).values()) + sum(counts.get("legacy_token", {}).values())


def check_fair_and_full(emulator: SfmcEmulator, results: list[tuple[int, str, str]]) -> None:
    for code, stdout, stderr in results:
        assert code == 0, stderr[-3000:]
        assert json.loads(stdout.splitlines()[-1])["done"].startswith("PIPELINE_")
        assert summary(stderr)["written"] == ROWS
    for key in pipeline_keys():
        assert len(emulator.rows(key)) == ROWS
    # Exact: never above the limit, and so SFMC never throttled anyone.
    assert max_requests_in_any_second(emulator) <= LIMIT
    assert throttled(emulator) == 0
    # One token for the three processes: one fetched it while the others waited.
    assert token_requests(emulator) == 1
    # Full and fair, with the margins (measured at arrival, on a shared machine).
    busy, per_pipeline, seconds = shares(emulator)
    logging.getLogger(__name__).info(
        "busy %.1f%% over %.1f s, requests per pipeline %s", busy * 100, seconds, per_pipeline
    )
    assert busy >= 0.85, (busy, per_pipeline, seconds)
    assert min(per_pipeline.values()) >= max(per_pipeline.values()) / 2, per_pipeline


def test_three_pipelines_share_one_budget_through_the_local_store(
    emulators: Emulators, tmp_path: Path
) -> None:
    emulator = emulators.start(
        data_extensions=[pipeline_de(key) for key in pipeline_keys()],
        rate_limit=LIMIT,
        latency_ms=LATENCY_MS,
    )
    results = run_together(tmp_path, emulator)
    check_fair_and_full(emulator, results)
    for _, _, stderr in results:
        assert "limiter=shared:local token_cache=shared:local" in stderr


def test_three_pipelines_share_one_budget_through_redis(
    emulators: Emulators, tmp_path: Path, redis_url: str
) -> None:
    emulator = emulators.start(
        data_extensions=[pipeline_de(key) for key in pipeline_keys()],
        rate_limit=LIMIT,
        latency_ms=LATENCY_MS,
    )
    results = run_together(tmp_path, emulator, rate_limit_url=redis_url)
    check_fair_and_full(emulator, results)
    password = urlsplit(redis_url).password or ""
    assert password
    for _, _, stderr in results:
        assert "limiter=shared:redis token_cache=shared:redis" in stderr
        assert password not in stderr


@pytest.mark.parametrize("store", ["local", "redis"])
def test_sequential_runs_within_a_token_lifetime_make_one_token_request(
    emulators: Emulators, tmp_path: Path, redis_url: str, store: str
) -> None:
    emulator = emulators.start(data_extensions=[pipeline_de("PIPELINE_1")])
    overrides = {"rate_limit_url": redis_url} if store == "redis" else {}
    config = write_config(tmp_path, pipeline_config(emulator, "PIPELINE_1", **overrides))
    for run in range(3):
        source = pipeline_input(tmp_path / f"run{run}.singer", "PIPELINE_1", 20)
        proc = subprocess.run(
            [*target_command(config), "--input", str(source)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"token_requests={1 if run == 0 else 0}" in proc.stderr
    assert token_requests(emulator) == 1
    assert emulator.request_counts()["rowset"] == {200: 3}


def test_without_token_cache_every_run_asks_for_a_token(
    emulators: Emulators, tmp_path: Path
) -> None:
    emulator = emulators.start(data_extensions=[pipeline_de("PIPELINE_1")])
    config = write_config(tmp_path, pipeline_config(emulator, "PIPELINE_1", token_cache=False))
    source = pipeline_input(tmp_path / "in.singer", "PIPELINE_1", 5)
    for _ in range(2):
        proc = subprocess.run(
            [*target_command(config), "--input", str(source)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "token_cache=off" in proc.stderr
    assert token_requests(emulator) == 2


def test_an_unreachable_store_is_said_once_and_the_load_goes_on(
    emulators: Emulators, tmp_path: Path, closed_port: int
) -> None:
    emulator = emulators.start(data_extensions=[pipeline_de("PIPELINE_1")], rate_limit=LIMIT)
    url = f"redis://:hunter2-store-password@127.0.0.1:{closed_port}/0"
    config = write_config(
        tmp_path,
        pipeline_config(emulator, "PIPELINE_1", rate_limit_url=url, expected_processes=4),
    )
    source = pipeline_input(tmp_path / "in.singer", "PIPELINE_1", 500)
    started = time.monotonic()
    proc = subprocess.run(
        [*target_command(config), "--input", str(source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - started < 60
    assert proc.stderr.count("cannot be used") == 1
    assert "5 requests/s" in proc.stderr  # 20 / expected_processes 4
    assert "limiter=process:5/s token_cache=process" in proc.stderr
    assert "hunter2" not in proc.stderr
    assert len(emulator.rows("PIPELINE_1")) == 500
    assert throttled(emulator) == 0
