"""The README's settings table is the one `--about --format=markdown` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_settings_table_matches_about():
    about = subprocess.run(
        [sys.executable, "-m", "target_sfmc", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    table = (
        about.split("## Settings", 1)[1].split("A full list of supported settings", 1)[0].strip()
    )
    readme = (ROOT / "README.md").read_text()
    documented = (
        readme.split("<!-- settings:start -->", 1)[1].split("<!-- settings:end -->", 1)[0].strip()
    )
    assert documented == table, "run scripts/update-readme-settings"
    assert "| client_secret | True |" in documented


def test_readme_quick_start_commands_exist():
    readme = (ROOT / "README.md").read_text()
    for script in ("scripts/demo", "scripts/test"):
        assert f"{script} " in readme
        assert (ROOT / script).stat().st_mode & 0o111
