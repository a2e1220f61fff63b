"""Benchmarks for target-sfmc against its bundled SFMC emulator.

Usage::

    python benchmarks/run.py                  # full run (~12 min on 2 quiet cores)
    python benchmarks/run.py --quick          # small smoke version (~2 min)
    python benchmarks/run.py --json out.json  # also every figure as JSON
    python benchmarks/run.py --write-readme   # also benchmarks/results.json and README's block

Results (tables) go to stdout; progress goes to stderr. Every target run is a fresh
subprocess (``python -m target_sfmc --config FILE --input FILE``) talking over loopback HTTP
to an in-process `SfmcEmulator`; wall time, user+sys CPU and peak RSS are those of that
subprocess alone (``os.wait4`` rusage taken by a small launcher process).

Sections:
  1. CPU: CPU-seconds of target-sfmc (async path, validation on) vs a default singer-sdk no-op
     BatchSink target (`benchmarks/noop_target.py`) on the same input, for three shapes (flat
     identify records, the same with nested properties, Segment messages); trials alternate
     the two. The ratio of CPU-seconds is the primary figure, wall-clock beside it.
  2. Budget at defaults: emulator latency 100 ms, 500 ms and 1.5 s with jitter, rate limit
     20/s; the target at its default settings, sync and async (small requests). Busy share of
     the 20/s while sending, the most requests in any one-second window, 429s.
  3. Memory: peak RSS for N and 10xN records of the nested shape (async path).
  4. Requests per 10k rows, by endpoint, for the sync and async paths.
  5. One budget, three pipelines: three target processes at the default settings against one
     emulator limited to 20 requests/s, through the local store and, when `redis-server` is
     installed, through Redis.
  Summary: the closing note (README's generated block) with this run's figures.
"""

from __future__ import annotations

import argparse
import compileall
import datetime as dt
import io
import itertools
import json
import math
import os
import platform
import pstats
import resource
import shutil
import signal
import statistics
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

import readme_block  # noqa: E402 - benchmarks/ is the script's directory
from shapes import FLAT, NESTED, SHAPES, Shape  # noqa: E402

from target_sfmc import settings_schema  # noqa: E402
from target_sfmc.emulator import SfmcEmulator  # noqa: E402
from target_sfmc.tuning import tuned_for_loading  # noqa: E402

NOOP_TARGET = Path(__file__).resolve().parent / "noop_target.py"
RESULTS_JSON = Path(__file__).resolve().parent / "results.json"
README = ROOT / "README.md"
CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-value-never-logged"  # noqa: S105 - emulator-only credential
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"
RATE_LIMIT = 20
SECTIONS = ("cpu", "defaults", "memory", "requests", "shared")

# Section 2: each request's latency varies uniformly by this share of it either way.
JITTER_SHARE = 0.5
SYNC_ROWS_PER_REQUEST = 50  # SFMC's rowset limit, which the sync path fills
# Requests per async upload when sizing the input (the upload and its status poll).
ASYNC_REQUESTS_PER_UPLOAD = 2
# Section 2: a run is stopped after --defaults-cap seconds plus this many latencies.
CAP_ROUND_TRIPS = 5
DATA_ENDPOINTS = frozenset({"rowset", "async_upsert"})
BUSY_TARGET = 0.90
MEMORY_TARGET = 2.0


# --------------------------------------------------------------------------- utilities


T0 = time.perf_counter()


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, or "n/a"."""
    try:
        return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])
    except OSError:
        return "n/a"


def log(message: str) -> None:
    """Print a progress line to stderr."""
    print(
        f"[{time.perf_counter() - T0:7.1f}s load {loadavg()}] {message}",
        file=sys.stderr,
        flush=True,
    )


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table under a heading; the first column left-aligned, the others right."""
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


def fmt(value: float | None, digits: int = 0) -> str:
    """A number with thousands separators, or "n/a"."""
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def num(value: float, digits: int = 3) -> float | None:
    """A float for JSON: rounded, NaN as None."""
    return None if math.isnan(value) else round(value, digits)


def spread(values: list[float]) -> dict[str, float | None]:
    """Median, min and max of trial values (NaN-free)."""
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return {"median": None, "min": None, "max": None}
    return {
        "median": num(statistics.median(clean)),
        "min": num(min(clean)),
        "max": num(max(clean)),
    }


