"""The run report's pieces: counter names, outcome words, the atomic write, the requested path."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from types import SimpleNamespace

import pytest

from target_sfmc import run_report
from target_sfmc.accounting import StreamTally


def test_stream_figures_take_every_counter_of_the_tally_by_its_name():
    tally = StreamTally(read=9, written=5, merged=1, rejected=1)
    tally.skipped.update({"missing_identifier": 1, "filtered": 1})
    tally.ignored_attributes |= {"Nick", "Score"}

    figures = run_report.stream_figures(tally)

    counters = {f.name for f in dataclasses.fields(StreamTally)}
    assert counters <= set(figures)
    assert figures["skipped"] == 2
    assert figures["skipped_by_reason"] == {"filtered": 1, "missing_identifier": 1}
    assert figures["ignored_attributes"] == 2  # counted; the names stay in the log
    assert figures["deleted"] == 0  # always present
    assert figures["unconfirmed"] == 0


def test_a_counter_added_to_the_tally_reaches_the_report():
    @dataclasses.dataclass
    class LaterTally(StreamTally):
        deleted: int = 0
        contacts_failed: int = 0

    tally = LaterTally(read=4, written=2, deleted=2, contacts_failed=1)

    figures = run_report.stream_figures(tally)

    assert figures["deleted"] == 2
    assert figures["contacts_failed"] == 1


@pytest.mark.parametrize(
    ("status", "word"),
    [(0, "succeeded"), (1, "failed"), (2, "failed"), (143, "terminated"), (130, "terminated")],
)
def test_outcome_words(status, word):
    assert run_report.outcome_of(status) == word


def test_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "report.json"
    run_report.write_report(path, {"n": 1})
    run_report.write_report(path, {"n": 2, "state": {"value": Counter(a=1)}})

    assert json.loads(path.read_text()) == {"n": 2, "state": {"value": {"a": 1}}}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]


def test_a_failed_write_keeps_the_previous_report_whole(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    run_report.write_report(path, {"n": 1})

    def refuse(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    assert run_report.write_report_or_log(str(path), {"n": 2}) is False

    assert json.loads(path.read_text()) == {"n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_path_is_read_before_validation_with_the_environment_winning():
    files = SimpleNamespace(config={"run_report_path": "/from/file.json"}, parse_env=False)
    env = {"TARGET_SFMC_RUN_REPORT_PATH": "/from/env.json"}
    assert run_report.requested_path(files, env, "TARGET_SFMC") == "/from/file.json"
    files.parse_env = True
    assert run_report.requested_path(files, env, "TARGET_SFMC") == "/from/env.json"
    assert run_report.requested_path(None, env, "TARGET_SFMC") is None
    odd = SimpleNamespace(config={"run_report_path": 12}, parse_env=False)
    assert run_report.requested_path(odd, {}, "TARGET_SFMC") is None


def test_a_report_without_accounting_has_zero_figures():
    moment = run_report.utc_now()
    report = run_report.build_report(
        started_at=moment,
        ended_at=moment,
        exit_status=1,
        error="Setting 'x' is missing.",
        last_state=None,
        accounting=None,
        version="0.0.0",
    )
    assert report["outcome"] == "failed"
    assert report["streams"] == {}
    assert report["totals"]["read"] == 0
    assert report["api"] == {"calls": 0, "retries": 0, "throttled_429": 0}
    assert report["started_at"].endswith("Z")
