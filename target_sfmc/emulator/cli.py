"""``sfmc-emulator`` command line: run the emulator until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from target_sfmc.emulator.api import DEFAULT_TOKEN_TTL
from target_sfmc.emulator.emulator import SfmcEmulator
from target_sfmc.emulator.faults import DATE_STORAGE_MODES, RESULTS_PAGING_MODES
from target_sfmc.emulator.schema import DefinitionError, load_definition_file
from target_sfmc.tuning import tuned_for_loading

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

_FAULT_FLAGS: tuple[tuple[str, str, type, str], ...] = (
    ("--fault-500", "error_500", float, "share of requests answered 500"),
    ("--fault-503", "error_503", float, "share of requests answered 503 (Retry-After: 1)"),
    ("--fault-429", "error_429", float, "share of requests answered 429 (Retry-After: 1)"),
    ("--fault-drop", "drop_connection", float, "share of requests whose connection is dropped"),
    ("--fault-latency-ms", "latency_ms", int, "extra latency per request (ms)"),
    ("--fault-token-expiry-s", "token_expiry_s", float, "tokens stop working after S seconds"),
    ("--fault-async-error", "async_error", float, "share of async jobs ending in Error"),
    ("--fault-async-deadlock", "async_deadlock", float, "share of async rows deadlocked"),
    ("--fault-seed", "seed", int, "seed for reproducible fault draws"),
    ("--fault-results-page-cap", "results_page_cap", int, "largest page of async results served"),
    (
        "--fault-async-status-missing-polls",
        "async_status_missing_polls",
        int,
        "first N status calls per job answer without a status object",
    ),
    ("--fault-async-pending-polls", "async_pending_polls", int, "next N status calls: Pending"),
    (
        "--fault-async-executing-polls",
        "async_executing_polls",
        int,
        "next N status calls: Executing",
    ),
    (
        "--fault-async-transient-error-polls",
        "async_transient_error_polls",
        int,
        "first N status calls of a completed job report Error",
    ),
)

# Modes chosen by name: (flag, setting, choices, help).
_FAULT_CHOICES: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (
        "--fault-results-paging",
        "results_paging",
        RESULTS_PAGING_MODES,
        "which async results page parameters count (default honoured)",
    ),
    (
        "--fault-date-storage",
        "date_storage",
        DATE_STORAGE_MODES,
        "Date values kept as sent (default) or stored like SFMC (system time, milliseconds)",
    ),
)

# Modes switched on by a flag: (flag, setting, help).
_FAULT_SWITCHES: tuple[tuple[str, str, str], ...] = (
    (
        "--fault-token-endpoint",
        "fault_token_endpoint",
        "let 5xx/429/drop faults hit the token endpoints too",
    ),
    (
        "--fault-async-accept-messages",
        "async_accept_messages",
        "informational resultMessages on accepted async submissions",
    ),
    (
        "--fault-async-status-blocks",
        "async_status_blocks",
        "status/results calls process due jobs before answering (old behaviour)",
    ),
    (
        "--fault-contacts-require-attribute-sets",
        "contacts_require_attribute_sets",
        "creating a contact needs an Email Addresses (or similar) attribute set",
    ),
    (
        "--fault-search-matches-name-only",
        "search_matches_name_only",
        "customobjects $search matches DE names only, not keys",
    ),
    (
        "--fault-contactexit-reports-absent",
        "contactexit_reports_absent",
        "contactexit lists contacts that are not in the journey among its errors",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser.

    Returns:
        The parser.
    """
    parser = argparse.ArgumentParser(
        prog="sfmc-emulator",
        description="Local Salesforce Marketing Cloud REST emulator (for tests and demos).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--data-extensions",
        metavar="FILE",
        help="JSON file with data_extensions, event_definitions, journeys, inactive_contacts",
    )
    parser.add_argument("--db", default=":memory:", help="SQLite file to persist data in")
    parser.add_argument("--client-id", default="test-client-id")
    parser.add_argument("--client-secret", default="test-client-secret")
    parser.add_argument("--account-id", default=None, help="MID the token endpoint requires")
    parser.add_argument("--rate-limit", type=float, default=None, metavar="RPS")
    parser.add_argument("--latency-ms", type=int, default=0)
    parser.add_argument(
        "--latency-jitter-ms",
        type=int,
        default=0,
        help="vary each request's latency uniformly by up to this much either way",
    )
    parser.add_argument("--token-ttl", type=int, default=DEFAULT_TOKEN_TTL, metavar="S")
    parser.add_argument("--async-delay-ms", type=int, default=20)
    for flag, dest, kind, text in _FAULT_FLAGS:
        parser.add_argument(flag, dest=f"fault_{dest}", type=kind, default=None, help=text)
    for flag, dest, choices, text in _FAULT_CHOICES:
        parser.add_argument(flag, dest=f"fault_{dest}", choices=choices, default=None, help=text)
    for flag, dest, text in _FAULT_SWITCHES:
        parser.add_argument(flag, dest=f"fault_{dest}", action="store_true", help=text)
    parser.add_argument(
        "--fault-bare-10006-key",
        dest="fault_bare_10006_keys",
        action="append",
        default=None,
        metavar="VALUE",
        help="a row with this primary-key value is never saved (bare 10006); repeatable",
    )
    parser.add_argument(
        "--fault-forbidden-endpoint",
        dest="fault_forbidden_endpoints",
        action="append",
        default=None,
        metavar="ENDPOINT",
        help="answer this endpoint (e.g. customobjects_search) 403 Insufficient Privileges; "
        "repeatable",
    )
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="stderr log level (DEBUG logs every request)",
    )
    return parser


