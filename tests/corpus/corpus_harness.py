"""Shared by the corpus tests: the emulator's credentials and what it received."""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

from target_sfmc.emulator import SfmcEmulator

if TYPE_CHECKING:
    from collections.abc import Iterator

CLIENT_ID = "corpus-client"
CLIENT_SECRET = "corpus-secret-value"
SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"


class Number(str):
    """A JSON number token exactly as it was written in a request body."""

    __slots__ = ()


class SentRows:
    """Request bodies of the DE upsert endpoints, numbers kept as written."""

    def __init__(self, emulator: SfmcEmulator) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        for handler in ("rowset", "async_upsert"):
            original = getattr(emulator.api, handler)

            def record(request: Any, original: Any = original) -> Any:
                self.bodies.append((request.params.get("ref", ""), request.body))
                return original(request)

            setattr(emulator.api, handler, record)

    def rows(self, key: str) -> list[dict[str, Any]]:
        """Every row sent to a DE, flat (keys and values together), in order."""
        found: list[dict[str, Any]] = []
        for ref, body in self.bodies:
            if ref.removeprefix("key:").upper() != key.upper():
                continue
            parsed = json.loads(body, parse_float=Number, parse_int=Number)
            if isinstance(parsed, dict):  # async: {"items": [flat rows]}
                found.extend(parsed["items"])
            else:  # sync rowset: [{"keys": {...}, "values": {...}}]
                found.extend({**item["values"], **item["keys"]} for item in parsed)
        return found


def config_for(emulator: SfmcEmulator, **settings: Any) -> dict[str, Any]:
    """A target config pointing at the emulator."""
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subdomain": SUBDOMAIN,
        "auth_url": emulator.url,
        "retry_backoff_ms": 50,
        **settings,
    }


@contextlib.contextmanager
def started_emulator(data_extensions: list[dict[str, Any]]) -> Iterator[SfmcEmulator]:
    """An emulator with the given Data Extensions, serving until the block ends."""
    emulator = SfmcEmulator(
        data_extensions=data_extensions, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.close()
