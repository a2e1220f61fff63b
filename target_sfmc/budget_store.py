"""What every budget store is: the interface, its errors, the token and start it keeps.

A budget store is where the processes of one SFMC account meet (see :mod:`target_sfmc.budget`):
the account's schedule of request starts, its cached access token and the lease to refresh it.
The stores themselves live in :mod:`target_sfmc.budget_sqlite` and :mod:`target_sfmc.budget_redis`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# A store answer slower than this counts as unreachable: pacing must not stall on it.
STORE_TIMEOUT_SECONDS = 2.0


class BudgetStoreError(Exception):
    """The budget store could not be used (unreachable, unwritable, broken)."""


def redact_url(url: str) -> str:
    """A store URL as it may be shown: without its password.

    Args:
        url: The configured ``rate_limit_url``.

    Returns:
        The URL with any password replaced by ``***``.
    """
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{parts.username or ''}:***@{host}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class CachedToken:
    """An access token as the store keeps it; times are epoch seconds (shared by processes)."""

    value: str = field(repr=False)
    rest_instance_url: str | None
    refresh_at: float
    expires_at: float
    soap_instance_url: str | None = None

    @property
    def usable_until(self) -> float:
        """Last moment to use it while another process refreshes it (half the margin left)."""
        return self.expires_at - max(0.0, self.expires_at - self.refresh_at) / 2


class BudgetStore(ABC):
    """Where the processes of one account meet: pacing state, token, refresh lease."""

    kind: str
    location: str

    @abstractmethod
    def reserve_start(self, key: str, spacing: float) -> Reservation:
        """Reserve the account's next free start (``spacing`` seconds after the previous one).

        Args:
            key: The account's schedule key.
            spacing: Seconds between two starts of the account.

        Returns:
            When to start, on this process's monotonic clock.
        """

    @abstractmethod
    def push_back(self, key: str, seconds: float) -> None:
        """Move the account's next free start later (a reserved start was taken late).

        Args:
            key: The account's schedule key.
            seconds: How late the start was taken.
        """

    @abstractmethod
    def load_token(self, key: str) -> CachedToken | None:
        """The cached token, or None when there is none (or it has expired)."""

    @abstractmethod
    def save_token(self, key: str, token: CachedToken) -> None:
        """Cache a token until it expires."""

    @abstractmethod
    def drop_token(self, key: str, value: str) -> None:
        """Forget the cached token if it is still ``value`` (SFMC refused it)."""

    @abstractmethod
    def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Take (or renew) the right to refresh the token; False when another holds it."""

    @abstractmethod
    def release_lease(self, key: str, holder: str) -> None:
        """Give the refresh right back (only if ``holder`` still has it)."""

    def close(self) -> None:  # noqa: B027 - optional
        """Release connections."""


@dataclass(frozen=True)
class Reservation:
    """A reserved start, on this process's monotonic clock (``time.monotonic``).

    ``sleep_until`` is never before the reserved start; ``start`` is never after it (the two
    differ by the store's round trip when the store keeps another clock).
    """

    start: float
    sleep_until: float


# A schedule further ahead than this was written before a reboot (the monotonic clock restarted).
SCHEDULE_HORIZON_SECONDS = 300.0
