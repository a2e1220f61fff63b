"""The run report (``run_report_path``): one JSON object per run, for monitoring and alerting.

It carries the figures of the summary log line (each stream's outcome counts, API calls,
retries, 429s) with when the run started and ended, how it exited, the last STATE the target
emitted and the first error. It copies no setting and no record: attribute names are only
counted, so no secret, token or row value can reach it. The file is replaced atomically (a
temporary file in the same folder, then a rename), so a reader never sees half a report and a
run killed with SIGKILL leaves the previous report whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import signal
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from target_sfmc.accounting import StreamTally
from target_sfmc.jsonio import encode_json

if TYPE_CHECKING:
    from collections.abc import Mapping

    from target_sfmc.accounting import RunReport

LOGGER = logging.getLogger("target-sfmc.run-report")

REPORT_VERSION = 1
SETTING = "run_report_path"
# Counters the report always carries, whether or not the installed target counts them yet.
ALWAYS_COUNTED = ("deleted",)


def utc_now() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.UTC)


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stream_figures(tally: StreamTally) -> dict[str, Any]:
    """A stream's counters, named as :class:`~target_sfmc.accounting.StreamTally` names them.

    Args:
        tally: The stream's tally.

    Returns:
        Whole numbers per counter; ``skipped`` in total and ``skipped_by_reason``; the
        ``ignored_attributes`` counted (their names stay in the log); ``unconfirmed``: records
        read without an outcome (a run that stopped mid-batch).
    """
    figures: dict[str, Any] = {}
    for counter in dataclasses.fields(tally):
        value = getattr(tally, counter.name)
        if isinstance(value, Counter):
            figures[counter.name] = sum(value.values())
            figures[f"{counter.name}_by_reason"] = dict(sorted(value.items()))
        elif isinstance(value, set | frozenset):
            figures[counter.name] = len(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            figures[counter.name] = value
    for name in ALWAYS_COUNTED:
        figures.setdefault(name, 0)
    figures["unconfirmed"] = max(tally.read - tally.accounted, 0)
    return figures


def outcome_of(exit_status: int) -> str:
    """``succeeded``, ``failed`` or ``terminated`` (killed by a signal it could handle).

    Args:
        exit_status: The process exit status.

    Returns:
        The word monitoring can switch on.
    """
    if exit_status == 0:
        return "succeeded"
    if exit_status > 128 and exit_status - 128 in {s.value for s in signal.Signals}:  # noqa: PLR2004
        return "terminated"
    return "failed"


def build_report(
    *,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    exit_status: int,
    error: str | None,
    last_state: Any,
    accounting: RunReport | None,
    version: str,
) -> dict[str, Any]:
    """The report of one run.

    Args:
        started_at: When the target started.
        ended_at: When it finished.
        exit_status: The process exit status.
        error: The first error (one sentence), or None.
        last_state: The value of the last STATE emitted on stdout, or None.
        accounting: The run's accounting; None when the run stopped before it existed.
        version: The target's version.

    Returns:
        A JSON-ready object.
    """
    streams: dict[str, StreamTally] = {}
    total = StreamTally()
    api = {"calls": 0, "retries": 0, "throttled_429": 0}
    if accounting is not None:
        streams, total = accounting.snapshot()
        stats = accounting.stats
        api = {"calls": stats.calls, "retries": stats.retries, "throttled_429": stats.throttled}
    return {
        "report_version": REPORT_VERSION,
        "target": "target-sfmc",
        "target_version": version,
        "started_at": _timestamp(started_at),
        "ended_at": _timestamp(ended_at),
        "elapsed_seconds": round((ended_at - started_at).total_seconds(), 3),
        "exit_status": exit_status,
        "outcome": outcome_of(exit_status),
        "error": error,
        "totals": stream_figures(total),
        "streams": {name: stream_figures(tally) for name, tally in sorted(streams.items())},
        "api": api,
        "last_state": last_state,
    }


def write_report(path: str | os.PathLike[str], report: Mapping[str, Any]) -> None:
    """Replace the report file atomically: write a temporary file beside it, then rename.

    Args:
        path: The report file.
        report: The report.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = msgspec.json.format(encode_json(report), indent=2) + b"\n"
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)  # noqa: PTH101 - no secrets inside; monitoring agents read it
        os.replace(temporary, target)  # noqa: PTH105
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)  # noqa: PTH108
        raise


def write_report_or_log(path: str, report: Mapping[str, Any]) -> bool:
    """Write the report; a failure is logged, never raised (the run's outcome stands).

    Args:
        path: The report file.
        report: The report.

    Returns:
        True when the report was written.
    """
    try:
        write_report(path, report)
    except OSError as exc:
        LOGGER.error(  # noqa: TRY400 - the sentence is the whole story
            "Could not write the run report to %s (%s).", path, exc.strerror or exc
        )
        return False
    return True


def check_report_path(path: str | None) -> list[str]:
    """Check at start-up that the report can be written where it is asked for.

    Args:
        path: ``run_report_path``, if set.

    Returns:
        One sentence per problem.
    """
    if not path:
        return []
    target = Path(path)
    if target.is_dir():
        return [f"Setting '{SETTING}' names a folder; give it a file name."]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        os.close(handle)
        os.unlink(probe)  # noqa: PTH108
    except OSError as exc:
        return [f"Setting '{SETTING}' cannot be written ({exc.strerror or exc})."]
    return []


def requested_path(config: Any, environ: Mapping[str, str], env_prefix: str) -> str | None:
    """The report path a run asked for, read before its config is validated.

    A run whose config is refused still replaces the report, so that monitoring never reads
    an older run's success as this run's outcome.

    Args:
        config: The SDK's CLI config input (merged config files, whether to read the
            environment), or None.
        environ: The environment.
        env_prefix: Prefix of the settings' environment variables, e.g. ``TARGET_SFMC``.

    Returns:
        The path, or None.
    """
    value = (getattr(config, "config", None) or {}).get(SETTING)
    if getattr(config, "parse_env", False):
        value = environ.get(f"{env_prefix}_{SETTING.upper()}", value)
    return value if isinstance(value, str) and value.strip() else None


def termination_error(signum: int, *, batch_in_flight: bool) -> str:
    """The report's error for a run stopped by SIGTERM or SIGINT.

    Args:
        signum: The signal.
        batch_in_flight: Whether a batch was loading when it came.

    Returns:
        One sentence.
    """
    name = signal.Signals(signum).name
    if batch_in_flight:
        return (
            f"Stopped by {name} while a batch was loading; rows after the last STATE were not "
            "confirmed and will be sent again by the next run."
        )
    return f"Stopped by {name} after loading what had been read."


def unexpected_error(exc: BaseException) -> str:
    """The report's error for an exception the target has no sentence for.

    Its message is left out: it may quote a row value.

    Args:
        exc: The exception.

    Returns:
        One sentence.
    """
    return f"Unexpected error ({type(exc).__name__}); the log has the details."
