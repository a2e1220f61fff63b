"""Benchmarks for target-sfmc against its bundled SFMC emulator.

Usage::

    python benchmarks/run.py             # full run (~5 min on 2 cores)
    python benchmarks/run.py --quick     # small smoke version (~1-2 min)
    python benchmarks/run.py --records 50000 --profile

Results (tables) go to stdout; progress goes to stderr. Every target run is a fresh
subprocess (``python -m target_sfmc --config FILE --input FILE``) talking over loopback HTTP
to an in-process `SfmcEmulator`; wall time, user+sys CPU and peak RSS are those of that
subprocess alone (``os.wait4`` rusage taken by a small launcher process, cross-checked
with ``RUSAGE_CHILDREN`` deltas).

Sections:
  1. CPU: records/s of target-sfmc (async path, validation on) vs a default singer-sdk no-op
     BatchSink target (`benchmarks/noop_target.py`) on the same input file; three trials,
     alternating, reported each and as the median ratio.
  2. Throughput at the limit: 200 ms emulator latency, 20 requests/s, sync and async loads
     (async: 2,000-row requests, so the request budget, not the CPU, is the bottleneck).
  3. Peak RSS for N and 10xN records (async path).
  4. Requests per 10k rows, by endpoint, for the sync and async paths.
  5. One SFMC budget for three pipelines: three target processes at the default settings
     against one emulator limited to 20 requests/s (200 ms latency), through the embedded
     local store and, when `redis-server` is installed, through Redis.
"""

from __future__ import annotations

import argparse
import compileall
import io
import itertools
import json
import math
import os
import platform
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from target_sfmc.emulator import SfmcEmulator  # noqa: E402
from target_sfmc.tuning import tuned_for_loading  # noqa: E402

NOOP_TARGET = Path(__file__).resolve().parent / "noop_target.py"
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-value-never-logged"  # noqa: S105 - emulator-only credential
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"
DE_KEY = "IDENTIFY"
STREAM = "users"
RATE_LIMIT = 20

SCHEMA = {
    "type": "object",
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "plan": {"type": ["string", "null"]},
        "country": {"type": ["string", "null"]},
        "logins": {"type": ["integer", "null"]},
        "age": {"type": ["integer", "null"]},
        "lifetime_value": {"type": ["number", "null"]},
        "is_active": {"type": ["boolean", "null"]},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
    },
}

# Every attribute the target sends (Title Case of the record keys) plus the primary key.
IDENTIFY_DE = {
    "key": DE_KEY,
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
        {"name": "User Id", "type": "Text", "length": 50},
        {"name": "Email", "type": "EmailAddress"},
        {"name": "First Name", "type": "Text", "length": 50},
        {"name": "Last Name", "type": "Text", "length": 50},
        {"name": "Plan", "type": "Text", "length": 20},
        {"name": "Country", "type": "Text", "length": 2},
        {"name": "Logins", "type": "Number"},
        {"name": "Age", "type": "Number"},
        {"name": "Lifetime Value", "type": "Decimal", "precision": 18, "scale": 2},
        {"name": "Is Active", "type": "Boolean"},
        {"name": "Created At", "type": "Date"},
    ],
}

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson"]
PLANS = ["free", "pro", "team", "enterprise"]
COUNTRIES = ["GB", "US", "DE", "FR", "NL", "JP", "BR"]
RECORD_LINE = (
    '{"type":"RECORD","stream":"users","record":{"user_id":"u%d","email":"user%d@example.com",'
    '"first_name":"%s","last_name":"%s","plan":"%s","country":"%s","logins":%d,"age":%d,'
    '"lifetime_value":%d.%02d,"is_active":%s,'
    '"created_at":"2023-%02d-%02dT%02d:%02d:%02d+00:00"}}\n'
)


# --------------------------------------------------------------------------- utilities


T0 = time.perf_counter()


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return "n/a"


def log(message: str) -> None:
    print(
        f"[{time.perf_counter() - T0:7.1f}s load {loadavg()}] {message}",
        file=sys.stderr,
        flush=True,
    )


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [
        max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]

    def line(values: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(values, widths, strict=True))
            )
            + " |"
        )

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([f"\n### {title}\n", line(headers), sep, *(line(r) for r in cells)])


