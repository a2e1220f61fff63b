"""A batch sent while it is read: per-key order, the job cap, and waiting for any job."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from target_sfmc.loading import streaming
from target_sfmc.loading.streaming import StreamingBatchLoad
from target_sfmc.records import DataExtensionRow, LoadResult


def row(key: str) -> DataExtensionRow:
    return DataExtensionRow("DE", {"Contact Key": key}, {"Contact Key": key})


class GatedLoader:
    """Loads instantly, except rows whose key is held at a gate."""

    def __init__(self, held: set[str]) -> None:
        self.pipeline = ThreadPoolExecutor(max_workers=8)
        self.held = held
        self.gate = threading.Event()
        self.loaded: list[str] = []
        self.lock = threading.Lock()

    def load(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        del key
        if any(r.keys["Contact Key"] in self.held for r in rows):
            assert self.gate.wait(timeout=10)
        with self.lock:
            self.loaded += [r.keys["Contact Key"] for r in rows]
        return LoadResult().confirm_rows(rows)

    def rows_per_job(self) -> int:
        return 1

    def jobs_wanted(self) -> int:
        return 2


def pending(*keys: str) -> dict:
    return {r.primary_key: r for r in map(row, keys)}


def test_reading_waits_for_any_job_not_the_oldest(monkeypatch) -> None:
    monkeypatch.setattr(streaming, "MIN_UNFINISHED_JOBS", 2)
    loader = GatedLoader(held={"slow"})
    load = StreamingBatchLoad(loader, send_at=1)
    load.send("DE", pending("slow"))
    for key in ("a", "b", "c", "d"):
        # Past two unfinished jobs, a send waits until one ends: the quick ones do, while
        # the oldest still waits at its gate.
        load.send("DE", pending(key))
    assert not loader.gate.is_set()
    assert set(loader.loaded) >= {"a", "b", "c"}
    loader.gate.set()
    result = LoadResult()
    load.finish([], result)
    assert sorted(loader.loaded) == ["a", "b", "c", "d", "slow"]
    assert result.written == 5


def test_a_job_for_a_key_in_flight_waits_for_it(monkeypatch) -> None:
    monkeypatch.setattr(streaming, "MIN_UNFINISHED_JOBS", 8)
    loader = GatedLoader(held={"k"})
    load = StreamingBatchLoad(loader, send_at=1)
    load.send("DE", pending("k"))
    assert load.holds("DE", row("k").primary_key)
    loader.held = set()  # the later row for "k" is not held: only the order keeps it back
    load.send("DE", pending("k"))
    load.send("DE", pending("x"))
    threading.Event().wait(0.2)
    assert loader.loaded == ["x"]  # "x" went; the second "k" waits for the first
    loader.gate.set()
    load.finish([], LoadResult())
    assert loader.loaded == ["x", "k", "k"]
    assert not load.holds("DE", row("k").primary_key)


def test_a_failed_job_fails_the_batch(monkeypatch) -> None:
    monkeypatch.setattr(streaming, "MIN_UNFINISHED_JOBS", 1)

    class Failing(GatedLoader):
        def load(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
            raise RuntimeError("refused")

    load = StreamingBatchLoad(Failing(held=set()), send_at=1)
    load.send("DE", pending("a"))

    def read_on() -> None:
        load.send("DE", pending("b"))
        load.send("DE", pending("c"))
        load.finish([], LoadResult())

    with pytest.raises(RuntimeError, match="refused"):
        read_on()
