"""The README's settings table is the one `--about --format=markdown` prints."""

from __future__ import annotations

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