def git_commit() -> dict[str, Any]:
    """The commit the run measured and whether the work tree had changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changes = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(changes)}


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
    maxrss_mb: float  # peak RSS of the measured process
    stdout: str
    stderr_path: Path
    stopped: bool = False  # stopped by the harness at `stop_after`

    def as_dict(self) -> dict[str, Any]:
        """The figures, for the JSON result."""
        return {
            "exit": self.returncode,
            "wall_s": num(self.wall),
            "cpu_s": num(self.cpu),
            "peak_rss_mb": num(self.maxrss_mb, 1),
            "stopped": self.stopped,
        }


def run_process(
    args: list[str],
    workdir: Path,
    name: str,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    stop_after: float | None = None,
) -> ProcResult:
    """Run a command with no stdin; measure wall time, CPU time and peak RSS.

    Args:
        args: The command.
        workdir: Where its output, error and rusage files go.
        name: Name of those files.
        timeout: Seconds before it is killed as hung (an error).
        env: Environment; the harness's by default.
        stop_after: Seconds after which it is stopped on purpose (SIGKILL of its process
            group); its figures are then the launcher's view, and ``stopped`` is set.

    Returns:
        What the process cost.
    """
    out_path, err_path = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    report_path = workdir / f"{name}.rusage.json"
    stopped = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, json.dumps(args), str(report_path)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        try:
            returncode = proc.wait(timeout=min(timeout, stop_after or timeout))
        except BaseException as exc:
            if not isinstance(exc, subprocess.TimeoutExpired):  # the harness is stopping
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            stopped = stop_after is not None and stop_after < timeout
            if stopped:
                # SIGKILL, not SIGTERM: a SIGTERM'd target drains what it read, which is not
                # what is measured, and would still be sending after the emulator closes.
                log(f"{name} stopped after {stop_after:.0f} s, as planned")
                os.killpg(proc.pid, signal.SIGKILL)
                returncode = proc.wait()
            else:
                log(f"{name} timed out after {timeout:.0f} s; killing its process group")
                os.killpg(proc.pid, signal.SIGKILL)
                returncode = proc.wait()
        outer_wall = time.perf_counter() - start
    try:
        usage = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        usage = {"wall": outer_wall, "cpu": math.nan, "maxrss_kb": math.nan}
    result = ProcResult(
        returncode=returncode,
        wall=usage["wall"],
        cpu=usage["cpu"],
        maxrss_mb=usage["maxrss_kb"] / 1024,  # Linux: KiB
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr_path=err_path,
        stopped=stopped,
    )
    if result.returncode != 0 and not stopped:
        tail = err_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        log(f"{name} exited {result.returncode}; stderr tail:\n    " + "\n    ".join(tail))
    return result


def new_emulator(shape: Shape, **kwargs: Any) -> SfmcEmulator:
    """A started emulator holding the shape's Data Extensions."""
    emu = SfmcEmulator(
        data_extensions=[dict(de) for de in shape.data_extensions],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        **kwargs,
    )
    emu.start()
    return emu


def stored_rows(emu: SfmcEmulator, shape: Shape) -> int:
    """Rows in the shape's Data Extensions (pending async jobs applied first)."""
    api = emu.api
    total = 0
    for de in shape.data_extensions:
        try:
            api.jobs.process_due()
            cde = api.data_extension(de["key"])
            if cde is None:
                raise KeyError(de["key"])
            total += api.store.count_rows(cde.de.id)
        except AttributeError:  # emulator internals changed: use the public (slower) way
            total += len(emu.rows(de["key"]))
    return total


def target_config(
    emu: SfmcEmulator, workdir: Path, name: str, shape: Shape, **overrides: Any
) -> Path:
    """Write a target config for the shape; every setting not overridden is the default."""
    config: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subdomain": SUBDOMAIN,
        "auth_url": emu.url,
        "validate_records": True,
        **shape.config(),
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
    *,
    profile: Path | None = None,
    stop_after: float | None = None,
) -> ProcResult:
    """Run target-sfmc on a file, with a local budget store of its own (no shared state)."""
    prefix = [sys.executable]
    if profile is not None:
        prefix += ["-m", "cProfile", "-o", str(profile)]
    args = [*prefix, "-m", "target_sfmc", "--config", str(config), "--input", str(input_path)]
    env = {**os.environ, "XDG_CACHE_HOME": str(workdir / "cache" / name)}
    return run_process(args, workdir, name, timeout, env=env, stop_after=stop_after)


def run_noop(input_path: Path, workdir: Path, name: str, timeout: float) -> ProcResult:
    """Run the default singer-sdk no-op target on a file."""
    return run_process(
        [sys.executable, str(NOOP_TARGET), "--input", str(input_path)], workdir, name, timeout
    )


def final_state_ok(result: ProcResult, records: int) -> bool:
    """Whether the last line the process printed is the input's final STATE."""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return bool(lines) and json.loads(lines[-1]) == {"bookmark": records}


def count_requests(emu: SfmcEmulator) -> dict[str, int]:
    """Requests by endpoint, all statuses."""
    return {ep: sum(by_status.values()) for ep, by_status in emu.request_counts().items()}


def count_429(emu: SfmcEmulator) -> int:
    """Requests the emulator answered with 429."""
    return sum(by_status.get(429, 0) for by_status in emu.request_counts().values())


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """Most arrivals in any half-open window of `window` seconds (the emulator's rule)."""
    best, lo = 0, 0
    for hi, at in enumerate(times):
        while at - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# --------------------------------------------------------------------------- 1. CPU


def warm_up(workdir: Path, timeout: float) -> None:
    """Bytecode caches and page cache, so that no measured run pays first-import costs.

    The target's bytecode is compiled explicitly, as `pip install` does: an editable install
    run with PYTHONDONTWRITEBYTECODE would compile its modules again in every run, while the
    SDK's, in site-packages, were compiled at install.
    """
    compileall.compile_dir(ROOT / "target_sfmc", quiet=1)
    warm = FLAT.write_input(workdir / "warm.singer", 200)
    emu = new_emulator(FLAT, async_delay_ms=5)
    try:
        run_noop(warm, workdir, "warm-noop", timeout)
        config = target_config(emu, workdir, "warm-target", FLAT, use_async_api=True)
        run_target(config, warm, workdir, "warm-target", timeout)
    finally:
        emu.close()