def fault_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Collect the fault flags into a fault config dict.

    Args:
        args: Parsed arguments.

    Returns:
        Settings for `FaultConfig.from_dict` (only flags that were given).
    """
    faults: dict[str, Any] = {}
    for dest in [row[1] for row in _FAULT_FLAGS] + [row[1] for row in _FAULT_CHOICES]:
        value = getattr(args, f"fault_{dest}")
        if value is not None:
            faults[dest] = value
    for _flag, dest, _text in _FAULT_SWITCHES:
        if getattr(args, f"fault_{dest}"):
            faults[dest] = True
    if args.fault_bare_10006_keys:
        faults["bare_10006_keys"] = list(args.fault_bare_10006_keys)
    if args.fault_forbidden_endpoints:
        faults["forbidden_endpoints"] = list(args.fault_forbidden_endpoints)
    return faults


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT or SIGTERM.

    Args:
        argv: Arguments (defaults to ``sys.argv[1:]``).

    Returns:
        The exit code: 0 after a signal, 2 for bad arguments or definitions.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    definitions: dict[str, Any] = {}
    try:
        if args.data_extensions:
            loaded = load_definition_file(args.data_extensions)
            definitions = {
                "data_extensions": loaded.data_extensions,
                "event_definitions": loaded.event_definitions,
                "inactive_contacts": loaded.inactive_contacts,
                "journeys": loaded.journeys,
            }
        emulator = SfmcEmulator(
            host=args.host,
            port=args.port,
            db=args.db,
            client_id=args.client_id,
            client_secret=args.client_secret,
            account_id=args.account_id,
            rate_limit=args.rate_limit,
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
            token_ttl=args.token_ttl,
            async_delay_ms=args.async_delay_ms,
            faults=fault_settings(args),
            **definitions,
        )
    except (DefinitionError, TypeError, ValueError) as exc:
        print(f"sfmc-emulator: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        url = emulator.start()
    except OSError as exc:
        print(f"sfmc-emulator: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    sys.stdout.write(f"SFMC emulator listening on {url}\n")
    sys.stdout.flush()
    try:
        with tuned_for_loading():
            while not stop.wait(0.5):
                pass
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
