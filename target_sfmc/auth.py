"""OAuth client-credentials token cache shared by all threads.

One token serves every thread; it is refreshed under a lock ahead of expiry (SFMC advises
about five minutes before), and dropped when SFMC answers 401 to it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from target_sfmc.errors import SfmcApiError
from target_sfmc.jsonio import encode_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from target_sfmc.transport import Transport

LOGGER = logging.getLogger("target-sfmc.auth")

# SFMC advises refreshing about five minutes before expiry; short-lived tokens get a quarter.
_REFRESH_MARGIN_SECONDS = 300.0


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Create the provider.

        Args:
            transport: Shared transport (token calls count against the limiter).
            auth_base_url: Auth host base URL, without the token path.
            client_id: Installed-package client id.
            client_secret: Installed-package client secret (never logged).
            account_id: MID of the business unit, if any.
            legacy: Use the legacy v1 ``requestToken`` endpoint.
            clock: Monotonic clock (injectable for tests).
        """
        self._transport = transport
        self._auth_base_url = auth_base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._account_id = account_id
        self._legacy = legacy
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None

    def get(self) -> Token:
        """Return a valid token, fetching a new one when due.

        Returns:
            The current token.
        """
        with self._lock:
            if self._token is None or self._clock() >= self._token.refresh_at:
                self._token = self._fetch()
            return self._token

    def invalidate(self, rejected: str) -> None:
        """Drop the token SFMC rejected (only if no other thread replaced it already).

        Args:
            rejected: The token value that got a 401.
        """
        with self._lock:
            if self._token is not None and self._token.value == rejected:
                self._token = None

    def _fetch(self) -> Token:
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
        LOGGER.info("Obtained an SFMC access token valid for %d s.", int(expires_in))
        return Token(
            value=str(value),
            refresh_at=self._clock() + expires_in - margin,
            rest_instance_url=body.get("rest_instance_url"),
            soap_instance_url=body.get("soap_instance_url"),
        )
