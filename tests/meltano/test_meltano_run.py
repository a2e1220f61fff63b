"""`meltano install` + `meltano run tap-jsonl target-sfmc` against the SFMC emulator, for real.

The test copies the repository's `meltano.yml` into a throw-away project (pointing the loader's
`pip_url` at this checkout), installs Meltano 4 into a venv cached outside the repository
(`$MELTANO_TEST_CACHE`, default `<tmp>/target-sfmc-meltano`; uv's plugin cache lives there too),
and drives the Meltano CLI against an in-process emulator on loopback. A cold run (empty cache)
downloads Meltano and both plugins from PyPI; a warm run reuses them.

tap-jsonl 0.3.1 never reads its own bookmarks back (it looks for `_sdc_last_modified` in the
partition state, where the SDK stores `replication_key_value`), and with N file partitions in
the state it reads every file N times. So a re-run over unchanged files re-sends every row, and
the target must absorb that idempotently; a true "nothing new" run is reproduced by pointing the
tap at a folder with no new files, which is exactly what an incremental tap sends: SCHEMA and
STATE only.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from target_sfmc.emulator import SfmcEmulator

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "meltano"
MELTANO_REQUIREMENT = "meltano>=4,<5"
STATE_ID = "dev:tap-jsonl-to-target-sfmc"
DE_KEY = "IDENTIFY"
CLIENT_ID = "meltano-e2e-client"
# Random per session, so that finding it in any output is a real leak.
CLIENT_SECRET = f"meltano-e2e-secret-{secrets.token_hex(8)}"
# Columns the stream maps must drop; the test DE has them so that a leak would be stored.
SDC_COLUMNS = ("Sdc Filename", "Sdc Last Modified", "Sdc Stream")

INSTALL_TIMEOUT = 900
RUN_TIMEOUT = 300
CLI_TIMEOUT = 120

EXPECTED = {
    "u-1001": {"Email": "ada@example.com", "First Name": "Ada", "Logins": 42, "Is Active": True},
    "u-1002": {"Email": "alan@example.com", "Last Name": "Turing", "Is Active": False},
    "u-1003": {"Email": "grace@example.com", "Plan": "enterprise", "Logins": 108},
    "u-1004": {"Email": "edsger@example.com", "First Name": "Edsger"},
    # No user id: the Contact Key falls back to the email.
    "barbara@example.com": {"Email": "barbara@example.com", "Last Name": "Liskov"},
}


def cache_dir() -> Path:
    configured = os.environ.get("MELTANO_TEST_CACHE")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "target-sfmc-meltano"


def _check(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that could steer Meltano or the plugins."""
    prefixes = ("MELTANO_", "TARGET_SFMC_", "TAP_JSONL_", "SFMC_", "SINGER_SDK_")
    dropped = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "LOGLEVEL"}
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes) and k not in dropped}


