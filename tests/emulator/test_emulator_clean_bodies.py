"""Clean async bodies take a one-pass path in the emulator that stores and answers as the other."""

from __future__ import annotations

import random
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from target_sfmc.emulator.faults import JobFaults
from target_sfmc.emulator.rows import CompiledDataExtension, RowWriter
from target_sfmc.emulator.schema import parse_data_extension
from target_sfmc.emulator.store import Store

DE = parse_data_extension(
    {
        "key": "MIXED",
        "fields": [
            {"name": "Contact Key", "type": "Text", "length": 8, "primary_key": True},
            {"name": "Email", "type": "EmailAddress"},
            {"name": "Name", "type": "Text", "length": 5},
            {"name": "Plan", "type": "Text", "length": 4, "nullable": False},
            {"name": "Logins", "type": "Number"},
            {"name": "Score", "type": "Decimal", "precision": 6, "scale": 2},
            {"name": "Is Active", "type": "Boolean"},
            {"name": "Created At", "type": "Date"},
            {"name": "Phone", "type": "Phone"},
        ],
    }
)
NO_FAULTS = JobFaults(error=False, deadlock_rate=0.0, rng=random.Random(0))  # noqa: S311 - no faults drawn

any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.sampled_from(
        ["", "x", "a@b.co", "bad@", "2023-01-02", "2023-13-01", "1.5", "true", "12345", "123456"]
    ),
    st.text(max_size=9),
)
clean_fields = st.fixed_dictionaries(
    {
        "Contact Key": st.sampled_from(["u1", "U1 ", "u2", "u3", "12345678", "123456789"]),
        "Plan": st.text(max_size=4),
    },
    optional={
        "Email": st.one_of(st.none(), st.sampled_from(["a@b.co", "c.d@e.fr"])),
        "Name": st.one_of(st.none(), st.text(max_size=5)),
        "Logins": st.one_of(st.none(), st.integers(min_value=-(2**31), max_value=2**31 - 1)),
        "Score": st.one_of(st.none(), st.sampled_from([1.5, 0.25, 9999.99, 123, 1e-7, 1e5])),
        "Is Active": st.one_of(st.none(), st.booleans()),
        "Created At": st.one_of(
            st.none(), st.sampled_from(["2023-01-02", "2023-01-02T03:04:05+01:00", "1700-01-01"])
        ),
        "Phone": st.one_of(st.none(), st.sampled_from(["+44 20 7946 0958", "12"])),
    },
)
items_strategy = st.lists(
    st.builds(
        lambda clean, extra: {**clean, **extra},
        clean_fields,
        st.dictionaries(
            st.sampled_from(["Name", "Logins", "Score", "plan", "Unknown"]), any_value, max_size=1
        ),
    ),
    min_size=1,
    max_size=6,
)


def _load(items: list[Any], *, clean: bool, seed_rows: list[dict[str, Any]]) -> tuple[Any, ...]:
    cde = CompiledDataExtension(DE)
    store = Store()
    writer = RowWriter(store)
    writer.apply_async(cde, seed_rows, insert=False, faults=NO_FAULTS)
    results, has_errors = writer.apply_async(
        cde, items, insert=False, faults=NO_FAULTS, clean=clean
    )
    rows = [cde.ordered(row) for row in store.list_rows(DE.id)]
    return results, has_errors, rows


@settings(max_examples=300, deadline=None)
@given(items=items_strategy, existing=st.booleans())
def test_clean_path_matches_the_general_path(
    items: list[dict[str, Any]], *, existing: bool
) -> None:
    seed = [{"Contact Key": "u1", "Plan": "old", "Name": "Kept"}] if existing else []
    body = msgspec.json.encode({"items": items})
    clean_items = CompiledDataExtension(DE).decode_clean_items(body)
    if clean_items is None:
        return
    assert _load(clean_items, clean=True, seed_rows=seed) == _load(
        msgspec.json.decode(body)["items"], clean=False, seed_rows=seed
    )


def test_clean_bodies_take_the_one_pass_path() -> None:
    cde = CompiledDataExtension(DE)
    body = msgspec.json.encode(
        {
            "items": [
                {"Contact Key": "u1", "Plan": "pro", "Email": "a@b.co", "Score": 1.5},
                {"Contact Key": "u2", "Plan": "", "Created At": "2023-01-02", "Logins": 3},
            ]
        }
    )
    clean_items = cde.decode_clean_items(body)
    assert clean_items is not None
    results, has_errors, rows = _load(clean_items, clean=True, seed_rows=[])
    assert not has_errors
    assert [r["status"] for r in results] == ["OK", "OK"]
    assert rows == [
        {"Contact Key": "u1", "Email": "a@b.co", "Plan": "pro", "Score": 1.5},
        {"Contact Key": "u2", "Plan": "", "Logins": 3, "Created At": "2023-01-02"},
    ]


def test_bodies_needing_checks_take_the_general_path() -> None:
    cde = CompiledDataExtension(DE)
    for item in (
        {"contact key": "u1", "Plan": "pro"},  # another spelling of a column
        {"Contact Key": "u1"},  # a required column missing
        {"Contact Key": "u1", "Plan": "pro", "Score": 1.234},  # too many decimals
        {"Contact Key": "", "Plan": "pro"},  # empty key
        {"Contact Key": "u1", "Plan": "pro", "Logins": "3"},  # a number as text
        {"Contact Key": "u1", "Plan": "pro", "Unknown": 1},  # an unknown column
    ):
        assert cde.decode_clean_items(msgspec.json.encode({"items": [item]})) is None, item
