"""Request and answer types shared by the emulator's endpoint modules, and their helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_PAGE_SIZE = 32_000


class Headers(Protocol):
    """Case-insensitive header lookup (``http.client.HTTPMessage`` or a plain dict)."""

    def get(self, name: str, default: None = None, /) -> str | None:
        """Return a header value or None."""
        ...


def _no_headers() -> dict[str, str]:
    return {}


@dataclass
class ApiRequest:
    """A parsed SFMC request.

    Attributes:
        method: HTTP method.
        params: Path parameters (percent-decoded).
        query: Query parameters (last value wins).
        headers: Request headers (case-insensitive lookup via ``get``).
        body: Raw body.
        base_url: Scheme and authority the client used (``http://host:port``).
    """

    method: str
    params: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    headers: Headers = field(default_factory=_no_headers)
    body: bytes = b""
    base_url: str = ""


@dataclass
class ApiResponse:
    """An answer: status, body, extra headers.

    Attributes:
        status: HTTP status.
        body: A JSON value, or the raw bytes of a non-JSON answer (see ``content_type``).
        headers: Extra headers.
        content_type: Content type of a raw-bytes body.
    """

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


def error(status: int, message: str, errorcode: int, **extra: Any) -> ApiResponse:
    """Build SFMC's standard error envelope.

    Args:
        status: HTTP status.
        message: Error message.
        errorcode: SFMC error code.
        **extra: Additional body fields (for example ``additionalErrors``).

    Returns:
        ``{"message", "errorcode", "documentation": "", **extra}``.
    """
    return ApiResponse(
        status, {"message": message, "errorcode": errorcode, "documentation": "", **extra}
    )


def invalid_format() -> ApiResponse:
    """Return the 400 for a body that is not the expected JSON shape.

    Returns:
        errorcode 10004 "Invalid Message Format".
    """
    return error(400, "Invalid Message Format", 10004)


_decode_body = msgspec.json.Decoder().decode


def parse_json(body: bytes) -> Any:
    """Decode a JSON body.

    Raises:
        ValueError: If the body is not valid UTF-8 JSON.
    """
    try:
        return _decode_body(body)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from None


def page_params(
    query: Mapping[str, str], default_size: int, prefixes: tuple[str, ...] = ("$", "")
) -> tuple[int, int] | ApiResponse:
    """Read the page parameters spelled with one of ``prefixes`` (``$page`` before ``page``).

    Args:
        query: Query parameters.
        default_size: Page size when none is given.
        prefixes: Spellings honoured, in order of preference; others are ignored.

    Returns:
        ``(page, page_size)``, or the 400 for a value that is not a positive integer.
    """
    out: list[int] = []
    for name, default in (("page", 1), ("pageSize", default_size)):
        raw = next((query[p + name] for p in prefixes if p + name in query), None)
        if raw is None:
            out.append(default)
            continue
        try:
            value = int(raw)
        except ValueError:
            return error(400, f"Parameter ${name} is invalid.", 10001)
        if value < 1:
            return error(400, f"Parameter ${name} is invalid.", 10001)
        out.append(value)
    return out[0], min(out[1], MAX_PAGE_SIZE)
