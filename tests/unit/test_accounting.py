"""Run accounting: progress lines, summary and dead letters."""

from __future__ import annotations

import json
import logging
import threading

from target_sfmc import accounting
from target_sfmc.accounting import RunReport
from target_sfmc.transport import ApiStats


def test_progress_lines_are_logged_until_stopped(monkeypatch, caplog):
    monkeypatch.setattr(accounting, "PROGRESS_INTERVAL_SECONDS", 0.01)
    report = RunReport(ApiStats(), None)
    report.count("users", read=5, written=3)
    logged = threading.Event()

    class Watcher(logging.Handler):
        def emit(self, record):
            if "Progress:" in record.getMessage():
                logged.set()

    watcher = Watcher()
    logging.getLogger("target-sfmc.summary").addHandler(watcher)
    try:
        report.start_progress()
        assert logged.wait(10)
    finally:
        report.stop_progress()
        logging.getLogger("target-sfmc.summary").removeHandler(watcher)


def test_summary_accounts_for_every_delivery(caplog):
    report = RunReport(ApiStats(), None)
    report.count("users", read=10, written=6, merged=1, rejected=1)
    report.count_skip("users", "missing_identifier", 2)
    report.count("events", read=3, written=3, extra_written=1)
    caplog.set_level(logging.INFO, logger="target-sfmc.summary")
    report.log_summary(failed=False)
    text = caplog.text
    assert (
        "Summary for stream 'users': read=10 written=6 merged=1 skipped=2 "
        "(missing_identifier=2) rejected=1" in text
    )
    assert "(second deliveries: written=1 rejected=0 skipped=0)" in text
    total = report.totals()
    assert total.read == total.accounted


def test_dead_letters_are_json_lines(tmp_path):
    path = tmp_path / "nested" / "dead.jsonl"
    report = RunReport(ApiStats(), str(path))
    entry = report.dead_letter_entry(
        "users", "IDENTIFY", "rejected", {"Contact Key": "a"}, "bad", 10000
    )
    report.dead_letter([entry, entry])
    report.log_summary(failed=True)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2
    assert set(lines[0]) == {
        "stream",
        "data_extension_key",
        "reason",
        "error_code",
        "message",
        "row",
        "record_time",
    }
    assert lines[0]["row"] == {"Contact Key": "a"}