def cpu_target_run(
    shape: Shape, input_path: Path, records: int, workdir: Path, name: str, timeout: float
) -> dict[str, Any]:
    """One target run on the async path, default settings otherwise, against a fresh emulator."""
    emu = new_emulator(shape, async_delay_ms=5)
    try:
        config = target_config(emu, workdir, name, shape, use_async_api=True)
        self_before = resource.getrusage(resource.RUSAGE_SELF)
        result = run_target(config, input_path, workdir, name, timeout)
        self_after = resource.getrusage(resource.RUSAGE_SELF)
        stored = stored_rows(emu, shape)
        requests = count_requests(emu)
    finally:
        emu.close()
    return {
        "result": result,
        "stored": stored,
        "requests": requests,
        "state_ok": final_state_ok(result, records),
        "emulator_cpu": (self_after.ru_utime + self_after.ru_stime)
        - (self_before.ru_utime + self_before.ru_stime),
    }


def bench_cpu(
    workdir: Path,
    shapes: list[Shape],
    records: dict[str, int],
    trials: int,
    timeout: float,
    *,
    profile: bool,
) -> dict[str, Any]:
    """Section 1: CPU-seconds of the target vs the no-op, per shape, trials alternating."""
    inputs = {}
    for shape in shapes:
        n = records[shape.name]
        log(f"[cpu] writing {n:,} {shape.name} records")
        inputs[shape.name] = shape.write_input(workdir / f"cpu-{shape.name}.singer", n)
    warm_up(workdir, timeout)

    # Trials go round the shapes, and within a trial the no-op and the target alternate which
    # runs first, so that a slow spell of this shared machine hits both sides.
    runs: dict[str, list[dict[str, Any]]] = {shape.name: [] for shape in shapes}
    for trial in range(1, trials + 1):
        for shape in shapes:
            n, input_path = records[shape.name], inputs[shape.name]
            outcome: dict[str, Any] = {}
            for side in ("noop", "target") if trial % 2 else ("target", "noop"):
                name = f"cpu-{shape.name}-{side}-{trial}"
                if side == "noop":
                    log(f"[cpu] {shape.name} trial {trial}/{trials}: no-op singer-sdk target")
                    outcome["noop"] = run_noop(input_path, workdir, name, timeout)
                else:
                    log(f"[cpu] {shape.name} trial {trial}/{trials}: target-sfmc async path")
                    outcome.update(cpu_target_run(shape, input_path, n, workdir, name, timeout))
            runs[shape.name].append(outcome)

    out: dict[str, Any] = {"trials": trials, "shapes": {}}
    for shape in shapes:
        n = records[shape.name]
        shape_runs = runs[shape.name]
        ratio_cpu = [r["noop"].cpu / r["result"].cpu for r in shape_runs]
        ratio_wall = [r["noop"].wall / r["result"].wall for r in shape_runs]
        median_run = sorted(zip(ratio_cpu, range(len(shape_runs)), strict=True))[
            (len(shape_runs) - 1) // 2
        ][1]
        cpu_spread = spread(ratio_cpu)
        out["shapes"][shape.name] = {
            "description": shape.description,
            "records": n,
            "target_ratio": shape.cpu_target,
            "ratio_cpu": cpu_spread,
            "ratio_wall": spread(ratio_wall),
            "target_cpu_s": spread([r["result"].cpu for r in shape_runs]),
            "noop_cpu_s": spread([r["noop"].cpu for r in shape_runs]),
            "target_wall_s": spread([r["result"].wall for r in shape_runs]),
            "noop_wall_s": spread([r["noop"].wall for r in shape_runs]),
            "emulator_cpu_s": spread([r["emulator_cpu"] for r in shape_runs]),
            "stored": [r["stored"] for r in shape_runs],
            "all_stored": all(r["stored"] == n for r in shape_runs),
            "state_ok": all(r["state_ok"] and final_state_ok(r["noop"], n) for r in shape_runs),
            "met": cpu_spread["median"] is not None and cpu_spread["median"] >= shape.cpu_target,
            "trials_met": sum(r >= shape.cpu_target for r in ratio_cpu),
            "requests": shape_runs[median_run]["requests"],
            "runs": [
                {
                    "noop": r["noop"].as_dict(),
                    "target": r["result"].as_dict(),
                    "ratio_cpu": num(c),
                    "ratio_wall": num(w),
                    "emulator_cpu_s": num(r["emulator_cpu"]),
                    "stored": r["stored"],
                }
                for r, c, w in zip(shape_runs, ratio_cpu, ratio_wall, strict=True)
            ],
        }

    if profile and FLAT in shapes:
        log("[cpu] profiling target-sfmc on the flat input (cProfile, main thread)")
        emu = new_emulator(FLAT, async_delay_ms=5)
        prof = workdir / "target.prof"
        try:
            config = target_config(emu, workdir, "prof-target", FLAT, use_async_api=True)
            prof_run = run_target(
                config, inputs["flat"], workdir, "prof-target", timeout * 3, profile=prof
            )
        finally:
            emu.close()
        out["profile"] = {
            "wall_s": num(prof_run.wall),
            "exit": prof_run.returncode,
            "text": profile_summary(prof) if prof.exists() else "no profile",
        }
    for path in inputs.values():
        path.unlink(missing_ok=True)
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