def fmt(value: float, digits: int = 0) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def write_input(path: Path, records: int, *, seed: int = 7) -> Path:
    """Write SCHEMA + `records` flat identify RECORDs + one STATE, streaming to disk."""
    rnd = random.Random(seed)  # noqa: S311 - test data, not secrets
    with path.open("w", encoding="utf-8") as out:
        out.write(
            json.dumps(
                {
                    "type": "SCHEMA",
                    "stream": STREAM,
                    "schema": SCHEMA,
                    "key_properties": ["user_id"],
                }
            )
            + "\n"
        )
        chunk: list[str] = []
        for i in range(records):
            chunk.append(
                RECORD_LINE
                % (
                    i,
                    i,
                    FIRST[i % len(FIRST)],
                    LAST[i % len(LAST)],
                    PLANS[i % len(PLANS)],
                    COUNTRIES[i % len(COUNTRIES)],
                    rnd.randint(0, 5000),
                    18 + i % 70,
                    rnd.randint(0, 99_999),
                    rnd.randint(0, 99),
                    "true" if i % 3 else "false",
                    1 + i % 12,
                    1 + i % 28,
                    i % 24,
                    i % 60,
                    (i * 7) % 60,
                )
            )
            if len(chunk) >= 10_000:
                out.writelines(chunk)
                chunk.clear()
        out.writelines(chunk)
        out.write(json.dumps({"type": "STATE", "value": {"bookmark": records}}) + "\n")
    return path


# Runs one command and reports its own rusage. A child forked from a big process inherits that
# process's peak RSS in ru_maxrss (Linux records the pre-exec address space), so the measured
# command is started from this small launcher, never directly from the harness (which holds
# the emulator's data).
_LAUNCHER = r"""
import json, os, subprocess, sys, time
args, report = json.loads(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
proc = subprocess.Popen(args)
_, status, usage = os.wait4(proc.pid, 0)
wall = time.perf_counter() - start
with open(report, "w", encoding="utf-8") as out:
    json.dump({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss}, out)
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass
class ProcResult:
    """What one subprocess cost."""

    returncode: int
    wall: float  # wall time of the measured process (launcher excluded)
    cpu: float  # user+sys of the measured process (os.wait4 in the launcher)
    cpu_children_delta: float  # user+sys delta of RUSAGE_CHILDREN (includes the launcher)
    maxrss_mb: float  # peak RSS of the measured process
    stdout: str
    stderr_path: Path


def run_process(args: list[str], workdir: Path, name: str, timeout: float) -> ProcResult:
    """Run a command with no stdin; measure wall time, CPU time and peak RSS."""
    out_path, err_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    report_path = workdir / f"{name}.rusage.json"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, json.dumps(args), str(report_path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} timed out after {timeout:.0f} s; killing its process group")
            os.killpg(proc.pid, 9)
            returncode = proc.wait()
        outer_wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        usage = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        usage = {"wall": outer_wall, "cpu": math.nan, "maxrss_kb": math.nan}
    result = ProcResult(
        returncode=returncode,
        wall=usage["wall"],
        cpu=usage["cpu"],
        cpu_children_delta=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        maxrss_mb=usage["maxrss_kb"] / 1024,  # Linux: KiB
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr_path=err_path,
    )
    if result.returncode != 0:
        tail = err_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        log(f"{name} exited {result.returncode}; stderr tail:\n    " + "\n    ".join(tail))
    return result


def new_emulator(**kwargs: Any) -> SfmcEmulator:
    emu = SfmcEmulator(
        data_extensions=[IDENTIFY_DE], client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **kwargs
    )
    emu.start()
    return emu


def stored_rows(emu: SfmcEmulator) -> int:
    """Rows in the Identify DE (pending async jobs applied first)."""
    api = emu.api
    try:
        api.jobs.process_due()
        cde = api.data_extension(DE_KEY)
        if cde is None:
            raise KeyError(DE_KEY)
        return api.store.count_rows(cde.de.id)
    except AttributeError:  # emulator internals changed: use the public (slower) way
        return len(emu.rows(DE_KEY))


def target_config(emu: SfmcEmulator, workdir: Path, name: str, **overrides: Any) -> Path:
    config: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subdomain": SUBDOMAIN,
        "auth_url": emu.url,
        "identify_data_extension_key": DE_KEY,
        "streams": {STREAM: {"type": "identify"}},
        "validate_records": True,
    }
    config.update(overrides)
    path = workdir / f"{name}.config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def run_target(
    config: Path,
    input_path: Path,
    workdir: Path,
    name: str,
    timeout: float,
    profile: Path | None = None,
) -> ProcResult:
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    args = [*prefix, "-m", "target_sfmc", "--config", str(config), "--input", str(input_path)]
    return run_process(args, workdir, name, timeout)


def run_async_load(
    emu: SfmcEmulator,
    input_path: Path,
    workdir: Path,
    name: str,
    timeout: float,
    profile: Path | None = None,
) -> ProcResult:
    """Load a file into the emulator through the async path, default settings otherwise."""
    config = target_config(emu, workdir, name, use_async_api=True)
    return run_target(config, input_path, workdir, name, timeout, profile)


def run_noop(input_path: Path, workdir: Path, name: str, timeout: float) -> ProcResult:
    return run_process(
        [sys.executable, str(NOOP_TARGET), "--input", str(input_path)], workdir, name, timeout
    )


def final_state_ok(result: ProcResult, records: int) -> bool:
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return bool(lines) and json.loads(lines[-1]) == {"bookmark": records}


def count_requests(emu: SfmcEmulator) -> dict[str, int]:
    return {ep: sum(by_status.values()) for ep, by_status in emu.request_counts().items()}


def count_429(emu: SfmcEmulator) -> int:
    return sum(by_status.get(429, 0) for by_status in emu.request_counts().values())


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most arrivals in any half-open window of `window` seconds (the emulator's rule)."""
    best, lo = 0, 0
    for hi, at in enumerate(times):
        while at - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# --------------------------------------------------------------------------- sections


