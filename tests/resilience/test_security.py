"""Secrets stay secret; bad credentials and unsafe endpoints fail clearly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_harness import run_target
from conftest import (
    CLIENT_SECRET,
    TRACEBACK,
    USERS_SCHEMA,
    assert_clean_failure_output,
    make_config,
    record_line,
    schema_line,
    state_line,
    write_config,
)

import target_sfmc
from target_sfmc.client import SfmcClient
from target_sfmc.settings import ClientSettings

PACKAGE_DIR = Path(target_sfmc.__file__).resolve().parent
WRONG_SECRET = "wrong-S3cret-4e1f0a9d77b2"


def users_input(count: int = 3, **extra) -> list[str]:
    return [
        schema_line("users", USERS_SCHEMA),
        *(record_line("users", {"user_id": f"s{i}", "score": i, **extra}) for i in range(count)),
        state_line({"chunk": 1}),
    ]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line or "CRITICAL" in line]


def test_bad_credentials_fail_with_one_clear_sentence(emulators, tmp_path):
    emulator = emulators.start()
    config = make_config(emulator, client_secret=WRONG_SECRET)
    run = run_target(tmp_path, config, users_input())

    assert run.returncode == 1, run.tail()
    assert run.states == []
    errors = error_lines(run.stderr)
    assert len(errors) == 1, run.tail()
    assert "invalid_client" in errors[0]
    # The target itself must say it is an authentication problem (not only SFMC's own
    # description, "Client authentication failed ...", which it quotes).
    own_words = re.sub("client authentication failed", "", errors[0], flags=re.IGNORECASE)
    assert "authentication" in own_words.lower(), errors[0]
    assert_clean_failure_output(run.stderr + run.stdout, WRONG_SECRET, CLIENT_SECRET)
    assert emulator.issued_tokens == []
    assert set(emulator.request_counts()) == {"token"}


def test_no_secret_or_token_in_any_output(emulators, tmp_path):
    """Grep everything the target printed or wrote in failing and retry-heavy runs."""
    outputs: list[str] = []
    tokens: list[str] = []

    def collect(run) -> None:
        outputs.extend([run.stdout, run.stderr])

    # 1. Retry-heavy run (429/5xx/drops, early token expiry) with DEBUG logging.
    noisy = emulators.start(
        faults={
            "error_429": 0.15,
            "error_500": 0.15,
            "error_503": 0.1,
            "drop_connection": 0.1,
            "token_expiry_s": 0.5,
            "seed": 11,
        }
    )
    for _ in range(1):
        collect(
            run_target(
                tmp_path,
                make_config(noisy, batch_size_rows=5, retry_max_attempts=12),
                users_input(20),
                env={"LOGLEVEL": "DEBUG", "TARGET_SFMC_LOGLEVEL": "DEBUG"},
            )
        )
    tokens += noisy.issued_tokens

    # 2. A rejected row written to a dead-letter file.
    rejecting = emulators.start()
    dead_letters = tmp_path / "dead.jsonl"
    collect(
        run_target(
            tmp_path,
            make_config(rejecting, dead_letter_path=str(dead_letters)),
            users_input(3, nick="this nick is far too long"),
        )
    )
    tokens += rejecting.issued_tokens

    # 3. An unknown Data Extension key (SFMC refuses the request, not a row).
    refusing = emulators.start()
    collect(
        run_target(
            tmp_path,
            make_config(
                refusing, streams={"users": {"type": "identify", "data_extension_key": "NOPE"}}
            ),
            users_input(),
        )
    )
    tokens += refusing.issued_tokens

    # 4. Bad credentials.
    collect(run_target(tmp_path, make_config(refusing, client_secret=WRONG_SECRET), users_input()))

    # 5. --about, with and without the config.
    config_path = write_config(tmp_path, make_config(refusing))
    for args in (
        ["--about", "--format=json"],
        ["--about", "--format=json", "--config", str(config_path)],
    ):
        about = subprocess.run(
            [sys.executable, "-m", "target_sfmc", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert about.returncode == 0, about.stderr[-2000:]
        outputs.extend([about.stdout, about.stderr])

    assert dead_letters.exists()
    outputs.append(dead_letters.read_text())
    assert len(tokens) >= 3, "the runs should have been issued tokens to look for"

    everything = "\n".join(outputs)
    assert CLIENT_SECRET not in everything
    assert WRONG_SECRET not in everything
    for token in tokens:
        assert token[:16] not in everything, "an access token (or its start) leaked"
    assert TRACEBACK not in everything


@pytest.mark.parametrize("subdomain", ["evil.com/x", "mc563885gzs27c5t9.63k636ttgm"])
def test_subdomain_with_separators_is_a_config_error_before_any_request(
    emulators, tmp_path, subdomain
):
    emulator = emulators.start()
    run = run_target(tmp_path, make_config(emulator, subdomain=subdomain), "not json at all\n")

    assert run.returncode == 1
    errors = " ".join(error_lines(run.stderr)) or run.stderr
    assert "Setting 'subdomain'" in errors, run.tail()
    assert "not valid JSON" not in run.stderr  # failed before reading input
    assert emulator.request_log() == []
    assert TRACEBACK not in run.stderr


@pytest.mark.parametrize(
    ("auth_url", "rest_url"),
    [
        ("http://example.com", "http://10.1.2.3:8080"),
        ("http://localhost.example.com:8080", "http://127.0.0.1.nip.io"),
    ],
)
def test_plain_http_to_a_non_loopback_host_is_a_config_error(
    emulators, tmp_path, auth_url, rest_url
):
    emulator = emulators.start()
    run = run_target(
        tmp_path,
        make_config(emulator, auth_url=auth_url, rest_url=rest_url),
        "not json at all\n",
    )

    assert run.returncode == 1
    errors = " ".join(error_lines(run.stderr)) or run.stderr
    assert "auth_url" in errors, run.tail()
    assert "rest_url" in errors, run.tail()
    assert "https" in errors
    assert "not valid JSON" not in run.stderr  # failed before reading input
    assert emulator.request_log() == []
    assert TRACEBACK not in run.stderr


def test_tls_verification_is_never_disabled():
    pattern = re.compile(
        r"verify\s*=\s*(False|0|None)\b|CERT_NONE|check_hostname\s*=\s*False|disable_warnings"
        r"|PYTHONHTTPSVERIFY|CURL_CA_BUNDLE"
    )
    offenders = [
        f"{path.relative_to(PACKAGE_DIR)}:{number}: {line.strip()}"
        for path in PACKAGE_DIR.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == []

    client = SfmcClient(ClientSettings(client_id="id", client_secret="secret"))
    try:
        assert client.transport.session.verify is True
    finally:
        client.transport.session.close()