def report_cpu(cpu: dict[str, Any]) -> None:
    """Print section 1: per shape, then per trial."""
    rows = []
    for name, s in cpu["shapes"].items():
        ratio, wall = s["ratio_cpu"], s["ratio_wall"]
        rows.append(
            [
                f"{name}: {s['description']}",
                fmt(s["records"]),
                fmt(s["target_cpu_s"]["median"], 2),
                fmt(s["noop_cpu_s"]["median"], 2),
                f"**{ratio['median']:.2f}x**",
                f"{ratio['min']:.2f}-{ratio['max']:.2f}x",
                f"{wall['median']:.2f}x ({wall['min']:.2f}-{wall['max']:.2f})",
                f"{sum(s['stored']):,} of {s['records'] * len(s['stored']):,}",
                f">= {s['target_ratio']:g}x",
                ("PASS" if s["met"] else "FAIL") + f" ({s['trials_met']}/{len(s['runs'])} trials)",
            ]
        )
    print(
        table(
            f"1. CPU: target-sfmc (async path, validate_records on) vs the default singer-sdk "
            f"no-op BatchSink target on the same input; {cpu['trials']} trial(s), alternating",
            [
                "shape",
                "records",
                "target cpu s",
                "no-op cpu s",
                "ratio cpu (median)",
                "ratio cpu min-max",
                "ratio wall median (min-max)",
                "rows stored (all trials)",
                "target",
                "met (median)",
            ],
            rows,
        )
    )
    detail = []
    for name, s in cpu["shapes"].items():
        for number, r in enumerate(s["runs"], start=1):
            detail.append(
                [
                    f"{name} {number}",
                    fmt(r["noop"]["wall_s"], 2),
                    fmt(r["noop"]["cpu_s"], 2),
                    fmt(r["target"]["wall_s"], 2),
                    fmt(r["target"]["cpu_s"], 2),
                    fmt(r["target"]["peak_rss_mb"], 1),
                    fmt(r["emulator_cpu_s"], 2),
                    f"{r['ratio_cpu']:.2f}x",
                    f"{r['ratio_wall']:.2f}x",
                    ", ".join(
                        "ok" if p["exit"] == 0 else f"exit {p['exit']}"
                        for p in (r["noop"], r["target"])
                    ),
                ]
            )
    print(
        table(
            "1b. CPU, each trial",
            [
                "shape, trial",
                "no-op wall s",
                "no-op cpu s",
                "target wall s",
                "target cpu s",
                "target peak RSS MB",
                "emulator cpu s",
                "ratio cpu",
                "ratio wall",
                "exits (no-op, target)",
            ],
            detail,
        )
    )
    print(
        "\nratio = no-op CPU-seconds / target CPU-seconds on the same input (user+sys of each "
        "process); the emulator's CPU is in the harness process, not in either. Final STATE "
        "emitted by both in every trial: "
        + ", ".join(f"{n} {s['state_ok']}" for n, s in cpu["shapes"].items())
    )


# --------------------------------------------------------------------------- 2. defaults


def bench_defaults(
    workdir: Path,
    latencies: list[int],
    seconds: float,
    cap: float,
    async_request_rows: int,
    timeout: float,
) -> dict[str, Any]:
    """Section 2: the target at its default settings against latencies of 100 ms to 1.5 s.

    Inputs are sized for ``seconds`` of sending at the limit; a run still going after ``cap``
    seconds plus `CAP_ROUND_TRIPS` latencies (start-up lookups, the last polls) is stopped
    (input was still plentiful, so its busy share stands).
    """
    sizes = {
        "sync": round(seconds * RATE_LIMIT * SYNC_ROWS_PER_REQUEST),
        "async": round(seconds * RATE_LIMIT * async_request_rows / ASYNC_REQUESTS_PER_UPLOAD),
    }
    inputs = {
        mode: FLAT.write_input(workdir / f"defaults-{mode}.singer", rows, seed=11)
        for mode, rows in sizes.items()
    }
    runs = [
        defaults_run(
            workdir, mode, latency, inputs[mode], sizes[mode], cap, async_request_rows, timeout
        )
        for latency in latencies
        for mode in ("sync", "async")
    ]
    for path in inputs.values():
        path.unlink(missing_ok=True)
    return {
        "rate_limit": RATE_LIMIT,
        # The defaults the runs used (read from the code measured, not assumed).
        "target_defaults": {
            name: getattr(settings_schema, f"DEFAULT_{name.upper()}", None)
            for name in ("requests_per_second", "max_concurrent_requests")
        },
        "jitter_share": JITTER_SHARE,
        "seconds": seconds,
        "cap_s": cap,
        "async_request_rows": async_request_rows,
        "runs": runs,
    }