def bench_cpu(
    workdir: Path, records: int, timeout: float, *, repeat: int, profile: bool
) -> dict[str, Any]:
    log(f"[cpu] writing {records:,} records")
    input_path = write_input(workdir / f"cpu-{records}.singer", records)
    log(f"[cpu] input {input_path.stat().st_size / 1e6:.1f} MB")

    # Warm-up (bytecode caches, page cache) so neither side pays first-import costs. The
    # target's bytecode is compiled explicitly, as `pip install` does: an editable install
    # run with PYTHONDONTWRITEBYTECODE would compile its modules again in every run, while
    # the SDK's, in site-packages, were compiled at install.
    compileall.compile_dir(ROOT / "target_sfmc", quiet=1)
    warm = write_input(workdir / "warm.singer", 200)
    emu = new_emulator(async_delay_ms=5)
    try:
        run_noop(warm, workdir, "warm-noop", timeout)
        run_async_load(emu, warm, workdir, "warm-target", timeout)
    finally:
        emu.close()

    # Trials alternate no-op and target so that a slow spell of this shared machine hits both.
    trials = []
    for trial in range(1, repeat + 1):
        log(f"[cpu] trial {trial}/{repeat}: no-op singer-sdk target (default reader + jsonschema)")
        noop = run_noop(input_path, workdir, f"cpu-noop-{trial}", timeout)
        log(f"[cpu] trial {trial}/{repeat}: target-sfmc, async path, validate_records on")
        emu = new_emulator(async_delay_ms=5)
        try:
            self_before = resource.getrusage(resource.RUSAGE_SELF)
            target = run_async_load(emu, input_path, workdir, f"cpu-target-{trial}", timeout)
            self_after = resource.getrusage(resource.RUSAGE_SELF)
            stored = stored_rows(emu)
            sample = emu.rows(DE_KEY)[0] if stored and trial == 1 else {}
            requests = count_requests(emu)
        finally:
            emu.close()
        trials.append(
            {
                "noop": noop,
                "target": target,
                "ratio_wall": noop.wall / target.wall,
                "ratio_cpu": noop.cpu / target.cpu if target.cpu else math.nan,
                "stored": stored,
                "emulator_cpu": (self_after.ru_utime + self_after.ru_stime)
                - (self_before.ru_utime + self_before.ru_stime),
                "requests": requests,
                "sample": sample,
            }
        )
    median = sorted(trials, key=lambda t: t["ratio_wall"])[len(trials) // 2]
    out = {
        "records": records,
        "trials": trials,
        "noop": median["noop"],
        "target": median["target"],
        "columns": len(trials[0]["sample"]),
        "requests": median["requests"],
        "all_stored": all(t["stored"] == records for t in trials),
        "target_state_ok": all(final_state_ok(t["target"], records) for t in trials),
        "noop_state_ok": all(final_state_ok(t["noop"], records) for t in trials),
    }

    if profile:
        log("[cpu] profiling target-sfmc (cProfile, main thread)")
        emu = new_emulator(async_delay_ms=5)
        prof = workdir / "target.prof"
        try:
            prof_run = run_async_load(
                emu, input_path, workdir, "prof-target", timeout * 3, profile=prof
            )
        finally:
            emu.close()
        out["profile"] = (prof_run, profile_summary(prof) if prof.exists() else "no profile")
    input_path.unlink(missing_ok=True)
    return out


def profile_summary(path: Path, top: int = 15) -> str:
    """Top functions by cumulative time (also without once-called CLI frames) and self time."""
    stats = pstats.Stats(str(path), stream=io.StringIO())
    stats.strip_dirs()
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = max((ct for _, _, _, ct, _ in raw.values()), default=0.0) or 1.0

    def name(func: tuple[str, int, str]) -> str:
        file, line, fn = func
        return f"{file}:{line}({fn})" if line else fn

    def block(title: str, funcs: list[Any]) -> list[str]:
        lines = [title, f"{'ncalls':>10} {'tottime':>8} {'cumtime':>8} {'cum%':>5}  function"]
        for func in funcs[:top]:
            _, nc, tt, ct, _ = raw[func]
            lines.append(f"{nc:>10} {tt:>8.2f} {ct:>8.2f} {ct / total:>5.0%}  {name(func)}")
        return lines

    by_cum = sorted(raw, key=lambda f: raw[f][3], reverse=True)
    by_self = sorted(raw, key=lambda f: raw[f][2], reverse=True)
    per_call = [f for f in by_cum if raw[f][0] > 1]  # primitive calls: drops the CLI chain
    return "\n".join(
        [
            f"total {total:.2f} s (main thread)",
            "",
            *block(f"top {top} by cumulative time", by_cum),
            "",
            *block(f"top {top} by cumulative time, functions called more than once", per_call),
            "",
            *block(f"top {top} by internal (self) time", by_self),
        ]
    )


def bench_throughput(
    workdir: Path, mode: str, rows: int, batch_size: int | None, timeout: float
) -> dict[str, Any]:
    log(f"[throughput] {mode}: {rows:,} rows, 200 ms latency, {RATE_LIMIT} req/s")
    input_path = write_input(workdir / f"tp-{mode}.singer", rows, seed=11)
    emu = new_emulator(rate_limit=RATE_LIMIT, latency_ms=200, async_delay_ms=100)
    overrides: dict[str, Any] = {
        "use_async_api": mode == "async",
        "do_not_create_or_update_contacts": True,
        "requests_per_second": RATE_LIMIT,
        "max_concurrent_requests": 8,
    }
    if batch_size:
        overrides["batch_size_rows"] = batch_size
    try:
        result = run_target(
            target_config(emu, workdir, f"tp-{mode}", **overrides),
            input_path,
            workdir,
            f"tp-{mode}",
            timeout,
        )
        entries = emu.request_log()
        stored = stored_rows(emu)
        requests = count_requests(emu)
        throttled = count_429(emu)
    finally:
        emu.close()
    input_path.unlink(missing_ok=True)
    times = sorted(e["time"] for e in entries)
    admitted = sorted(e["time"] for e in entries if e["status"] != 429)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return {
        "mode": mode,
        "rows": rows,
        "batch_size": batch_size,
        "result": result,
        "requests": requests,
        "n": len(times),
        "span": span,
        "achieved": (len(times) - 1) / span if len(times) > 1 and span > 0 else float("nan"),
        "max_window": max_in_window(times),
        "max_window_admitted": max_in_window(admitted),
        "throttled": throttled,
        "stored": stored,
        "longest_gap": max(gaps, default=0.0),
        "state_ok": final_state_ok(result, rows),
    }


def bench_memory(workdir: Path, sizes: list[int], timeout: float) -> list[dict[str, Any]]:
    results = []
    for records in sizes:
        log(f"[memory] writing {records:,} records")
        input_path = write_input(workdir / f"mem-{records}.singer", records, seed=13)
        emu = new_emulator(async_delay_ms=5)
        log(f"[memory] target-sfmc async path, {records:,} records")
        try:
            result = run_async_load(emu, input_path, workdir, f"mem-{records}", timeout)
            stored = stored_rows(emu)
        finally:
            emu.close()
        input_path.unlink(missing_ok=True)
        results.append(
            {
                "records": records,
                "result": result,
                "stored": stored,
                "state_ok": final_state_ok(result, records),
            }
        )
    return results


def bench_sync_contacts(workdir: Path, rows: int, timeout: float) -> dict[str, Any]:
    log(f"[requests] sync path with contact creation (default), {rows:,} rows, unthrottled")
    input_path = write_input(workdir / "contacts.singer", rows, seed=17)
    emu = new_emulator()
    try:
        result = run_target(
            target_config(
                emu, workdir, "contacts", requests_per_second=1000, max_concurrent_requests=8
            ),
            input_path,
            workdir,
            "contacts",
            timeout,
        )
        stored = stored_rows(emu)
        requests = count_requests(emu)
    finally:
        emu.close()
    input_path.unlink(missing_ok=True)
    return {"rows": rows, "result": result, "stored": stored, "requests": requests}


# --------------------------------------------------------------------------- shared budget

BUDGET_PROCESSES = 3
BUDGET_SCHEMA = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "plan": {"type": ["string", "null"]},
        "score": {"type": ["integer", "null"]},
    },
}


