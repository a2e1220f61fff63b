"""Fault configuration and seedable fault decisions.

Request-level faults (500, 503, 429, dropped connection) draw from one shared RNG in arrival
order. Async-job faults (whole job in ``Error``, deadlocked rows) draw from a per-job RNG derived
from the seed and the job's submission number, so a job's outcome does not depend on how
concurrent requests interleave.

Besides these random faults, the config holds *modes*: untidy behaviours of real SFMC that are
switched on as a whole (results paging that cannot be trusted, informational messages on an
accepted submission, ...). They are never random.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

_RATE_KEYS = (
    "error_500",
    "error_503",
    "error_429",
    "drop_connection",
    "async_error",
    "async_deadlock",
)


def _number(raw: Any, key: str, upper: float | None = None) -> float:
    """Validate a non-negative number (at most ``upper``)."""
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or raw < 0
        or (upper is not None and raw > upper)
    ):
        bounds = f"between 0 and {upper:g}" if upper is not None else ">= 0"
        raise ValueError(f"Fault {key} must be a number {bounds}, got {raw!r}.")
    return float(raw)


#: How ``GET /data/v1/async/{id}/results`` treats its page parameters.
RESULTS_PAGING_MODES = ("honoured", "ignored", "plain_only", "dollar_only")
#: How Date column values are stored and read back.
DATE_STORAGE_MODES = ("as_sent", "sfmc")


def _count(raw: Any, key: str) -> int:
    """Validate a non-negative whole number."""
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        raise ValueError(f"Fault {key} must be a whole number >= 0, got {raw!r}.")
    return raw


def _choice(raw: Any, key: str, choices: tuple[str, ...]) -> str:
    if raw not in choices:
        raise ValueError(f"Fault {key} must be one of {', '.join(choices)}, got {raw!r}.")
    return str(raw)


def _key_values(raw: Any, key: str) -> tuple[str, ...]:
    if isinstance(raw, str) or not isinstance(raw, list | tuple):
        raise TypeError(f"Fault {key} must be a list of strings, got {raw!r}.")
    if not all(isinstance(value, str) and value for value in raw):
        raise ValueError(f"Fault {key} must hold non-empty strings, got {raw!r}.")
    return tuple(raw)


def fold_key_value(value: Any) -> str:
    """Return the form in which a primary-key value is compared with ``bare_10006_keys``.

    Args:
        value: A primary-key value as sent.

    Returns:
        Its text, without trailing spaces, case-folded (Text keys compare that way).
    """
    if isinstance(value, bool):
        text = "True" if value else "False"
    else:
        text = value if isinstance(value, str) else str(value)
    return text.rstrip(" ").casefold()


def _flag(raw: Any, key: str) -> bool:
    if not isinstance(raw, bool):
        raise TypeError(f"Fault {key} must be true or false, got {raw!r}.")
    return raw


def _seed(raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise TypeError(f"Fault seed must be an integer, got {raw!r}.")
    return raw


def _rate(raw: Any, key: str) -> float:
    return _number(raw, key, upper=1.0)


def _milliseconds(raw: Any, key: str) -> int:
    return int(_number(raw, key))


def _positive(raw: Any, key: str) -> int:
    value = _count(raw, key)
    if value < 1:
        raise ValueError(f"Fault {key} must be at least 1.")
    return value


def _results_paging(raw: Any, key: str) -> str:
    return _choice(raw, key, RESULTS_PAGING_MODES)


def _date_storage(raw: Any, key: str) -> str:
    return _choice(raw, key, DATE_STORAGE_MODES)


def _truthy(raw: Any, _key: str) -> bool:
    return bool(raw)


def _seed_setting(raw: Any, _key: str) -> int:
    return _seed(raw)


#: Validator of every setting, by name.
_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    **dict.fromkeys(_RATE_KEYS, _rate),
    "latency_ms": _milliseconds,
    "token_expiry_s": _number,
    "fault_token_endpoint": _truthy,
    "seed": _seed_setting,
    "results_paging": _results_paging,
    "results_page_cap": _positive,
    "async_accept_messages": _flag,
    "async_status_missing_polls": _count,
    "async_pending_polls": _count,
    "async_executing_polls": _count,
    "async_transient_error_polls": _count,
    "async_status_blocks": _flag,
    "bare_10006_keys": _key_values,
    "contacts_require_attribute_sets": _flag,
    "date_storage": _date_storage,
    "search_matches_name_only": _flag,
    "contactexit_reports_absent": _flag,
    "forbidden_endpoints": _key_values,
}
#: Settings for which null means "the default".
_NULLABLE = frozenset({"token_expiry_s", "seed", "results_page_cap"})


@dataclass(frozen=True)
class FaultConfig:
    """What the emulator should get wrong, and how often.

    Attributes:
        error_500: Share of SFMC requests answered 500.
        error_503: Share answered 503 (errorcode 50300, ``Retry-After: 1``).
        error_429: Share answered 429 (errorcode 50100, ``Retry-After: 1``).
        drop_connection: Share of requests whose connection is closed without an answer.
        latency_ms: Extra delay added to every SFMC request.
        token_expiry_s: Tokens stop working this many seconds after issue (early expiry).
        async_error: Share of async jobs that end in ``Error`` with no rows applied.
        async_deadlock: Share of async rows that end as deadlock victims (not applied).
        fault_token_endpoint: Whether 5xx/429/drop faults also hit the token endpoints.
        seed: RNG seed; None for non-reproducible draws.
        results_paging: How async results honour page parameters: ``honoured`` (both
            ``$page``/``$pageSize`` and ``page``/``pageSize``), ``ignored`` (always page 1 of 50
            items), ``plain_only`` (only ``page``/``pageSize``), ``dollar_only`` (only
            ``$page``/``$pageSize``). A parameter that is not honoured is as if absent.
        results_page_cap: Largest page of async results served, whatever the client asks for.
        async_accept_messages: An accepted async submission (202 with a ``requestId``) carries
            informational ``resultMessages`` (classes ``Information`` and ``Warning``).
        async_status_missing_polls: The first N status calls of each job answer without a
            ``status`` object (as before pickup).
        async_pending_polls: The next N report ``Pending``.
        async_executing_polls: The next N report ``Executing``.
        async_transient_error_polls: The first N status calls that would report ``Complete``
            report ``Error`` instead; later calls report ``Complete``.
        async_status_blocks: Status and results calls first process the due jobs up to their
            own (the emulator's old behaviour) instead of answering at once.
        bare_10006_keys: Primary-key values of rows SFMC never saves: a sync rowset reaching
            such a row stops there with a bare ``10006 Unable to save rows`` (no
            ``additionalErrors``), and the row's async result is an error with that message.
            A row matches when any of its key values does (Text comparison: case-insensitive,
            trailing spaces ignored).
        contacts_require_attribute_sets: Creating a contact (``POST /contacts/v1/contacts``
            for a new contact key) needs at least one of the attribute sets the docs name
            (Email Addresses, MobileConnect Demographics, MobilePush Demographics, LINE); without
            one the answer is a 400 with ``hasErrors`` and a ``resultMessages`` error.
        date_storage: ``as_sent`` keeps Date values as the client sent them; ``sfmc`` stores
            them as SFMC's ``datetime`` does: converted to the system time (UTC-6, no daylight
            saving; a value without an offset is taken as system time), truncated to
            milliseconds, and read back without an offset (``2020-05-30T07:30:00.123``).
        search_matches_name_only: ``GET /data/v1/customobjects?$search=`` matches DE names
            only, not external keys.
        contactexit_reports_absent: ``contactexit`` lists a contact that is not in the journey
            among its ``errors`` (``Exit request Ignored - Contact is not in the journey.``)
            instead of accepting its exit silently.
        forbidden_endpoints: Endpoint names (as in the request log, e.g.
            ``customobjects_search``) answered ``403`` with errorcode 20002 "Insufficient
            Privileges", as for an installed package without the permission.
    """

    error_500: float = 0.0
    error_503: float = 0.0
    error_429: float = 0.0
    drop_connection: float = 0.0
    latency_ms: int = 0
    token_expiry_s: float | None = None
    async_error: float = 0.0
    async_deadlock: float = 0.0
    fault_token_endpoint: bool = False
    seed: int | None = None
    results_paging: str = "honoured"
    results_page_cap: int | None = None
    async_accept_messages: bool = False
    async_status_missing_polls: int = 0
    async_pending_polls: int = 0
    async_executing_polls: int = 0
    async_transient_error_polls: int = 0
    async_status_blocks: bool = False
    bare_10006_keys: tuple[str, ...] = ()
    contacts_require_attribute_sets: bool = False
    date_storage: str = "as_sent"
    search_matches_name_only: bool = False
    contactexit_reports_absent: bool = False
    forbidden_endpoints: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> FaultConfig:
        """Validate and build a config.

        Args:
            raw: Fault settings by attribute name (all optional); None for no faults.

        Returns:
            The config.

        Raises:
            ValueError: On an unknown key or an out-of-range value.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise TypeError("Fault config must be an object.")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(
                f"Unknown fault setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if value is None and key in _NULLABLE:
                continue
            values[key] = _CHECKS[key](value, key)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-serialisable dict.

        Returns:
            Every setting by name.
        """
        out = asdict(self)
        out["bare_10006_keys"] = list(self.bare_10006_keys)
        out["forbidden_endpoints"] = list(self.forbidden_endpoints)
        return out

    def bare_10006_folded(self) -> frozenset[str]:
        """Return `bare_10006_keys` in comparison form (`fold_key_value`).

        Returns:
            The folded values.
        """
        return frozenset(fold_key_value(value) for value in self.bare_10006_keys)


class RequestFault(Enum):
    """Outcome of the per-request fault draw."""

    NONE = "none"
    DROP = "drop"
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    ERROR_429 = "error_429"


@dataclass(frozen=True)
class JobFaults:
    """Faults decided for one async job at submission.

    Attributes:
        error: The whole job ends in ``Error`` and applies nothing.
        deadlock_rate: Share of the job's rows that deadlock.
        rng: RNG for the per-row deadlock draws.
        bare_keys: Folded primary-key values of rows that are never saved.
        sfmc_dates: Date values are stored as SFMC stores them (``date_storage`` ``sfmc``).
    """

    error: bool
    deadlock_rate: float
    rng: random.Random
    bare_keys: frozenset[str] = frozenset()
    sfmc_dates: bool = False


class FaultInjector:
    """Thread-safe fault decisions for a `FaultConfig`.

    Args:
        config: Initial configuration.
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        """Start with the given (or an empty) configuration."""
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._rng = random.Random()  # noqa: S311 - fault simulation, not cryptography
        self._jobs = 0
        self.configure(config or FaultConfig())

    @property
    def config(self) -> FaultConfig:
        """The active configuration."""
        return self._config

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration and reseed.

        Args:
            config: New configuration.
        """
        with self._lock:
            self._config = config
            self._rng = random.Random(config.seed)  # noqa: S311
            self._jobs = 0

    def decide_request(self, *, token_endpoint: bool) -> tuple[RequestFault, bool]:
        """Draw the fault for one SFMC request.

        Args:
            token_endpoint: Whether the request is for a token endpoint.

        Returns:
            ``(fault, apply_first)``; ``apply_first`` says, for a dropped connection, whether the
            request is processed before the connection is closed.
        """
        cfg = self._config
        if token_endpoint and not cfg.fault_token_endpoint:
            return RequestFault.NONE, False
        if not (cfg.drop_connection or cfg.error_500 or cfg.error_503 or cfg.error_429):
            return RequestFault.NONE, False
        with self._lock:
            rng = self._rng
            if cfg.drop_connection and rng.random() < cfg.drop_connection:
                return RequestFault.DROP, rng.random() < 0.5  # noqa: PLR2004
            if cfg.error_500 and rng.random() < cfg.error_500:
                return RequestFault.ERROR_500, False
            if cfg.error_503 and rng.random() < cfg.error_503:
                return RequestFault.ERROR_503, False
            if cfg.error_429 and rng.random() < cfg.error_429:
                return RequestFault.ERROR_429, False
        return RequestFault.NONE, False

    def decide_job(self) -> JobFaults:
        """Decide the faults of a newly submitted async job.

        Returns:
            The job's faults, with its own RNG for row-level draws.
        """
        with self._lock:
            cfg = self._config
            self._jobs += 1
            if cfg.seed is None:
                rng = random.Random()  # noqa: S311
            else:
                rng = random.Random(f"{cfg.seed}:job:{self._jobs}")  # noqa: S311
        error = bool(cfg.async_error) and rng.random() < cfg.async_error
        return JobFaults(
            error=error,
            deadlock_rate=cfg.async_deadlock,
            rng=rng,
            bare_keys=cfg.bare_10006_folded(),
            sfmc_dates=cfg.date_storage == "sfmc",
        )