def defaults_run(
    workdir: Path,
    mode: str,
    latency: int,
    input_path: Path,
    rows: int,
    cap: float,
    async_request_rows: int,
    timeout: float,
) -> dict[str, Any]:
    """One load at default settings; figures from the emulator's request log."""
    jitter = round(latency * JITTER_SHARE)
    stop_after = cap + CAP_ROUND_TRIPS * latency / 1000
    name = f"defaults-{mode}-{latency}"
    log(f"[defaults] {mode}: {rows:,} rows, latency {latency} +/- {jitter} ms, {RATE_LIMIT}/s")
    emu = new_emulator(
        FLAT,
        rate_limit=RATE_LIMIT,
        latency_ms=latency,
        latency_jitter_ms=jitter,
        async_delay_ms=100,
    )
    # Default settings: requests_per_second, max_concurrent_requests and the rest unset.
    # Sync identify would otherwise add one Contacts request per new Contact Key.
    overrides: dict[str, Any] = (
        {"use_async_api": True, "batch_size_rows": async_request_rows}
        if mode == "async"
        else {"do_not_create_or_update_contacts": True}
    )
    try:
        config = target_config(emu, workdir, name, FLAT, **overrides)
        result = run_target(config, input_path, workdir, name, timeout, stop_after=stop_after)
        if result.stopped:  # requests in flight are logged when answered
            time.sleep((latency + jitter) / 1000 + 0.5)
        entries = emu.request_log()
        stored = stored_rows(emu, FLAT)
        requests = count_requests(emu)
        throttled = count_429(emu)
    finally:
        emu.close()
    busy = busy_figures(entries)
    return {
        "mode": mode,
        "latency_ms": latency,
        "jitter_ms": jitter,
        "rows": rows,
        "stored": stored,
        "cap_s": stop_after,
        "process": result.as_dict(),
        "requests": requests,
        "throttled": throttled,
        **busy,
        "met_limit": busy["max_1s"] <= RATE_LIMIT and throttled == 0,
    }


