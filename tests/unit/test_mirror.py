"""The mirror without a server: key comparison, paging, and its refusals."""

from __future__ import annotations

import decimal
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from target_sfmc.mirror import Mirror, MirrorRefusedError, comparable_key, comparable_value
from target_sfmc.records import DataExtensionRow, LoadResult, SfmcRejection
from target_sfmc.settings import parse_settings

BASE = {"client_id": "id", "client_secret": "secret", "subdomain": "mc563885gzs27c5t9-63k636ttgm"}


@pytest.mark.parametrize(
    ("loaded", "read_back"),
    [
        ("Ada", "ada"),
        (" ada ", "ADA"),
        (5, "5"),
        (decimal.Decimal("1.50"), "1.5"),
        (0, "-0"),
        (True, "True"),
        ("007", "7"),  # Text keys that read as numbers compare by value: never a wrong delete
    ],
)
def test_values_compare_the_way_sfmc_reads_them_back(loaded: Any, read_back: str) -> None:
    assert comparable_value(loaded) == comparable_value(read_back)


def test_compound_keys_compare_by_column_name_in_any_case() -> None:
    assert comparable_key({"Contact Key": "a", "Order Id": 1}) == comparable_key(
        {"order id": "1", "contact key": "A"}
    )
    assert comparable_key({"Contact Key": "a", "Order Id": 1}) != comparable_key(
        {"Contact Key": "a", "Order Id": 2}
    )


class FakeClient:
    """A Data Extension read page by page; deletes answered OK."""

    def __init__(self, keys: list[dict[str, Any]], *, cap: int | None = None, **answer: Any):
        self.keys, self.cap, self.answer = keys, cap, answer
        self.pages: list[tuple[int, int]] = []
        self.deleted: list[str] = []

    def read_rowset_page(self, key: str, page: int, size: int) -> dict[str, Any]:
        self.pages.append((page, size))
        size = min(size, self.cap or size)
        items = [{"keys": k, "values": {}} for k in self.keys[(page - 1) * size : page * size]]
        return {"count": len(self.keys), "page": page, "pageSize": size, "items": items} | (
            self.answer
        )


class FakeDeleter:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def delete(self, key: str, rows: list[DataExtensionRow]) -> LoadResult:
        self.client.deleted += [row.keys["Contact Key"] for row in rows]
        return LoadResult(deleted=len(rows))


def mirror_with(
    client: FakeClient, monkeypatch: pytest.MonkeyPatch, *, planning: bool = False, **config: Any
) -> tuple[Mirror, SimpleNamespace]:
    settings, errors = parse_settings(
        {
            **BASE,
            "load_method": "overwrite",
            "streams": {"users": {"type": "identify", "data_extension_key": "DE"}},
            **config,
        }
    )
    assert errors == []
    counted: dict[str, int] = {}
    report = SimpleNamespace(
        count=lambda _stream, **c: counted.update(c), note_confirmed=lambda _rows: None
    )
    runtime = SimpleNamespace(
        settings=settings,
        client=client,
        executor=ThreadPoolExecutor(1),
        report=report,
        batch_started=lambda: None,
        batch_finished=lambda: None,
        counted=counted,
        data_extensions=SimpleNamespace(lookup=lambda _key: "the definition"),
    )
    monkeypatch.setattr("target_sfmc.mirror.RowDeleter", lambda *_a, **_k: FakeDeleter(client))
    mirror = Mirror(runtime, planning=planning)  # type: ignore[arg-type]
    mirror.register("users", "DE", ("Contact Key",))
    return mirror, runtime


def row(key: str, *, delete: bool = False) -> DataExtensionRow:
    return DataExtensionRow("DE", {"Contact Key": key}, {"Contact Key": key}, delete=delete)


def held(*keys: str) -> list[dict[str, Any]]:
    return [{"contact key": key} for key in keys]


def test_rows_not_loaded_are_deleted_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(held("a", "b", "c", "d", "e"))
    mirror, runtime = mirror_with(client, monkeypatch)
    for key in "abcd":
        mirror.note(row(key))
    mirror.note(row("c", delete=True))  # deleted later in the input: not kept
    mirror.mirror_pending()
    assert sorted(client.deleted) == ["c", "e"]
    assert runtime.counted == {"mirror_deleted": 2}
    mirror.mirror_pending()  # mirrored already: nothing again
    assert len(client.pages) == 1


