"""OAuth client-credentials token cache shared by all threads (and, with ``token_cache``, runs).

One token serves every thread; it is refreshed under a lock ahead of expiry (SFMC advises
about five minutes before), and dropped when SFMC answers 401 to it. With a token store (the
budget store, :mod:`target_sfmc.budget`), a valid token is also shared by the runs and
processes of the same client id + MID: one process refreshes it (holding a short lease)
while the others wait, or keep using the old one while it is still valid.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from target_sfmc.budget import TOKEN_LEASE_SECONDS, new_holder
from target_sfmc.budget_store import BudgetStoreError, CachedToken
from target_sfmc.errors import SfmcApiError
from target_sfmc.jsonio import encode_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_sfmc.budget import AccountBudget
    from target_sfmc.budget_store import BudgetStore
    from target_sfmc.transport import Transport

LOGGER = logging.getLogger("target-sfmc.auth")

# SFMC advises refreshing about five minutes before expiry; short-lived tokens get a quarter.
_REFRESH_MARGIN_SECONDS = 300.0
# While another process refreshes the shared token: how often to look for the new one, and
# how long a token borrowed in its refresh window is used before looking again.
_WAIT_POLL_SECONDS = 0.05
_BORROW_SECONDS = 1.0


@dataclass(frozen=True)
class Token:
    """An access token and when to stop using it."""

    value: str = field(repr=False)
    refresh_at: float
    rest_instance_url: str | None
    soap_instance_url: str | None = None


class TokenProvider:
    """Fetches, caches and refreshes one access token under a lock."""

    def __init__(
        self,
        transport: Transport,
        *,
        auth_base_url: str,
        client_id: str,
        client_secret: str,
        account_id: str | None,
        legacy: bool,
        budget: AccountBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Create the provider.

        Args:
            transport: Shared transport (token calls count against the limiter).
            auth_base_url: Auth host base URL, without the token path.
            client_id: Installed-package client id.
            client_secret: Installed-package client secret (never logged).
            account_id: MID of the business unit, if any.
            legacy: Use the legacy v1 ``requestToken`` endpoint.
            budget: The account's budget; its store shares the token (``token_cache``).
            clock: Monotonic clock (injectable for tests).
            wall_clock: Epoch clock: cached tokens' times are shared between processes.
            sleep: Sleep while another process refreshes the token (injectable for tests).
        """
        self._transport = transport
        self._auth_base_url = auth_base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._account_id = account_id
        self._legacy = legacy
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._budget = budget
        self._holder = new_holder()
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.fetched = 0  # token requests this provider made (successful ones)
        self.reused = 0  # tokens taken from the shared cache

    def get(self) -> Token:
        """Return a valid token, fetching a new one when due.

        Returns:
            The current token.
        """
        with self._lock:
            if self._token is None or self._clock() >= self._token.refresh_at:
                token = self._from_shared_cache()
                self._token = token if token is not None else self._fetch()[0]
            return self._token

    def invalidate(self, rejected: str) -> None:
        """Drop the token SFMC rejected (only if no other thread replaced it already).

        Args:
            rejected: The token value that got a 401.
        """
        with self._lock:
            if self._token is not None and self._token.value == rejected:
                self._token = None
            store = self._token_store()
            if store is not None:
                try:
                    store.drop_token(self._budget_key, rejected)
                except BudgetStoreError as exc:
                    self._store_lost(exc)

    # -- the shared cache ------------------------------------------------------------------

    @property
    def _budget_key(self) -> str:
        return self._budget.token_key if self._budget is not None else ""

    def _token_store(self) -> BudgetStore | None:
        return self._budget.token_store() if self._budget is not None else None

    def _store_lost(self, exc: BudgetStoreError) -> None:
        if self._budget is not None:
            self._budget.lost(exc)

    def _local(self, cached: CachedToken, *, borrowed: bool = False) -> Token:
        """The in-process form of a cached token (its times moved to the monotonic clock)."""
        now, wall = self._clock(), self._wall()
        refresh_at = now + (cached.refresh_at - wall)
        if borrowed:
            refresh_at = min(now + _BORROW_SECONDS, now + (cached.usable_until - wall))
        return Token(cached.value, refresh_at, cached.rest_instance_url, cached.soap_instance_url)

    def _from_shared_cache(self) -> Token | None:
        """A token through the shared cache: reused, refreshed by this process, or awaited.

        Returns:
            The token, or None when there is no cache to use (then fetch it alone).
        """
        store = self._token_store()
        if store is None:
            return None
        key = self._budget_key
        fetched: Token | None = None
        try:
            while True:
                cached = store.load_token(key)
                if cached is not None and self._wall() < cached.refresh_at:
                    return self._reuse(cached)
                if store.try_lease(key, self._holder, TOKEN_LEASE_SECONDS):
                    try:
                        cached = store.load_token(key)  # refreshed while we asked?
                        if cached is not None and self._wall() < cached.refresh_at:
                            return self._reuse(cached)
                        fetched, shared = self._fetch()
                        store.save_token(key, shared)
                        return fetched
                    finally:
                        store.release_lease(key, self._holder)
                if cached is not None and self._wall() < cached.usable_until:
                    # Another process is refreshing it; this one is still good for a while.
                    return self._local(cached, borrowed=True)
                self._sleep(_WAIT_POLL_SECONDS)
        except BudgetStoreError as exc:
            self._store_lost(exc)
            return fetched

    def _reuse(self, cached: CachedToken) -> Token:
        self.reused += 1
        LOGGER.info(
            "Reusing the cached SFMC access token (valid for another %d s).",
            int(cached.expires_at - self._wall()),
        )
        return self._local(cached)

    def _fetch(self) -> tuple[Token, CachedToken]:
        if self._legacy:
            url = f"{self._auth_base_url}/v1/requestToken"
            payload: dict[str, str] = {
                "clientId": self._client_id,
                "clientSecret": self._client_secret,
            }
            endpoint = "legacy_token"
        else:
            url = f"{self._auth_base_url}/v2/token"
            payload = {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret,
            }
            if self._account_id:
                payload["account_id"] = self._account_id
            endpoint = "token"
        wall_start, start = self._wall(), self._clock()
        response = self._transport.send(
            "POST",
            url,
            endpoint=endpoint,
            body=encode_json(payload),
            headers={"Content-Type": "application/json"},
        )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):  # noqa: PLR2004
            body = body if isinstance(body, dict) else {}
            raise SfmcApiError(
                endpoint=endpoint,
                status=response.status_code,
                error_code=body.get("error", body.get("errorcode", "unknown")),
                message=str(
                    body.get("error_description", body.get("message", "authentication failed"))
                ),
                context="authentication (check client_id, client_secret, account_id and subdomain)",
            )
        value = body.get("access_token") or body.get("accessToken")
        if not value:
            raise SfmcApiError(
                endpoint=endpoint,
                status=response.status_code,
                error_code="no_token",
                message="the token response carried no access token",
            )
        expires_in = float(body.get("expires_in") or body.get("expiresIn") or 1079)
        margin = min(_REFRESH_MARGIN_SECONDS, expires_in / 4)
        self.fetched += 1
        LOGGER.info("Obtained an SFMC access token valid for %d s.", int(expires_in))
        rest_instance_url = body.get("rest_instance_url")
        soap_instance_url = body.get("soap_instance_url")
        # Lifetimes count from when the request was sent: never later than SFMC's clock.
        token = Token(
            value=str(value),
            refresh_at=start + expires_in - margin,
            rest_instance_url=rest_instance_url,
            soap_instance_url=soap_instance_url,
        )
        shared = CachedToken(
            value=str(value),
            rest_instance_url=rest_instance_url,
            refresh_at=wall_start + expires_in - margin,
            expires_at=wall_start + expires_in,
            soap_instance_url=soap_instance_url,
        )
        return token, shared
