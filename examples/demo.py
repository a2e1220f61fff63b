"""Demo: start the bundled SFMC emulator, load the example streams with target-sfmc, print the rows.

Run with ``scripts/demo`` (installs first) or ``python examples/demo.py`` inside the venv.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from target_sfmc.emulator import SfmcEmulator

EXAMPLES = Path(__file__).resolve().parent


def print_table(title: str, rows: list[dict]) -> None:
    """Print rows as a plain text table."""
    print(f"\n== {title} ({len(rows)} rows)")
    if not rows:
        return
    columns = list(dict.fromkeys(col for row in rows for col in row))
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-+-".join("-" * widths[c] for c in columns))
    for row in rows:
        print(" | ".join(str(row.get(c, "")).ljust(widths[c]) for c in columns))


def main() -> int:
    """Run the demo and return the target's exit code."""
    definition = json.loads((EXAMPLES / "data_extensions.json").read_text())
    config = json.loads((EXAMPLES / "config.example.json").read_text())
    with SfmcEmulator(
        data_extensions=definition["data_extensions"],
        event_definitions=definition["event_definitions"],
        client_id=config["client_id"],
        client_secret=config["client_secret"],
    ) as emulator, tempfile.TemporaryDirectory() as tmp:
        print(f"SFMC emulator listening on {emulator.url}")
        config["auth_url"] = emulator.url
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config))
        singer_input = (EXAMPLES / "users.singer").read_text() + (EXAMPLES / "events.singer").read_text()
        print("$ cat examples/users.singer examples/events.singer | target-sfmc --config config.json")
        run = subprocess.run(
            [sys.executable, "-m", "target_sfmc", "--config", str(config_path)],
            input=singer_input,
            capture_output=True,
            text=True,
            check=False,
        )
        summary = [line for line in run.stderr.splitlines() if "Summary" in line or "ERROR" in line]
        print("\n".join(summary))
        print(f"exit code {run.returncode}; STATE emitted on stdout:")
        print(run.stdout.strip())
        for key in ("IDENTIFY", "ORDER_COMPLETED"):
            print_table(f"Data Extension {key}", emulator.rows(key))
        print_table("Contacts created", emulator.contacts())
        return run.returncode


if __name__ == "__main__":
    sys.exit(main())