def test_smaller_pages_than_asked_are_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    everyone = [f"k{i:04d}" for i in range(5000)]
    client = FakeClient(held(*everyone), cap=1000)
    mirror, _ = mirror_with(client, monkeypatch)
    for key in everyone[:4000]:
        mirror.note(row(key))
    mirror.mirror_pending()
    assert client.pages == [(1, 2500), (2, 1000), (3, 1000), (4, 1000), (5, 1000)]
    assert sorted(client.deleted) == everyone[4000:]


@pytest.mark.parametrize(
    ("client", "words"),
    [
        (FakeClient(held("a", "a")), "returned a row twice"),
        (FakeClient(held("a", "b"), count=3), "counts 3 rows but its pages listed 2"),
        (FakeClient([{"id": "a"}]), "reads its primary key as (id)"),
        (FakeClient(held("z")), "1 key(s) loaded in this run are not among the keys"),
    ],
    ids=["duplicate", "count", "other-key", "missing"],
)
def test_doubtful_reads_refuse_and_delete_nothing(
    monkeypatch: pytest.MonkeyPatch, client: FakeClient, words: str
) -> None:
    mirror, _ = mirror_with(client, monkeypatch)
    mirror.note(row("a"))
    with pytest.raises(MirrorRefusedError) as refused:
        mirror.mirror_pending()
    assert words in str(refused.value)
    assert "nothing was deleted" in str(refused.value)
    assert client.deleted == []


def test_refused_rows_keep_their_key_without_being_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = FakeClient(held("a", "old"))
    mirror, _ = mirror_with(client, monkeypatch, mirror_max_delete_ratio=1)
    for key in ("a", "bad"):
        mirror.note(row(key))
    mirror.note_refused([SfmcRejection(row("bad"), "refused")])
    mirror.mirror_pending()
    assert client.deleted == ["old"]


def test_the_ratio_and_the_empty_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(held("a", "b", "c"))
    mirror, _ = mirror_with(client, monkeypatch)
    mirror.note(row("a"))
    with pytest.raises(MirrorRefusedError, match=r"delete 2 of 3 rows \(67%\)"):
        mirror.mirror_pending()
    empty, _ = mirror_with(client, monkeypatch)
    with pytest.raises(MirrorRefusedError, match="sent no rows"):
        empty.mirror_pending()
    assert client.pages == [(1, 2500)]  # an empty stream is refused before any read
    allowed, _ = mirror_with(client, monkeypatch, allow_empty_mirror=True)
    allowed.mirror_pending()
    assert sorted(client.deleted) == ["a", "b", "c"]


def test_a_plan_counts_what_the_mirror_would_find_after_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = FakeClient(held("a", "b", "c", "d"))
    mirror, runtime = mirror_with(client, monkeypatch, planning=True)
    for key in ("a", "b", "new"):
        mirror.note(row(key))
    mirror.note(row("b", delete=True))  # hard-deleted later in the input: not there to delete
    (plan,) = mirror.plan_pending()
    # After the load the DE holds a, c, d and new; the mirror deletes c and d.
    assert (plan.held, plan.keys, plan.new, plan.total, plan.doomed) == (4, 2, 1, 4, 2)
    assert plan.refusal is None  # 50% is not more than the default 0.5
    mirror.note(row("a"))
    (again,) = mirror.plan_pending()  # follows from the first plan, not from SFMC
    assert (again.held, again.keys, again.total, again.doomed) == (2, 1, 2, 1)
    assert len(client.pages) == 1
    assert client.deleted == []
    assert runtime.counted == {}
    with pytest.raises(RuntimeError, match="never mirrors"):
        mirror.mirror("DE", "users")


def test_a_plan_words_the_load_s_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(held("a", "b", "c"))
    mirror, _ = mirror_with(client, monkeypatch, planning=True)
    mirror.note(row("a"))
    (plan,) = mirror.plan_pending()
    assert plan.refusal is not None
    assert "would delete 2 of 3 rows (67%)" in plan.refusal
    empty, _ = mirror_with(client, monkeypatch, planning=True)
    (plan,) = empty.plan_pending()
    assert (plan.held, plan.doomed) == (3, 3)
    assert plan.refusal is not None
    assert "sent no rows" in plan.refusal
    odd, _ = mirror_with(FakeClient(held("a", "a")), monkeypatch, planning=True)
    odd.note(row("a"))
    (plan,) = odd.plan_pending()
    assert plan.held is None  # not listed: nothing to count
    assert plan.refusal is not None
    assert "returned a row twice" in plan.refusal
