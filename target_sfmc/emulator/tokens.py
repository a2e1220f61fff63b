"""Access tokens: issue, look up, expire."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class _Token:
    issued: float
    ttl: float


class TokenRegistry:
    """Thread-safe registry of issued bearer tokens with real expiry."""

    def __init__(self) -> None:
        """Start with no tokens."""
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}
        self._issued: list[str] = []

    def issue(self, ttl: float) -> str:
        """Create a token valid for ``ttl`` seconds.

        Args:
            ttl: Lifetime in seconds.

        Returns:
            The opaque token string.
        """
        token = secrets.token_urlsafe(48)
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 1000:  # noqa: PLR2004 - purge expired tokens now and then
                self._tokens = {
                    t: info for t, info in self._tokens.items() if now < info.issued + info.ttl
                }
            self._tokens[token] = _Token(issued=now, ttl=ttl)
            self._issued.append(token)
        return token

    def issued(self) -> list[str]:
        """Return every token issued so far (for leak checks in tests), oldest first.

        Returns:
            The tokens.
        """
        with self._lock:
            return list(self._issued)

    def is_valid(self, token: str, max_age: float | None = None) -> bool:
        """Tell whether a token was issued here and has not expired.

        Args:
            token: Token from an ``Authorization: Bearer`` header.
            max_age: Early-expiry limit in seconds (a fault), applied on top of the ttl.

        Returns:
            True if the token may be used now.
        """
        with self._lock:
            info = self._tokens.get(token)
        if info is None:
            return False
        lifetime = info.ttl if max_age is None else min(info.ttl, max_age)
        return time.monotonic() < info.issued + lifetime

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._tokens.clear()
