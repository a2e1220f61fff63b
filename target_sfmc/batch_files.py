"""Records of Singer BATCH messages: the JSONL files a BATCH message's manifest names.

A tap may send a stream's records as files instead of RECORD lines. Each file holds one JSON
record per line, gzip-compressed or not; the manifest names the files by URL (``file://``,
or any scheme fsspec knows). Their records are loaded exactly like RECORD messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import fsspec
import msgspec
from singer_sdk.contrib.msgspec import decoder

from target_sfmc.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator

_COMPRESSIONS = {"gzip": "gzip", "none": None, None: None}


def _location(url: str) -> str:
    """A path for local files (``file:///a/b`` or a bare path), the URL itself otherwise."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return unquote(parts.path)
    return url


def batch_records(message: dict[str, Any], line_number: int) -> Iterator[dict[str, Any]]:
    """Read every record of a BATCH message's files, in manifest order.

    Args:
        message: The BATCH message.
        line_number: Its input line (for error messages).

    Yields:
        Each record, as the reader decodes a RECORD's (numbers as Decimal).

    Raises:
        InputError: For an encoding this target cannot read, a file that cannot be read, or
            a line that is not a JSON object (named by file and line, never by content).
    """
    encoding = message.get("encoding")
    manifest = message.get("manifest")
    if not isinstance(encoding, dict) or not isinstance(manifest, list):
        raise InputError(
            f"Input line {line_number}: a BATCH message needs 'encoding' and a 'manifest' list."
        )
    if encoding.get("format") != "jsonl":
        raise InputError(
            f"Input line {line_number}: BATCH files in format {encoding.get('format')!r} are "
            "not supported; have the tap write 'jsonl'."
        )
    compression = encoding.get("compression")
    if compression not in _COMPRESSIONS:
        raise InputError(
            f"Input line {line_number}: BATCH compression {compression!r} is not supported "
            "(use 'gzip' or 'none')."
        )
    for url in manifest:
        yield from _file_records(str(url), _COMPRESSIONS[compression], line_number)


def _file_records(url: str, compression: str | None, line_number: int) -> Iterator[dict[str, Any]]:
    try:
        with fsspec.open(_location(url), mode="rb", compression=compression) as file:
            for file_line, line in enumerate(file, start=1):
                if not line.strip():
                    continue
                try:
                    record = decoder.decode(line)
                except msgspec.DecodeError:
                    record = None
                if not isinstance(record, dict):
                    raise InputError(
                        f"Input line {line_number}: line {file_line} of BATCH file '{url}' is "
                        "not a JSON object."
                    )
                yield record
    except (OSError, EOFError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise InputError(
            f"Input line {line_number}: BATCH file '{url}' cannot be read ({reason})."
        ) from None