def busy_figures(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Busy share while sending data, most arrivals in a second, longest pause.

    The busy period runs from the first to the last data request (rowset or async upload):
    input is plentiful throughout it. Every admitted request in it counts (status polls and
    token requests spend the same budget); start-up lookups and the last jobs' polls fall
    outside it.
    """
    times = sorted(e["time"] for e in entries)
    data = sorted(e["time"] for e in entries if e["endpoint"] in DATA_ENDPOINTS)
    if len(data) < 2:
        return {
            "busy_s": None,
            "busy_requests": 0,
            "busy_share": None,
            "max_1s": max_in_window(times),
            "gap_s": None,
            "met_busy": False,
        }
    start, end = data[0], data[-1]
    inside = [e["time"] for e in entries if e["status"] != 429 and start <= e["time"] <= end]
    inside.sort()
    gaps = [b - a for a, b in itertools.pairwise(inside)]
    share = (len(inside) - 1) / (end - start) / RATE_LIMIT
    return {
        "busy_s": num(end - start, 2),
        "busy_requests": len(inside),
        "busy_share": num(share, 4),
        "max_1s": max_in_window(times),
        "gap_s": num(max(gaps, default=0.0), 2),
        "met_busy": share >= BUSY_TARGET,
    }


def report_defaults(defaults: dict[str, Any]) -> None:
    """Print section 2."""
    rows = []
    for r in defaults["runs"]:
        stored = f"{r['stored']:,} of {r['rows']:,}"
        if r["process"]["stopped"]:
            stored += f" (stopped at {r['cap_s']:.1f} s)"
        elif r["process"]["exit"] != 0:
            stored += f" (exit {r['process']['exit']})"
        share = r["busy_share"]
        load = r["mode"]
        if r["mode"] == "async":
            load += f", {defaults['async_request_rows']}-row requests"
        rows.append(
            [
                f"{r['latency_ms']} +/- {r['jitter_ms']} ms",
                load,
                fmt(r["busy_s"], 1),
                r["busy_requests"],
                "n/a" if share is None else f"**{share:.1%}**",
                r["max_1s"],
                r["throttled"],
                fmt(r["gap_s"], 2),
                stored,
                "yes" if r["met_busy"] else "NO",
                "yes" if r["met_limit"] else "NO",
            ]
        )
    print(
        table(
            f"2. Budget at defaults: emulator rate_limit {RATE_LIMIT}/s, latency with jitter "
            f"(uniform, +/- {defaults['jitter_share']:.0%}); target at its default settings "
            f"({', '.join(f'{k} {v}' for k, v in defaults['target_defaults'].items())}); "
            "sync with contacts off, "
            f"async with batch_size_rows {defaults['async_request_rows']} so that the budget, "
            "not the CPU, is the bottleneck",
            [
                "latency",
                "load",
                "busy s",
                "requests",
                "busy share",
                "max req in any 1 s",
                "429s",
                "longest gap s",
                "rows stored",
                f">= {BUSY_TARGET:.0%} busy",
                f"<= {RATE_LIMIT}/s",
            ],
            rows,
        )
    )
    print(
        "\nbusy period = first to last data request (rowset / async upload) in the emulator's "
        f"request log; busy share = admitted requests per second in it / {RATE_LIMIT}. "
        f"max in 1 s: all arrivals, whole run. Inputs are sized for {defaults['seconds']:.0f} s "
        f"at the limit; a run still sending after {defaults['cap_s']:.0f} s plus "
        f"{CAP_ROUND_TRIPS} latencies is stopped."
    )


# --------------------------------------------------------------------------- 3. memory


def bench_memory(workdir: Path, sizes: list[int], timeout: float) -> dict[str, Any]:
    """Section 3: peak RSS of the target for two sizes of the nested shape (async path)."""
    runs = []
    for records in sizes:
        log(f"[memory] writing {records:,} nested records")
        input_path = NESTED.write_input(workdir / f"mem-{records}.singer", records, seed=13)
        log(f"[memory] target-sfmc async path, {records:,} records")
        outcome = cpu_target_run(NESTED, input_path, records, workdir, f"mem-{records}", timeout)
        input_path.unlink(missing_ok=True)
        runs.append(
            {
                "records": records,
                "process": outcome["result"].as_dict(),
                "stored": outcome["stored"],
                "state_ok": outcome["state_ok"],
            }
        )
    small, big = runs[0], runs[-1]
    ratio = big["process"]["peak_rss_mb"] / small["process"]["peak_rss_mb"]
    return {
        "shape": NESTED.name,
        "runs": runs,
        "ratio": num(ratio),
        "target_ratio": MEMORY_TARGET,
        "met": ratio <= MEMORY_TARGET,
    }


def report_memory(memory: dict[str, Any]) -> None:
    """Print section 3."""
    rows = [
        [
            fmt(r["records"]),
            "ok" if r["process"]["exit"] == 0 else f"exit {r['process']['exit']}",
            fmt(r["process"]["wall_s"], 1),
            fmt(r["process"]["cpu_s"], 1),
            fmt(r["process"]["peak_rss_mb"], 1),
            f"{r['stored']:,}",
            r["state_ok"],
        ]
        for r in memory["runs"]
    ]
    print(
        table(
            "3. Memory: peak RSS of the target process, nested shape, async path "
            "(os.wait4 ru_maxrss)",
            ["records", "exit", "wall s", "cpu s", "peak RSS MB", "rows stored", "final STATE"],
            rows,
        )
    )
    small, big = memory["runs"][0], memory["runs"][-1]
    print(
        f"\nratio peak RSS {big['records']:,} / {small['records']:,}: **{memory['ratio']:.2f}x** "
        f"(target: <= {MEMORY_TARGET:g}x): {'PASS' if memory['met'] else 'FAIL'}"
    )


# --------------------------------------------------------------------------- 4. requests


def bench_sync_contacts(workdir: Path, rows: int, timeout: float) -> dict[str, Any]:
    """A sync identify load with contact creation on (the default), unthrottled."""
    log(f"[requests] sync path with contact creation (default), {rows:,} rows, unthrottled")
    input_path = FLAT.write_input(workdir / "contacts.singer", rows, seed=17)
    emu = new_emulator(FLAT)
    try:
        config = target_config(
            emu, workdir, "contacts", FLAT, requests_per_second=1000, max_concurrent_requests=8
        )
        result = run_target(config, input_path, workdir, "contacts", timeout)
        stored = stored_rows(emu, FLAT)
        requests = count_requests(emu)
    finally:
        emu.close()
    input_path.unlink(missing_ok=True)
    return {"rows": rows, "process": result.as_dict(), "stored": stored, "requests": requests}


def per_10k(label: str, rows: int, requests: dict[str, int]) -> dict[str, Any]:
    """Requests per 10k rows by endpoint, and rows per data request."""
    data = {
        "rowset": requests.get("rowset", 0),
        "async_upsert": requests.get("async_upsert", 0),
        "async_status": requests.get("async_status", 0),
        "async_results": requests.get("async_results", 0),
        "contacts": requests.get("contacts", 0),
        "token": requests.get("token", 0) + requests.get("legacy_token", 0),
    }
    data_requests = data["rowset"] + data["async_upsert"]
    scale = 10_000 / rows if rows else math.nan
    return {
        "path": label,
        "rows": rows,
        "per_10k": {k: num(v * scale, 1) for k, v in data.items()},
        "total_per_10k": num(sum(requests.values()) * scale, 1),
        "rows_per_data_request": num(rows / data_requests, 0) if data_requests else None,
    }


def requests_table(
    cpu: dict[str, Any] | None, defaults: dict[str, Any] | None, contacts: dict[str, Any]
) -> list[dict[str, Any]]:
    """Section 4's rows from the runs of the other sections and the contacts run."""
    rows = []
    if defaults is not None:
        lowest = min(r["latency_ms"] for r in defaults["runs"])
        for r in defaults["runs"]:
            if r["latency_ms"] == lowest and not r["process"]["stopped"]:
                label = (
                    f"async, batch_size_rows {defaults['async_request_rows']}"
                    if r["mode"] == "async"
                    else "sync, contacts off"
                )
                rows.append(per_10k(label, r["rows"], r["requests"]))
    rows.append(per_10k("sync, contacts on (default)", contacts["rows"], contacts["requests"]))
    if cpu is not None and "flat" in cpu["shapes"]:
        flat = cpu["shapes"]["flat"]
        rows.append(per_10k("async, default request size", flat["records"], flat["requests"]))
    return rows


def report_requests(rows: list[dict[str, Any]]) -> None:
    """Print section 4."""
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
            [
                [
                    r["path"],
                    fmt(r["rows"]),
                    *(fmt(v, 1) for v in r["per_10k"].values()),
                    fmt(r["total_per_10k"], 1),
                    fmt(r["rows_per_data_request"]),
                ]
                for r in rows
            ],
        )
    )
    print("\nlimits: sync rowset <= 50 rows/request; async <= 32,000 rows (and ~4 MB) per request.")


# --------------------------------------------------------------------------- 5. shared budget