def budget_de(key: str) -> dict[str, Any]:
    return {
        "key": key,
        "fields": [
            {"name": "User Id", "type": "Text", "length": 50, "primary_key": True},
            {"name": "Plan", "type": "Text", "length": 20},
            {"name": "Score", "type": "Number"},
        ],
    }


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """A throwaway redis-server on a free loopback port, or None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis  # noqa: PLC0415

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.exceptions.RedisError:
            time.sleep(0.05)
    client.close()
    return proc, f"redis://127.0.0.1:{port}/0"


def write_budget_input(path: Path, key: str, rows: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        schema = {
            "type": "SCHEMA",
            "stream": "events",
            "schema": BUDGET_SCHEMA,
            "key_properties": ["user_id"],
        }
        out.write(json.dumps(schema) + "\n")
        for i in range(rows):
            record = {"user_id": f"{key}-{i}", "plan": "pro", "score": i}
            out.write(json.dumps({"type": "RECORD", "stream": "events", "record": record}) + "\n")
    return path


def budget_shares(
    entries: list[dict[str, Any]], keys: list[str]
) -> tuple[float, float, dict[str, int]]:
    """Seconds all pipelines sent, busy share then, and each pipeline's requests then."""
    admitted = [e for e in entries if e["status"] != 429]
    owner: dict[str, list[float]] = {key: [] for key in keys}
    for entry in admitted:
        for key in keys:
            if f"key:{key}/" in entry["path"]:
                owner[key].append(entry["time"])
    if not all(owner.values()):
        return math.nan, math.nan, {key: len(ts) for key, ts in owner.items()}
    start = max(min(t) for t in owner.values())
    end = min(max(t) for t in owner.values())
    inside = sorted(e["time"] for e in admitted if start <= e["time"] <= end)
    achieved = (len(inside) - 1) / (inside[-1] - inside[0]) if len(inside) > 1 else math.nan
    per = {key: sum(start <= t <= end for t in ts) for key, ts in owner.items()}
    return end - start, achieved / RATE_LIMIT, per


