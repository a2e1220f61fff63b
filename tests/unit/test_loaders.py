"""Pure helpers of the loaders: request chunking and row-error classification."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_sfmc.errors import SfmcApiError
from target_sfmc.loading import asynchronous
from target_sfmc.loading.base import is_row_error
from target_sfmc.loading.concurrency import chunk_by_size
from target_sfmc.records import DataExtensionRow


def test_empty_input_gives_no_chunks() -> None:
    assert chunk_by_size([], 50, 1000) == []


def test_item_limit() -> None:
    encoded = [b"x"] * 120
    assert chunk_by_size(encoded, 50, 10_000) == [range(50), range(50, 100), range(100, 120)]


def test_exact_multiple_of_item_limit() -> None:
    assert chunk_by_size([b"x"] * 100, 50, 10_000) == [range(50), range(50, 100)]


def test_byte_limit() -> None:
    encoded = [b"a" * 9] * 10  # 10 bytes each with its separator
    chunks = chunk_by_size(encoded, 100, 30)
    assert chunks == [range(3), range(3, 6), range(6, 9), range(9, 10)]


def test_oversized_single_item_goes_alone() -> None:
    encoded = [b"a", b"b" * 500, b"c", b"d" * 500, b"e" * 500, b"f"]
    chunks = chunk_by_size(encoded, 50, 100)
    assert chunks == [range(1), range(1, 2), range(2, 3), range(3, 4), range(4, 5), range(5, 6)]


def test_oversized_first_item() -> None:
    assert chunk_by_size([b"x" * 1000, b"y", b"z"], 50, 100) == [range(1), range(1, 3)]


def test_single_item() -> None:
    assert chunk_by_size([b"{}"], 1, 1) == [range(1)]


ITEMS = st.lists(st.binary(min_size=0, max_size=60), max_size=80)


@given(ITEMS, st.integers(min_value=1, max_value=20), st.integers(min_value=1, max_value=300))
def test_chunking_properties(encoded: list[bytes], max_items: int, max_bytes: int) -> None:
    chunks = chunk_by_size(encoded, max_items, max_bytes)
    # Every index exactly once, in order, in consecutive non-empty ranges.
    flat = [i for chunk in chunks for i in chunk]
    assert flat == list(range(len(encoded)))
    assert all(len(chunk) > 0 and chunk.step == 1 for chunk in chunks)
    for chunk in chunks:
        assert len(chunk) <= max_items
        if len(chunk) > 1:
            # Items plus their separators stay within the byte limit.
            assert sum(len(encoded[i]) + 1 for i in chunk) <= max_bytes
    # Greedy: a chunk only ends when the next item would break a limit.
    for chunk, following in itertools.pairwise(chunks):
        nxt = following[0]
        total = sum(len(encoded[i]) + 1 for i in chunk) + len(encoded[nxt]) + 1
        assert len(chunk) + 1 > max_items or total > max_bytes


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=60))
def test_chunking_with_huge_limits_is_one_chunk(encoded: list[bytes]) -> None:
    assert chunk_by_size(encoded, 10_000, 10_000_000) == [range(len(encoded))]


def error(status: int, message: str, additional: list[Any] | None = None) -> SfmcApiError:
    return SfmcApiError(
        endpoint="rowset",
        status=status,
        error_code=10006 if additional else 10000,
        message=message,
        additional_errors=additional,
    )


@pytest.mark.parametrize(
    ("status", "message", "additional", "expected"),
    [
        (400, "Unable to save rows for data extension ID 1", [{"message": "bad"}], True),
        (400, "At least one existing field is required in the values property", None, True),
        # Bare messages are request-level: they may quote a user's DE key ("CUSTOMER_FIELDS").
        (400, "The value for column [Age] is not a valid number", None, False),
        (400, "Data Extension with external key CUSTOMER_FIELDS not found.", None, False),
        (400, "Primary key 'User Id' does not exist.", None, False),
        (400, "Data Extension with key X not found", None, False),
        (400, "Unable to save rows for data extension ID 1", None, False),
        (401, "field", [{"message": "bad"}], False),
        (403, "Insufficient privileges", None, False),
        (404, "Not found", None, False),
        (500, "column error", [{"message": "x"}], False),
    ],
)
def test_is_row_error(
    status: int,
    message: str,
    additional: list[Any] | None,
    expected: bool,  # noqa: FBT001
) -> None:
    assert is_row_error(error(status, message, additional)) is expected


def test_async_bodies_stay_within_limits_and_keep_every_row(monkeypatch):
    monkeypatch.setattr(asynchronous, "ASYNC_BYTES_PER_REQUEST", 2_000)
    loader = asynchronous.AsyncRowLoader(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        rows_per_request=None,
        timeout_seconds=1,
        describe=str,
        on_confirmed=lambda _rows: None,
    )
    rows = [
        DataExtensionRow(
            "DE", {"Contact Key": f"u{i}"}, {"Contact Key": f"u{i}", "Note": "x" * (i % 50)}
        )
        for i in range(300)
    ]
    requests = loader._requests(rows, list(range(len(rows))))
    assert len(requests) > 1
    assert [i for indexes, _ in requests for i in indexes] == list(range(300))
    for indexes, body in requests:
        assert len(body) <= 2_000
        items = json.loads(body)["items"]
        assert [item["Contact Key"] for item in items] == [f"u{i}" for i in indexes]
    assert 1 <= loader.rows_per_request() < 300