SHARED_PROCESSES = 3
SHARED_LATENCY_MS = 200
SHARED_SCHEMA = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "plan": {"type": ["string", "null"]},
        "score": {"type": ["integer", "null"]},
    },
}


def shared_de(key: str) -> dict[str, Any]:
    """The Data Extension one pipeline of section 5 writes."""
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


def write_shared_input(path: Path, key: str, rows: int) -> Path:
    """One pipeline's input: a flat track stream with a key of its own per row."""
    with path.open("w", encoding="utf-8") as out:
        schema = {
            "type": "SCHEMA",
            "stream": "events",
            "schema": SHARED_SCHEMA,
            "key_properties": ["user_id"],
        }
        out.write(json.dumps(schema) + "\n")
        for i in range(rows):
            record = {"user_id": f"{key}-{i}", "plan": "pro", "score": i}
            out.write(json.dumps({"type": "RECORD", "stream": "events", "record": record}) + "\n")
    return path


def shared_shares(
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


def bench_shared(
    workdir: Path, rows: int, timeout: float, store: str, rate_limit_url: str | None
) -> dict[str, Any]:
    """Three target processes, default settings, one account, one emulator at the limit."""
    keys = [f"PIPELINE_{n}" for n in range(1, SHARED_PROCESSES + 1)]
    log(f"[shared] {store}: {SHARED_PROCESSES} processes x {rows:,} rows, {RATE_LIMIT} req/s")
    emu = SfmcEmulator(
        data_extensions=[shared_de(key) for key in keys],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        rate_limit=RATE_LIMIT,
        latency_ms=SHARED_LATENCY_MS,
    )
    emu.start()
    # Each run gets a store of its own (a fresh cache directory): no token from earlier runs.
    env = {**os.environ, "XDG_CACHE_HOME": str(workdir / f"cache-shared-{store}")}
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
            config_path = workdir / f"shared-{store}-{key}.json"
            config_path.write_text(json.dumps(config), encoding="utf-8")
            input_path = write_shared_input(workdir / f"shared-{key}.singer", key, rows)
            err = (workdir / f"shared-{store}-{key}.stderr").open("wb")
            command = [
                sys.executable,
                "-m",
                "target_sfmc",
                "--config",
                str(config_path),
                "--input",
                str(input_path),
            ]
            procs.append(
                (
                    subprocess.Popen(
                        command,
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
    overlap, busy, per = shared_shares(entries, keys)
    return {
        "store": store,
        "rows": rows,
        "codes": codes,
        "overlap_s": num(overlap, 2),
        "busy_share": num(busy),
        "max_1s": max_in_window(sorted(e["time"] for e in entries)),
        "throttled": throttled,
        "per_process": per,
        "token_requests": requests.get("token", 0) + requests.get("legacy_token", 0),
        "all_stored": all(v == rows for v in stored.values()),
    }


def report_shared(results: list[dict[str, Any]]) -> None:
    """Print section 5."""
    rows = []
    for r in results:
        per = list(r["per_process"].values())
        rows.append(
            [
                r["store"],
                ", ".join("ok" if c == 0 else f"exit {c}" for c in r["codes"]),
                fmt(r["overlap_s"], 1),
                "n/a" if r["busy_share"] is None else f"{r['busy_share']:.0%}",
                r["max_1s"],
                r["throttled"],
                " / ".join(str(v) for v in per),
                f"{min(per) / max(per):.2f}" if per and max(per) else "n/a",
                r["token_requests"],
                "OK" if r["all_stored"] else "MISMATCH",
            ]
        )
    print(
        table(
            f"5. One budget, three pipelines: {SHARED_PROCESSES} processes at default settings, "
            f"emulator rate_limit {RATE_LIMIT}/s, latency {SHARED_LATENCY_MS} ms",
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


# --------------------------------------------------------------------------- main


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke version")
    parser.add_argument(
        "--only", nargs="+", choices=SECTIONS, help="run only these sections (default: all)"
    )
    parser.add_argument(
        "--shapes", nargs="+", choices=list(SHAPES), help="CPU section shapes (default: all)"
    )
    parser.add_argument(
        "--records",
        type=int,
        help="records per CPU input, every shape (default: 200k)",
    )
    parser.add_argument(
        "--trials", type=int, help="CPU trials per shape, no-op and target alternating (3)"
    )
    parser.add_argument(
        "--latencies",
        type=int,
        nargs="+",
        metavar="MS",
        help="emulator latencies of the defaults section (100 500 1500)",
    )
    parser.add_argument(
        "--defaults-seconds",
        type=float,
        help="defaults section: size each input for this many seconds at the limit (20)",
    )
    parser.add_argument(
        "--defaults-cap",
        type=float,
        help="defaults section: stop a run still sending after this many seconds, plus five "
        "latencies (25)",
    )
    parser.add_argument(
        "--async-request-rows",
        type=int,
        help="defaults section: batch_size_rows (rows per request) of the async loads (250)",
    )
    parser.add_argument(
        "--memory-records",
        type=int,
        nargs=2,
        metavar=("SMALL", "LARGE"),
        help="record counts for the peak-RSS comparison (100000 1000000)",
    )
    parser.add_argument("--contacts-rows", type=int, help="rows of the sync+contacts count")
    parser.add_argument("--shared-rows", type=int, help="rows per process, section 5 (6000)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also cProfile the target on the flat CPU input (top 15 cumulative)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure as JSON")
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help=f"write {RESULTS_JSON.relative_to(ROOT)} and README.md's benchmark block "
        "(full runs of every section only)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, inputs)")
    args = parser.parse_args()
    if args.write_readme and (args.quick or (args.only and set(args.only) != set(SECTIONS))):
        parser.error("--write-readme needs a full run of every section (no --quick or --only)")
    return args


def main() -> int:  # noqa: C901, PLR0912, PLR0915 - one linear script
    """Run the sections asked for, print their tables and the summary, write the results."""
    args = parse_args()
    quick = args.quick
    shapes = [SHAPES[name] for name in (args.shapes or SHAPES)]
    records = {
        s.name: args.records or (s.default_records // 10 if quick else s.default_records)
        for s in shapes
    }
    trials = args.trials or (1 if quick else 3)
    latencies = args.latencies or [100, 500, 1500]
    seconds = args.defaults_seconds or (5.0 if quick else 20.0)
    cap = args.defaults_cap or (10.0 if quick else 25.0)
    async_request_rows = args.async_request_rows or 250
    mem_sizes = list(args.memory_records or ((10_000, 100_000) if quick else (100_000, 1_000_000)))
    contacts_rows = args.contacts_rows or (1_000 if quick else 5_000)
    shared_rows = args.shared_rows or (3_000 if quick else 6_000)
    sections = set(args.only or SECTIONS)
    timeout = 1800.0

    workdir = Path(tempfile.mkdtemp(prefix="target-sfmc-bench-"))
    log(f"work dir {workdir}")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            **git_commit(),
            "python": f"{platform.python_version()} ({platform.python_implementation()})",
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "load_start": loadavg(),
            "quick": quick,
            "argv": sys.argv[1:],
        }
    }
    failed: list[str] = []
    try:
        meta = results["meta"]
        print("# target-sfmc benchmarks" + (" (--quick)" if quick else ""))
        print(
            f"python {meta['python']}, {meta['platform']}, cpu_count {meta['cpu_count']}, "
            f"usable {meta['cpus_usable']}; commit {meta['commit']}"
            + (" (with uncommitted changes)" if meta["dirty"] else "")
        )
        sys.stdout.flush()
        if "cpu" in sections:
            cpu = bench_cpu(workdir, shapes, records, trials, timeout, profile=args.profile)
            results["cpu"] = cpu
            report_cpu(cpu)
            failed += [
                f"cpu {n}"
                for n, s in cpu["shapes"].items()
                for r in s["runs"]
                if r["noop"]["exit"] or r["target"]["exit"]
            ]
            sys.stdout.flush()
        if "defaults" in sections:
            defaults = bench_defaults(workdir, latencies, seconds, cap, async_request_rows, timeout)
            results["defaults"] = defaults
            report_defaults(defaults)
            failed += [
                f"defaults {r['mode']} {r['latency_ms']}"
                for r in defaults["runs"]
                if r["process"]["exit"] and not r["process"]["stopped"]
            ]
            sys.stdout.flush()
        if "memory" in sections:
            memory = bench_memory(workdir, mem_sizes, timeout)
            results["memory"] = memory
            report_memory(memory)
            failed += [f"memory {r['records']}" for r in memory["runs"] if r["process"]["exit"]]
            sys.stdout.flush()
        if "requests" in sections:
            contacts = bench_sync_contacts(workdir, contacts_rows, timeout)
            results["requests"] = requests_table(
                results.get("cpu"), results.get("defaults"), contacts
            )
            report_requests(results["requests"])
            failed += ["requests contacts"] if contacts["process"]["exit"] else []
            sys.stdout.flush()
        if "shared" in sections:
            shared = [bench_shared(workdir, shared_rows, timeout, "local", None)]
            redis_server = start_redis(workdir)
            if redis_server is None:
                log("[shared] redis-server not installed: Redis run skipped")
            else:
                try:
                    shared.append(
                        bench_shared(workdir, shared_rows, timeout, "redis", redis_server[1])
                    )
                finally:
                    redis_server[0].terminate()
                    redis_server[0].wait()
            results["shared"] = shared
            report_shared(shared)
            failed += [f"shared {r['store']}" for r in shared if any(r["codes"])]
            sys.stdout.flush()
        profile = results.get("cpu", {}).get("profile")
        if profile:
            print(
                f"\n### cProfile of target-sfmc on the flat CPU input (main thread; wall "
                f"{profile['wall_s']:.1f} s under the profiler, exit {profile['exit']})\n"
            )
            print("```\n" + profile["text"].strip() + "\n```")
        meta["load_end"] = loadavg()
        meta["total_s"] = round(time.perf_counter() - started)
        print("\n## Summary (the README block, from this run)\n")
        print(readme_block.render(results))
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        log(f"wrote {args.json}")
    if args.write_readme:
        results.get("cpu", {}).pop("profile", None)
        RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        readme_block.write_readme(README, results)
        log(f"wrote {RESULTS_JSON} and the benchmark block of {README}")
    if failed:
        log("runs that failed: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C: running targets are killed and the temp dir removed.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    # The in-process emulator holds every job's rows: tuned as the sfmc-emulator CLI is.
    with tuned_for_loading():
        sys.exit(main())