def bench_budget(
    workdir: Path, rows: int, timeout: float, store: str, rate_limit_url: str | None
) -> dict[str, Any]:
    """Three target processes, default settings, one account, one emulator at the limit."""
    keys = [f"PIPELINE_{n}" for n in range(1, BUDGET_PROCESSES + 1)]
    log(f"[budget] {store}: {BUDGET_PROCESSES} processes x {rows:,} rows, {RATE_LIMIT} req/s")
    emu = SfmcEmulator(
        data_extensions=[budget_de(key) for key in keys],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        rate_limit=RATE_LIMIT,
        latency_ms=200,
    )
    emu.start()
    # Each run gets a store of its own (a fresh cache directory): no token from earlier runs.
    env = {**os.environ, "XDG_CACHE_HOME": str(workdir / f"cache-{store}")}
    procs = []
    try:
        for key in keys:
            config: dict[str, Any] = {
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
                "subdomain": SUBDOMAIN,
                "auth_url": emu.url,
                "streams": {"events": {"type": "track", "data_extension_key": key}},
            }
            if rate_limit_url:
                config["rate_limit_url"] = rate_limit_url
            config_path = workdir / f"budget-{store}-{key}.json"
            config_path.write_text(json.dumps(config), encoding="utf-8")
            input_path = write_budget_input(workdir / f"budget-{key}.singer", key, rows)
            err = (workdir / f"budget-{store}-{key}.stderr").open("wb")
            procs.append(
                (
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "target_sfmc",
                            "--config",
                            str(config_path),
                            "--input",
                            str(input_path),
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        cwd=ROOT,
                        env=env,
                    ),
                    err,
                )
            )
        codes = []
        for proc, err in procs:
            try:
                codes.append(proc.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
            err.close()
        entries = emu.request_log()
        requests = count_requests(emu)
        throttled = count_429(emu)
        stored = {key: len(emu.rows(key)) for key in keys}
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.kill()
        emu.close()
    overlap, busy, per = budget_shares(entries, keys)
    return {
        "store": store,
        "rows": rows,
        "codes": codes,
        "overlap": overlap,
        "busy": busy,
        "max_window": max_in_window(sorted(e["time"] for e in entries)),
        "throttled": throttled,
        "per": per,
        "token_requests": requests.get("token", 0) + requests.get("legacy_token", 0),
        "stored": stored,
        "entries": entries,
    }


def report_budget(results: list[dict[str, Any]]) -> None:
    rows = [
        [
            r["store"],
            ", ".join("ok" if c == 0 else f"exit {c}" for c in r["codes"]),
            fmt(r["overlap"], 1),
            f"{r['busy']:.0%}",
            r["max_window"],
            r["throttled"],
            " / ".join(str(v) for v in r["per"].values()),
            f"{min(r['per'].values()) / max(r['per'].values()):.2f}",
            r["token_requests"],
            "OK" if all(v == r["rows"] for v in r["stored"].values()) else "MISMATCH",
        ]
        for r in results
    ]
    print(
        table(
            f"5. One budget, three pipelines: {BUDGET_PROCESSES} processes at default settings, "
            f"emulator rate_limit {RATE_LIMIT}/s, latency 200 ms",
            [
                "store",
                "exits",
                "all running s",
                "busy share",
                "max req in any 1 s",
                "429s",
                "requests per process (all running)",
                "min/max share",
                "token requests",
                "rows stored",
            ],
            rows,
        )
    )
    print(
        "\nbusy share = requests admitted per second while all three sent / "
        f"{RATE_LIMIT}. targets: >= 85% busy, never above {RATE_LIMIT} in any second, "
        "no 429s, min/max share >= 0.5, one token request."
    )


# --------------------------------------------------------------------------- report


def report_cpu(cpu: dict[str, Any]) -> None:
    n = cpu["records"]
    rows = []
    for number, trial in enumerate(cpu["trials"], start=1):
        for label, res in (
            (f"{number}: no-op singer-sdk BatchSink (defaults)", trial["noop"]),
            (f"{number}: target-sfmc async, validate_records on", trial["target"]),
        ):
            rows.append(
                [
                    label,
                    "ok" if res.returncode == 0 else f"exit {res.returncode}",
                    fmt(res.wall, 2),
                    fmt(n / res.wall),
                    fmt(res.cpu, 2),
                    fmt(n / res.cpu if res.cpu else math.nan),
                    fmt(res.maxrss_mb, 1),
                    f"{trial['ratio_wall']:.2f}x" if res is trial["target"] else "",
                    f"{trial['ratio_cpu']:.2f}x" if res is trial["target"] else "",
                ]
            )
    print(
        table(
            f"1. CPU: {n:,} flat identify records, same input file, trials alternating",
            [
                "trial: target",
                "exit",
                "wall s",
                "records/s (wall)",
                "cpu s",
                "records/cpu-s",
                "peak RSS MB",
                "ratio (wall)",
                "ratio (cpu)",
            ],
            rows,
        )
    )
    walls = sorted(t["ratio_wall"] for t in cpu["trials"])
    cpus = sorted(t["ratio_cpu"] for t in cpu["trials"])
    print(
        f"\nratio target/no-op records/s (wall): median {walls[len(walls) // 2]:.2f}x, "
        f"range {walls[0]:.2f}-{walls[-1]:.2f}x  "
    )
    print(
        f"ratio target/no-op records per CPU-second: median {cpus[len(cpus) // 2]:.2f}x, "
        f"range {cpus[0]:.2f}-{cpus[-1]:.2f}x"
    )
    print(
        "emulator CPU inside the harness process during each target run: "
        + ", ".join(f"{t['emulator_cpu']:.2f} s" for t in cpu["trials"])
    )
    print(
        f"emulator stored rows: {'OK' if cpu['all_stored'] else 'MISMATCH'} ({n:,} expected per "
        f"trial); columns per row: {cpu['columns']} (DE defines {len(IDENTIFY_DE['fields'])})"
    )
    print(f"final STATE emitted: target {cpu['target_state_ok']}, no-op {cpu['noop_state_ok']}")


def report_throughput(results: list[dict[str, Any]]) -> None:
    rows = []
    for r in results:
        res = r["result"]
        label = r["mode"] + (
            f" ({r['batch_size']:,}-row requests: batch_size_rows)" if r["batch_size"] else ""
        )
        rows.append(
            [
                label,
                fmt(r["rows"]),
                "ok" if res.returncode == 0 else f"exit {res.returncode}",
                r["n"],
                fmt(r["span"], 1),
                fmt(r["achieved"], 2),
                f"{r['achieved'] / RATE_LIMIT:.0%}" if r["n"] > 1 else "n/a",
                r["max_window"],
                r["throttled"],
                fmt(r["longest_gap"], 2),
                fmt(r["rows"] / res.wall),
                f"{r['stored']:,}",
            ]
        )
    print(
        table(
            f"2. Throughput at the limit: emulator latency 200 ms, rate_limit {RATE_LIMIT}/s; "
            f"target requests_per_second {RATE_LIMIT}, max_concurrent_requests 8",
            [
                "load",
                "rows",
                "exit",
                "requests",
                "busy s",
                "achieved req/s",
                "busy share",
                "max req in any 1 s",
                "429s",
                "longest gap s",
                "rows/s (wall)",
                "rows stored",
            ],
            rows,
        )
    )
    print(
        "\nbusy period = first to last request arrival (request_log); busy share = achieved / "
        f"{RATE_LIMIT}. target: >= 90% busy, never above {RATE_LIMIT} in any second."
    )


def _per_10k(label: str, rows: int, requests: dict[str, int]) -> list[Any]:
    data = {
        "rowset": requests.get("rowset", 0),
        "async_upsert": requests.get("async_upsert", 0),
        "async_status": requests.get("async_status", 0),
        "async_results": requests.get("async_results", 0),
        "contacts": requests.get("contacts", 0),
        "token": requests.get("token", 0) + requests.get("legacy_token", 0),
    }
    total = sum(requests.values())
    data_requests = data["rowset"] + data["async_upsert"]
    scale = 10_000 / rows if rows else math.nan
    return [
        label,
        fmt(rows),
        *(fmt(v * scale, 1) for v in data.values()),
        fmt(total * scale, 1),
        fmt(rows / data_requests if data_requests else math.nan, 0),
    ]


def report_requests(
    cpu: dict[str, Any] | None, tps: list[dict[str, Any]], contacts: dict[str, Any] | None
) -> None:
    rows = []
    for r in tps:
        label = f"{r['mode']}" + (
            f", batch_size_rows {r['batch_size']:,}" if r["batch_size"] else ""
        )
        label += ", contacts off" if r["mode"] == "sync" else ""
        rows.append(_per_10k(label, r["rows"], r["requests"]))
    if contacts is not None:
        rows.append(_per_10k("sync, contacts on (default)", contacts["rows"], contacts["requests"]))
    if cpu is not None:
        rows.append(_per_10k("async, default batch size", cpu["records"], cpu["requests"]))
    print(
        table(
            "4. Requests per 10k rows (emulator request_counts, scaled)",
            [
                "path",
                "rows loaded",
                "rowset",
                "async_upsert",
                "async_status",
                "async_results",
                "contacts",
                "token",
                "total",
                "rows per data request",
            ],
            rows,
        )
    )
    print("\nlimits: sync rowset <= 50 rows/request; async <= 32,000 rows (and ~4 MB) per request.")
    if contacts is not None and contacts["stored"] != contacts["rows"]:
        print(f"WARNING: contacts run stored {contacts['stored']:,} of {contacts['rows']:,} rows")


def report_memory(results: list[dict[str, Any]]) -> None:
    rows = [
        [
            fmt(r["records"]),
            "ok" if r["result"].returncode == 0 else f"exit {r['result'].returncode}",
            fmt(r["result"].wall, 1),
            fmt(r["records"] / r["result"].wall),
            fmt(r["result"].cpu, 1),
            fmt(r["result"].maxrss_mb, 1),
            f"{r['stored']:,}",
            r["state_ok"],
        ]
        for r in results
    ]
    print(
        table(
            "3. Peak RSS of the target process (async path, os.wait4 ru_maxrss)",
            [
                "records",
                "exit",
                "wall s",
                "records/s (wall)",
                "cpu s",
                "peak RSS MB",
                "rows stored",
                "final STATE",
            ],
            rows,
        )
    )
    if len(results) >= 2:
        small, big = results[0], results[-1]
        ratio = big["result"].maxrss_mb / small["result"].maxrss_mb
        print(
            f"\nratio peak RSS {big['records']:,} / {small['records']:,}: {ratio:.2f}x "
            "(target: <= 2x)"
        )


# --------------------------------------------------------------------------- main


def main() -> int:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke version")
    parser.add_argument("--records", type=int, help="records for the CPU benchmark")
    parser.add_argument(
        "--repeat", type=int, help="CPU benchmark trials (no-op and target alternating)"
    )
    parser.add_argument("--sync-rows", type=int, help="rows for the sync throughput load")
    parser.add_argument("--async-rows", type=int, help="rows for the async throughput load")
    parser.add_argument(
        "--async-batch-rows", type=int, help="batch_size_rows (rows per request) for the async load"
    )
    parser.add_argument(
        "--memory-records",
        type=int,
        nargs=2,
        metavar=("SMALL", "LARGE"),
        help="record counts for the peak-RSS comparison",
    )
    parser.add_argument("--contacts-rows", type=int, help="rows for the sync+contacts count")
    parser.add_argument(
        "--budget-rows", type=int, help="rows per process for the shared-budget section"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile the target on the CPU input (top 15 cumulative)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["cpu", "throughput", "memory", "requests", "budget"],
        help="run only these sections",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, inputs)")
    args = parser.parse_args()

    quick = args.quick
    records = args.records or (20_000 if quick else 200_000)
    repeat = args.repeat or (1 if quick else 3)
    sync_rows = args.sync_rows or (4_000 if quick else 25_000)
    async_rows = args.async_rows or (20_000 if quick else 200_000)
    async_batch = args.async_batch_rows or (1_000 if quick else 2_000)
    mem_sizes = list(args.memory_records or ((10_000, 100_000) if quick else (100_000, 1_000_000)))
    contacts_rows = args.contacts_rows or (1_000 if quick else 5_000)
    budget_rows = args.budget_rows or (3_000 if quick else 8_000)
    sections = set(args.only or ["cpu", "throughput", "memory", "requests", "budget"])
    timeout = 1800.0

    workdir = Path(tempfile.mkdtemp(prefix="target-sfmc-bench-"))
    log(f"work dir {workdir}")
    started = time.perf_counter()
    load_start = loadavg()
    cpu = None
    tps: list[dict[str, Any]] = []
    contacts = None
    memory: list[dict[str, Any]] = []
    budget: list[dict[str, Any]] = []
    try:
        print("# target-sfmc benchmarks" + (" (--quick)" if quick else ""))
        print(
            f"python {platform.python_version()} ({platform.python_implementation()}), "
            f"{platform.platform()}, cpu_count {os.cpu_count()}, "
            f"sched_getaffinity {len(os.sched_getaffinity(0))}"
        )
        sys.stdout.flush()
        if "cpu" in sections:
            cpu = bench_cpu(workdir, records, timeout, repeat=repeat, profile=args.profile)
            report_cpu(cpu)
            sys.stdout.flush()
        if "throughput" in sections or "requests" in sections:
            tps.append(bench_throughput(workdir, "sync", sync_rows, None, timeout))
            tps.append(bench_throughput(workdir, "async", async_rows, async_batch, timeout))
            report_throughput(tps)
            sys.stdout.flush()
        if "memory" in sections:
            memory = bench_memory(workdir, mem_sizes, timeout)
            report_memory(memory)
            sys.stdout.flush()
        if "requests" in sections:
            contacts = bench_sync_contacts(workdir, contacts_rows, timeout)
            report_requests(cpu, tps, contacts)
        if "budget" in sections:
            budget.append(bench_budget(workdir, budget_rows, timeout, "local", None))
            redis_server = start_redis(workdir)
            if redis_server is None:
                log("[budget] redis-server not installed: Redis run skipped")
            else:
                try:
                    budget.append(
                        bench_budget(workdir, budget_rows, timeout, "redis", redis_server[1])
                    )
                finally:
                    redis_server[0].terminate()
                    redis_server[0].wait()
            report_budget(budget)
            sys.stdout.flush()
        if cpu is not None and "profile" in cpu:
            prof_run, text = cpu["profile"]
            print(
                f"\n### cProfile of target-sfmc on the CPU input (main thread; wall "
                f"{prof_run.wall:.1f} s under the profiler, exit {prof_run.returncode})\n"
            )
            print("```\n" + text.strip() + "\n```")
        print(
            f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s; load average "
            f"at start {load_start}, at end {loadavg()} (other processes on this machine "
            "inflate wall times; CPU-second figures are less sensitive to that)"
        )
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [
        r
        for r in ([res for t in cpu["trials"] for res in (t["noop"], t["target"])] if cpu else [])
        + [t["result"] for t in tps]
        + [m["result"] for m in memory]
        + ([contacts["result"]] if contacts else [])
        if r.returncode != 0
    ]
    budget_failed = any(code != 0 for r in budget for code in r["codes"])
    return 1 if failed or budget_failed else 0


if __name__ == "__main__":
    # The in-process emulator holds every job's rows: tuned as the sfmc-emulator CLI is.
    with tuned_for_loading():
        sys.exit(main())
