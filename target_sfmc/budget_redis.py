"""The budget store across machines: one Redis database, atomic steps in Lua scripts."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from target_sfmc.budget_store import (
    SCHEDULE_HORIZON_SECONDS,
    STORE_TIMEOUT_SECONDS,
    BudgetStore,
    BudgetStoreError,
    CachedToken,
    Reservation,
    redact_url,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

_KEY_PREFIX = "target-sfmc"

_DROP_IF_SAME = """
if redis.call('HGET', KEYS[1], 'value') == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""
# Reserve the next start on Redis' clock (one time base for every machine): answer the wait.
_RESERVE = """
if redis.replicate_commands then redis.replicate_commands() end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local spacing = tonumber(ARGV[1])
local free = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if free > now + tonumber(ARGV[2]) then
    free = now
end
local start = math.max(free, now)
local ttl = math.floor((start + spacing - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', start + spacing), 'PX', ttl)
return start - now
"""
_PUSH_BACK = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('INCRBY', KEYS[1], ARGV[1])
    redis.call('PEXPIRE', KEYS[1], redis.call('PTTL', KEYS[1]) + math.ceil(ARGV[1] / 1000))
end
return 0
"""
_RELEASE_IF_HOLDER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisBudgetStore(BudgetStore):
    """Several machines: pacing state and token in one Redis database."""

    kind = "redis"

    def __init__(self, url: str) -> None:
        """Connect and check that the server answers.

        Args:
            url: ``redis://[:password@]host:port/db`` (or ``rediss://``).

        Raises:
            BudgetStoreError: When Redis cannot be reached.
        """
        import redis  # noqa: PLC0415 - only a Redis store needs it

        self.location = redact_url(url)
        self._errors: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        try:
            self._redis = redis.Redis.from_url(
                url,
                socket_timeout=STORE_TIMEOUT_SECONDS,
                socket_connect_timeout=STORE_TIMEOUT_SECONDS,
                decode_responses=True,
            )
            self._redis.ping()
            self._drop = self._redis.register_script(_DROP_IF_SAME)
            self._reserve = self._redis.register_script(_RESERVE)
            self._push_back = self._redis.register_script(_PUSH_BACK)
            self._release = self._redis.register_script(_RELEASE_IF_HOLDER)
        except self._errors as exc:
            raise BudgetStoreError(_redis_reason(exc)) from None

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except self._errors as exc:
            raise BudgetStoreError(_redis_reason(exc)) from None

    def reserve_start(self, key: str, spacing: float) -> Reservation:
        """Reserve the next start on Redis' clock, in one script.

        Returns:
            The reservation, moved to this process's clock: the round trip is added to the
            sleep (never early) and left out of the start (lateness is never underrated).
        """
        asked = time.monotonic()
        with self._guard():
            wait_us = int(
                self._reserve(
                    keys=[f"{_KEY_PREFIX}:schedule:{key}"],
                    args=[round(spacing * 1_000_000), round(SCHEDULE_HORIZON_SECONDS * 1_000_000)],
                )
            )
        answered = time.monotonic()
        wait = max(0, wait_us) / 1_000_000
        return Reservation(start=asked + wait, sleep_until=answered + wait)

    def push_back(self, key: str, seconds: float) -> None:
        """Move the next free start later."""
        with self._guard():
            self._push_back(
                keys=[f"{_KEY_PREFIX}:schedule:{key}"], args=[max(1, round(seconds * 1_000_000))]
            )

    def load_token(self, key: str) -> CachedToken | None:
        """The cached token, if any.

        Returns:
            The token or None.
        """
        with self._guard():
            found = self._redis.hgetall(f"{_KEY_PREFIX}:token:{key}")
        if not found or "value" not in found:
            return None
        try:
            token = CachedToken(
                str(found["value"]),
                str(found.get("rest_instance_url") or "") or None,
                float(found["refresh_at"]),
                float(found["expires_at"]),
                str(found.get("soap_instance_url") or "") or None,
            )
        except (KeyError, ValueError):
            return None
        return token if time.time() < token.expires_at else None

    def save_token(self, key: str, token: CachedToken) -> None:
        """Cache a token; Redis forgets it when it expires."""
        name = f"{_KEY_PREFIX}:token:{key}"
        with self._guard():
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(name)
            pipe.hset(
                name,
                mapping={
                    "value": token.value,
                    "rest_instance_url": token.rest_instance_url or "",
                    "refresh_at": repr(token.refresh_at),
                    "expires_at": repr(token.expires_at),
                    "soap_instance_url": token.soap_instance_url or "",
                },
            )
            pipe.pexpireat(name, int(token.expires_at * 1000))
            pipe.execute()

    def drop_token(self, key: str, value: str) -> None:
        """Forget the token SFMC refused (if no one replaced it)."""
        with self._guard():
            self._drop(keys=[f"{_KEY_PREFIX}:token:{key}"], args=[value])

    def try_lease(self, key: str, holder: str, seconds: float) -> bool:
        """Take the refresh right unless another holder has it.

        Returns:
            True when ``holder`` now holds it.
        """
        name = f"{_KEY_PREFIX}:token-lease:{key}"
        with self._guard():
            if self._redis.set(name, holder, nx=True, px=int(seconds * 1000)):
                return True
            return self._redis.get(name) == holder

    def release_lease(self, key: str, holder: str) -> None:
        """Give the refresh right back."""
        with self._guard():
            self._release(keys=[f"{_KEY_PREFIX}:token-lease:{key}"], args=[holder])

    def close(self) -> None:
        """Close the connection pool."""
        with contextlib.suppress(*self._errors):
            self._redis.close()


def _redis_reason(exc: BaseException) -> str:
    # redis-py's messages name host and port, never the password.
    return f"{type(exc).__name__}: {exc}"
