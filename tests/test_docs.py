"""The README's settings table is the one `--about --format=markdown` prints."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_settings_table_matches_about():
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "update-readme-settings"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "| client_secret | True |" in (ROOT / "README.md").read_text()


def test_readme_quick_start_commands_exist():
    readme = (ROOT / "README.md").read_text()
    for script in ("scripts/demo", "scripts/test"):
        assert f"{script} " in readme
        assert (ROOT / script).stat().st_mode & 0o111


def _readme_block_module():
    spec = importlib.util.spec_from_file_location(
        "readme_block", ROOT / "benchmarks" / "readme_block.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_benchmark_block_is_the_committed_run_rendered():
    # The README's figures are one full run's (benchmarks/run.py --write-readme): the block
    # is benchmarks/results.json rendered, and that run covered every section. No timings.
    readme_block = _readme_block_module()
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    assert not results["meta"]["quick"]
    assert {"cpu", "defaults", "memory", "requests", "shared"} <= set(results)
    assert set(results["cpu"]["shapes"]) == {"flat", "nested", "segment"}
    assert results["meta"]["commit"]
    block = readme_block.current_block((ROOT / "README.md").read_text())
    assert block == readme_block.block(results)
