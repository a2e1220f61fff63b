"""`--test`: authenticate and check the configured Data Extension and event keys.

When rows may be deleted (``hard_delete``, or a mirror with ``load_method: overwrite``), the
SOAP API, which deletes them, is called once too, with a Retrieve that changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_sfmc.data_extensions import UNREADABLE, DataExtension, DataExtensionCatalog
from target_sfmc.errors import TargetSfmcError
from target_sfmc.mirror import MIRRORED_TYPES
from target_sfmc.routing import deletes_rows

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_sfmc.client import SfmcClient
    from target_sfmc.settings import TargetSettings

LOGGER = logging.getLogger("target-sfmc.check")


@dataclass(frozen=True)
class CheckResult:
    """The answer for one configured key."""

    kind: str
    key: str
    ok: bool
    detail: str


def configured_keys(settings: TargetSettings) -> tuple[list[str], list[str]]:
    """Data Extension keys and event definition keys the config refers to.

    Args:
        settings: Target settings.

    Returns:
        Sorted, de-duplicated DE keys and event definition keys.
    """
    de_keys = {s.data_extension_key for s in settings.streams.values() if s.data_extension_key}
    de_keys |= {c.data_extension_key for c in settings.conversion_events.values()}
    if settings.identify_data_extension_key:
        de_keys.add(settings.identify_data_extension_key)
    event_keys = {
        s.event_definition_key for s in settings.streams.values() if s.event_definition_key
    }
    event_keys |= set(settings.api_events.values())
    return sorted(de_keys), sorted(event_keys)


def check_connection(settings: TargetSettings, client: SfmcClient) -> list[CheckResult]:
    """Authenticate, then read each configured key once.

    Args:
        settings: Target settings.
        client: SFMC client.

    Returns:
        One result per key (authentication first).
    """
    results = budget_results(client)
    try:
        client.tokens.get()
    except TargetSfmcError as exc:
        return [
            *results,
            CheckResult("authentication", settings.client.auth_base_url, ok=False, detail=str(exc)),
        ]
    issued = "cached token reused" if client.tokens.reused else "token issued"
    results.append(
        CheckResult("authentication", settings.client.auth_base_url, ok=True, detail=issued)
    )
    de_keys, event_keys = configured_keys(settings)
    catalog = DataExtensionCatalog(client, settings)
    for key in de_keys:

        def describe(page: dict[str, Any], key: str = key) -> str:
            return f"{page.get('count', '?')} rows; {_definition(catalog, key)}"

        results.append(_probe("data extension", key, client.get_rowset_page, describe))
    results += [
        _probe(
            "event definition",
            key,
            client.get_event_definition,
            lambda d: str(d.get("status", "found")),
        )
        for key in event_keys
    ]
    why = soap_needed_by(settings)
    if why:
        results.append(_soap_check(client, why))
    return results


def soap_needed_by(settings: TargetSettings) -> str:
    """The settings that make a load delete rows through the SOAP API.

    Args:
        settings: Target settings.

    Returns:
        Their names (``hard_delete``, ``load_method 'overwrite'``), or "" when no row is deleted.
    """
    streams = settings.streams.values()
    reasons = []
    if any(deletes_rows(stream, settings) for stream in streams):
        reasons.append("hard_delete")
    if settings.mirror and any(stream.type in MIRRORED_TYPES for stream in streams):
        reasons.append("load_method 'overwrite'")
    return " and ".join(reasons)


def _soap_check(client: SfmcClient, why: str) -> CheckResult:
    """Call the SOAP API once: a load deletes rows through it."""
    where = "Service.asmx"
    try:
        where = client.settings.soap_base_url(client.tokens.get().soap_instance_url) + "/" + where
        status = client.check_soap()
    except TargetSfmcError as exc:
        return CheckResult("SOAP API", where, ok=False, detail=f"{exc} (needed by {why})")
    detail = f"Retrieve answered {status}; rows are deleted through it ({why})"
    return CheckResult("SOAP API", where, ok=True, detail=detail)


def budget_results(client: SfmcClient) -> list[CheckResult]:
    """Which limiter and token cache the run uses (a URL is shown without its password).

    An unreachable store never stops a load, but a ``rate_limit_url`` that was asked for
    and cannot be reached fails the check.

    Args:
        client: SFMC client.

    Returns:
        One result for the limiter, one for the token cache.
    """
    budget = client.budget
    shared = budget.shared
    asked_for = budget.configured_url is not None
    return [
        CheckResult(
            "rate limit",
            f"shared ({budget.kind})" if shared else "this process",
            ok=shared or not asked_for,
            detail=budget.describe_limiter()
            + ("" if shared else f" ({budget.unavailable or 'store failed'})"),
        ),
        CheckResult(
            "token cache",
            "on" if budget.token_cache else "off",
            ok=True,
            detail=budget.describe_token_cache(),
        ),
    ]


def _definition(catalog: DataExtensionCatalog, key: str) -> str:
    """A Data Extension's primary keys and field count, as ``--test`` reports them."""
    try:
        found = catalog.lookup(key)
    except TargetSfmcError as exc:
        return f"definition not read ({exc})"
    if isinstance(found, DataExtension):
        keys = ", ".join(found.primary_keys) or "none"
        return f"primary keys: {keys}; {len(found.columns)} fields"
    if found is UNREADABLE:
        return "definition not readable (HTTP 403: the package lacks Data Extensions Read)"
    return "definition not found"


def _probe(
    kind: str,
    key: str,
    read: Callable[[str], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
) -> CheckResult:
    try:
        answer = read(key)
    except TargetSfmcError as exc:
        return CheckResult(kind, key, ok=False, detail=str(exc))
    return CheckResult(kind, key, ok=True, detail=describe(answer))


def report(results: list[CheckResult]) -> bool:
    """Log each result and tell whether all passed.

    Args:
        results: Check results.

    Returns:
        True when every check passed.
    """
    for result in results:
        log = LOGGER.info if result.ok else LOGGER.error
        log(
            "%s %s '%s': %s",
            "OK  " if result.ok else "FAIL",
            result.kind,
            result.key,
            result.detail,
        )
    passed = all(result.ok for result in results)
    LOGGER.info("Connection check %s.", "passed" if passed else "FAILED")
    return passed