def meltano_executable() -> Path:
    """Meltano 4 in a venv cached outside the repository (built once, under a file lock)."""
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"meltano4-py{sys.version_info.major}{sys.version_info.minor}"
    exe = venv / "bin" / "meltano"
    ready = venv / ".ready"
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # A venv whose base interpreter is gone (or a half-built one) is rebuilt.
        usable = ready.exists() and exe.exists() and (venv / "bin" / "python").resolve().exists()
        if not usable:
            shutil.rmtree(venv, ignore_errors=True)
            env = _clean_env()
            _check(
                subprocess.run(
                    [sys.executable, "-m", "venv", str(venv)],
                    capture_output=True,
                    text=True,
                    timeout=CLI_TIMEOUT,
                    env=env,
                    check=False,
                ),
                "creating the Meltano venv",
            )
            _check(
                subprocess.run(
                    [
                        str(venv / "bin" / "python"),
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        MELTANO_REQUIREMENT,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT,
                    env=env,
                    check=False,
                ),
                f"pip install {MELTANO_REQUIREMENT}",
            )
            ready.write_text(MELTANO_REQUIREMENT)
    return exe


@dataclass
class Meltano:
    """Runs the Meltano CLI in one project and keeps every output for leak checks."""

    exe: Path
    project: Path
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def __call__(
        self, *args: str, timeout: float = CLI_TIMEOUT, stdin: str | None = None, **extra_env: str
    ) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        proc = subprocess.run(
            [str(self.exe), *args],
            cwd=self.project,
            env={**self.env, **extra_env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.outputs.append(proc.stdout + proc.stderr)
        self.timings.append((" ".join(args), time.monotonic() - started))
        return proc

    def run(self, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return self("run", "tap-jsonl", "target-sfmc", timeout=RUN_TIMEOUT, **extra_env)

    def state(self) -> dict[str, Any]:
        proc = self("--environment=dev", "state", "get", STATE_ID)
        _check(proc, "meltano state get")
        return json.loads(proc.stdout)


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
        yield emu


@pytest.fixture(scope="module")
def meltano(tmp_path_factory: pytest.TempPathFactory, sfmc: SfmcEmulator) -> Meltano:
    project = tmp_path_factory.mktemp("meltano-project")
    config = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    (loader,) = [p for p in config["plugins"]["loaders"] if p["name"] == "target-sfmc"]
    loader["pip_url"] = f"-e {REPO}"
    (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    data = project / "examples" / "meltano"
    data.mkdir(parents=True)
    for path in sorted(EXAMPLES.glob("*.jsonl")):
        shutil.copy2(path, data / path.name)

    exe = meltano_executable()
    env = _clean_env()
    env.update(
        PATH=f"{exe.parent}{os.pathsep}{env.get('PATH', '')}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_DISABLE_TRACKING="true",
        NO_COLOR="1",
        # Credentials from the environment override the dev environment's emulator defaults.
        SFMC_EMULATOR_URL=sfmc.url,
        TARGET_SFMC_CLIENT_ID=CLIENT_ID,
        TARGET_SFMC_CLIENT_SECRET=CLIENT_SECRET,
    )
    # Meltano 4 installs plugins with uv: keep its cache beside the Meltano venv, and let it
    # use the same index and CA bundle as pip when those are configured through the environment.
    env.setdefault("UV_CACHE_DIR", str(cache_dir() / "uv"))
    env.setdefault("UV_COMPILE_BYTECODE", "1")  # compiled once at install, not at every run
    if "PIP_INDEX_URL" in env:
        env.setdefault("UV_DEFAULT_INDEX", env["PIP_INDEX_URL"])
    if "PIP_CERT" in env:
        env.setdefault("SSL_CERT_FILE", env["PIP_CERT"])
    runner = Meltano(exe=exe, project=project, env=env)
    _check(runner("install", timeout=INSTALL_TIMEOUT), "meltano install")
    return runner


def rows_by_contact_key(sfmc: SfmcEmulator) -> dict[str, dict[str, Any]]:
    rows = sfmc.rows(DE_KEY)
    by_key = {row["Contact Key"]: row for row in rows}
    assert len(by_key) == len(rows), "duplicate Contact Keys stored"
    return by_key


def sfmc_counts(sfmc: SfmcEmulator) -> dict[str, int]:
    """Requests per endpoint (all statuses), without the token endpoint."""
    return {
        endpoint: sum(by_status.values())
        for endpoint, by_status in sfmc.request_counts().items()
        if "token" not in endpoint.lower()
    }


# Each run reads its Data Extension's definition at the stream's SCHEMA (not a data call).
DEFINITION_READS = frozenset({"customobjects_search", "customobject_fields"})


def data_counts(sfmc: SfmcEmulator) -> dict[str, int]:
    """Requests per endpoint, without the token endpoint and the definition reads."""
    return {k: n for k, n in sfmc_counts(sfmc).items() if k not in DEFINITION_READS}


def bad_statuses(sfmc: SfmcEmulator) -> list[dict[str, Any]]:
    return [r for r in sfmc.request_log() if r["status"] >= 400 or r["status"] == 0]


def partitions(state: dict[str, Any]) -> dict[str, Any]:
    bookmarks = state["singer_state"]["bookmarks"]["users"]
    return {p["context"]["_sdc_filename"]: p for p in bookmarks["partitions"]}


def output_of(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def test_meltano_yml_is_valid_for_meltano(meltano: Meltano) -> None:
    """The repository's `meltano.yml` against the JSON Schema shipped in the installed Meltano."""
    (schema_path,) = meltano.exe.parent.parent.glob(
        "lib/python*/site-packages/meltano/schemas/meltano.schema.json"
    )
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    document = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(document)
    ]
    assert not errors, "\n".join(errors)


def test_meltano_resolves_the_loader_settings(meltano: Meltano, sfmc: SfmcEmulator) -> None:
    proc = meltano("--environment=dev", "config", "list", "target-sfmc")
    _check(proc, "meltano config list")
    text = output_of(proc)
    assert "Group 1: client_id, client_secret, subdomain" in text
    assert sfmc.url in text  # auth_url: $SFMC_EMULATOR_URL
    assert "(redacted)" in text
    assert CLIENT_SECRET not in text


def test_run_state_incremental_and_failure(meltano: Meltano, sfmc: SfmcEmulator) -> None:
    started = time.monotonic()
    data = meltano.project / "examples" / "meltano"

    # 1. First run: every example row lands in the Identify DE, Title Case, no _sdc_* columns.
    first = meltano.run()
    _check(first, "first meltano run")
    out = output_of(first)
    assert "Received state is invalid" not in out  # target stdout carries only STATE lines
    assert "Received empty state" not in out
    assert "Incremental state has been updated" in out
    rows = rows_by_contact_key(sfmc)
    assert set(rows) == set(EXPECTED)
    for key, expected in EXPECTED.items():
        assert {k: rows[key][k] for k in expected} == expected, key
        assert all(rows[key].get(column) is None for column in SDC_COLUMNS), rows[key]
    assert rows["u-1003"]["Created At"].startswith("2024-01-20T08:00:00")
    assert {c["contactKey"] for c in sfmc.contacts()} == set(EXPECTED)
    assert not bad_statuses(sfmc)

    # 2. State stored by Meltano: tap-jsonl's per-file bookmarks.
    state = meltano.state()
    files = {
        str((data / name).absolute()) for name in ("users-2024-01.jsonl", "users-2024-02.jsonl")
    }
    assert set(partitions(state)) == files
    for partition in partitions(state).values():
        assert partition["replication_key"] == "_sdc_last_modified"
        assert partition["replication_key_value"]

    # 3a. Re-run over unchanged files: tap-jsonl re-sends every row (see module docstring);
    #     the target upserts idempotently: same rows, no errors.
    again = meltano.run()
    _check(again, "second meltano run")
    assert rows_by_contact_key(sfmc) == rows
    assert not bad_statuses(sfmc)

    # 3b. Nothing new for the tap to send (the files moved out of its glob; same config, so the
    #     cached catalog is used): SCHEMA + STATE only. Not one SFMC data call (the DE's
    #     definition is read at the SCHEMA, as every run does), and the state
    #     passes through unchanged (this also shows that 3a left it unchanged).
    archive = meltano.project / "archive"
    archive.mkdir()
    for path in data.glob("*.jsonl"):
        path.rename(archive / path.name)
    before = data_counts(sfmc)
    noop = meltano.run()
    _check(noop, "no-op meltano run")
    assert data_counts(sfmc) == before
    assert rows_by_contact_key(sfmc) == rows
    assert meltano.state() == state

    # 4. A row SFMC rejects (invalid EmailAddress) with row_error_policy=fail: the run fails,
    #    Meltano's state does not move, and the rejected row is not stored.
    shutil.copy2(EXAMPLES / "invalid" / "users-invalid-email.jsonl", data)
    seen = len(sfmc.request_log())
    failed = meltano.run()
    assert failed.returncode != 0, output_of(failed)[-4000:]
    out = output_of(failed)
    assert "Incremental state has been updated" not in out
    # It failed for the right reason: SFMC refused the row (not, say, a config error).
    assert [
        r for r in sfmc.request_log()[seen:] if "/rowset" in r["path"] and r["status"] >= 400
    ], out[-4000:]
    assert meltano.state() == state
    after_failure = rows_by_contact_key(sfmc)
    assert "u-2001" not in after_failure
    assert after_failure == rows

    # Secrets never reach Meltano's logs.
    assert not [o for o in meltano.outputs if CLIENT_SECRET in o]
    print(f"meltano run sequence took {time.monotonic() - started:.1f}s", meltano.timings)  # noqa: T201


def test_meltano_invoke_plan_reads_stdin_and_writes_nothing(
    meltano: Meltano, sfmc: SfmcEmulator
) -> None:
    schema = {
        "type": "SCHEMA",
        "stream": "users",
        "key_properties": ["user_id"],
        "schema": {
            "properties": {
                "user_id": {"type": "string"},
                "email": {"type": "string"},
                "loyalty_tier": {"type": "string"},
            }
        },
    }
    before = sfmc_counts(sfmc)
    proc = meltano(
        "--environment=dev", "invoke", "target-sfmc", "--plan", stdin=json.dumps(schema) + "\n"
    )
    assert proc.returncode == 0, output_of(proc)[-4000:]
    assert "Stream 'users':" in proc.stdout
    assert "the data extension lacks them (add_missing_fields is off): User Id, Loyalty Tier" in (
        proc.stdout
    )
    assert proc.stdout.rstrip().endswith("Plan: a load would succeed with the current settings.")
    after = sfmc_counts(sfmc)
    changed = {k for k in after if after[k] != before.get(k, 0)}
    assert changed <= {"customobjects_search", "customobject_fields"}, changed
