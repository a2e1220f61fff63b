"""README.md's benchmark block, rendered from the figures of one run of `benchmarks/run.py`.

``python benchmarks/run.py --write-readme`` writes ``benchmarks/results.json`` and this block.
This module renders the block from such results, so the README's figures are always one run's:

    python benchmarks/readme_block.py           # rewrite the block from benchmarks/results.json
    python benchmarks/readme_block.py --check   # exit 1 when the block is not that rendering

It reads only the JSON: no benchmark runs, no imports from the target.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_JSON = HERE / "results.json"
README = HERE.parent / "README.md"
START = "<!-- benchmark:start -->"
END = "<!-- benchmark:end -->"
TIMES = "\u00d7"  # multiplication sign
DASH = "\u2013"  # en dash, for ranges
SHAPE_LABELS = {
    "flat": "flat identify records",
    "nested": "identify records with nested objects and arrays (dropped)",
    "segment": "Segment messages (half identify, half track into a conversion DE)",
}


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}{TIMES}"


def _range(figure: dict[str, float | None]) -> str:
    return f"{_x(figure['min'])}{DASH}{_x(figure['max'])}"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _pct(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:.{digits}%}".replace("%", " %")


def _yes(value: bool) -> str:  # noqa: FBT001 - a table cell
    return "yes" if value else "**no**"


def _k(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000:,}M"
    return f"{n // 1000:,}k" if n % 1000 == 0 else f"{n:,}"


def _cpu_rows(cpu: dict[str, Any]) -> list[list[str]]:
    rows = []
    for name, s in cpu["shapes"].items():
        ratio, wall = s["ratio_cpu"], s["ratio_wall"]
        trials = len(s["runs"])
        stored = (
            f"{s['records']:,} rows stored in every trial"
            if s["all_stored"]
            else f"**rows stored {', '.join(f'{v:,}' for v in s['stored'])} of {s['records']:,}**"
        )
        rows.append(
            [
                f"CPU-seconds vs the no-op: {SHAPE_LABELS.get(name, name)}, {_k(s['records'])}",
                (
                    f"**{_x(ratio['median'])}** (trials {_range(ratio)}); "
                    f"wall-clock {_x(wall['median'])} ({_range(wall)}); "
                    f"{s['target_cpu_s']['median']:.2f} s vs "
                    f"{s['noop_cpu_s']['median']:.2f} s CPU; {stored}"
                ),
                f"≥ {s['target_ratio']:g}{TIMES}",
                f"{_yes(s['met'])} ({s['trials_met']}/{trials} trials)",
            ]
        )
    return rows


def _defaults_rows(defaults: dict[str, Any]) -> list[list[str]]:
    rows = []
    limit = defaults["rate_limit"]
    used = defaults.get("target_defaults") or {}
    settings = (
        " (" + ", ".join(f"`{k}` {v}" for k, v in used.items() if v is not None) + ")"
        if any(v is not None for v in used.values())
        else ""
    )
    for r in defaults["runs"]:
        load = (
            f"async, {defaults['async_request_rows']}-row requests"
            if r["mode"] == "async"
            else "sync, contacts off"
        )
        note = ""
        if r["process"]["stopped"]:
            cap = r.get("cap_s", defaults["cap_s"])
            note = f" (stopped at {cap:.1f} s, {r['stored']:,} of {r['rows']:,} rows)"
        elif r["process"]["exit"] != 0:
            note = f" (**exit {r['process']['exit']}**)"
        rows.append(
            [
                (
                    f"Budget at defaults{settings}: latency {r['latency_ms']} ± "
                    f"{r['jitter_ms']} ms, {load}"
                ),
                (
                    f"**{_pct(r['busy_share'], 1)}** busy over {_secs(r['busy_s'])}, at most "
                    f"**{r['max_1s']}** requests in any second, **{r['throttled']}** 429s{note}"
                ),
                f"≥ 90 %, ≤ {limit}/s",
                f"{_yes(r['met_busy'])} / {_yes(r['met_limit'])}",
            ]
        )
    return rows


def _memory_row(memory: dict[str, Any]) -> list[str]:
    small, big = memory["runs"][0], memory["runs"][-1]
    return [
        f"Peak RSS, nested shape, {_k(big['records'])} vs {_k(small['records'])} records (async)",
        (
            f"**{_x(memory['ratio'])}** ({big['process']['peak_rss_mb']:.0f} MB vs "
            f"{small['process']['peak_rss_mb']:.0f} MB)"
        ),
        f"≤ {memory['target_ratio']:g}{TIMES}",
        _yes(memory["met"]),
    ]


def _requests_row(requests: list[dict[str, Any]]) -> list[str]:
    parts = []
    for r in requests:
        per = r["per_10k"]
        counts = ", ".join(
            f"{v:,g} {k.replace('_', ' ')}" for k, v in per.items() if v and k != "token"
        )
        size = r["rows_per_data_request"]
        parts.append(f"{r['path']}: {counts}" + (f" ({size:,.0f} rows each)" if size else ""))
    return [
        "Requests per 10k rows",
        "; ".join(parts),
        "near SFMC's limits (50 rows a rowset; 32,000 rows or 4 MB an async request)",
        "—",
    ]


def _shared_row(shared: list[dict[str, Any]]) -> list[str]:
    parts = []
    met = True
    for r in shared:
        per = list(r["per_process"].values())
        fair = bool(per) and max(per) > 0 and min(per) / max(per) >= 0.5
        ok = (
            r["busy_share"] is not None
            and r["busy_share"] >= 0.85
            and r["max_1s"] <= 20
            and r["throttled"] == 0
            and fair
            and not any(r["codes"])
        )
        met = met and ok
        parts.append(
            f"{r['store']}: **{_pct(r['busy_share'])}** busy while all ran, at most "
            f"**{r['max_1s']}** in any second, **{r['throttled']}** 429s, requests "
            f"{' / '.join(str(v) for v in per)}, {r['token_requests']} token request(s)"
        )
    return [
        "Three processes at defaults sharing one account (20/s, 200 ms)",
        "; ".join(parts),
        "≥ 85 %, never above, each a fair share",
        _yes(met),
    ]


def render(results: dict[str, Any]) -> str:
    """The block's markdown (markers excluded) for one run's results.

    Args:
        results: What ``run.py --json`` writes.

    Returns:
        A sentence on the run, then a table of every figure against its target.
    """
    meta = results["meta"]
    commit = (meta.get("commit") or "unknown")[:10]
    if meta.get("dirty"):
        commit += " with uncommitted changes"
    trials = results.get("cpu", {}).get("trials")
    head = (
        f"One run of `python benchmarks/run.py{' --quick' if meta.get('quick') else ''}`: "
        f"{meta['date']}, commit `{commit}`, {meta['cpus_usable']} CPUs, load average "
        f"{meta['load_start']} at start and {meta.get('load_end', 'n/a')} at end, "
        f"{meta.get('total_s', 'n/a')} s in all."
    )
    if trials:
        head += (
            f" CPU ratios: median of {trials} trial(s) of each shape, no-op and target "
            "alternating, with the trials' range."
        )
    rows: list[list[str]] = []
    if "cpu" in results:
        rows += _cpu_rows(results["cpu"])
    if "defaults" in results:
        rows += _defaults_rows(results["defaults"])
    if "memory" in results:
        rows.append(_memory_row(results["memory"]))
    if "requests" in results:
        rows.append(_requests_row(results["requests"]))
    if "shared" in results:
        rows.append(_shared_row(results["shared"]))
    lines = [head, "", "| measure | this run | target | met |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def block(results: dict[str, Any]) -> str:
    """The block with its markers and a note on where it comes from."""
    note = (
        "<!-- Generated by `python benchmarks/run.py --write-readme` from "
        "benchmarks/results.json; do not edit by hand. -->"
    )
    return f"{START}\n{note}\n{render(results)}\n{END}"


def current_block(text: str) -> str:
    """The README's block, markers included.

    Raises:
        ValueError: If the markers are missing, repeated or out of order.
    """
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"README needs exactly one {START} and one {END}")
    start, end = text.index(START), text.index(END)
    if end < start:
        raise ValueError(f"{END} comes before {START}")
    return text[start : end + len(END)]


def write_readme(path: Path, results: dict[str, Any]) -> None:
    """Replace the block in the README at ``path`` with one rendered from ``results``."""
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(current_block(text), block(results)), encoding="utf-8")


def main() -> int:
    """Rewrite, or with --check compare, README's block from benchmarks/results.json."""
    results = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
    if "--check" in sys.argv[1:]:
        if current_block(README.read_text(encoding="utf-8")) != block(results):
            print("README's benchmark block is not benchmarks/results.json rendered: run")
            print("python benchmarks/readme_block.py (or a new run with --write-readme)")
            return 1
        return 0
    write_readme(README, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
