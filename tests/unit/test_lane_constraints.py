"""A lane's decode holds values to their Data Extension columns; others take the general path."""

from __future__ import annotations

import msgspec

from target_sfmc.fastpath.lanes import compile_lane

SCHEMA = {
    "properties": {
        "user_id": {"type": "string"},
        "plan": {"type": ["string", "null"]},
        "logins": {"type": ["integer", "string", "null"]},
        "seen_at": {"type": ["string", "null"], "format": "date-time"},
    }
}
CONSTRAINTS = {
    "plan": (str, msgspec.Meta(max_length=5)),
    "logins": (int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)),
    "seen_at": (str, msgspec.Meta(max_length=3)),  # date-like: rewritten by the lane, not held
}


def lane():
    built = compile_lane(
        SCHEMA,
        ["user_id"],
        validate=True,
        user_id_properties=["user_id"],
        email_property="email",
        constraints=CONSTRAINTS,
    )
    assert built is not None
    return built


def test_values_within_their_columns_stay_in_the_lane():
    mapped = lane().map(b'{"user_id": "a", "plan": "pro", "logins": 2147483647}')
    assert mapped is not None
    ck, row = mapped
    assert ck == "a"
    assert dict(row.items()) == {
        "User Id": "a",
        "Plan": "pro",
        "Logins": 2147483647,
        "Contact Key": "a",
    }


def test_values_beyond_their_columns_take_the_general_path():
    built = lane()
    assert built.map(b'{"user_id": "a", "plan": "enterprise"}') is None
    assert built.map(b'{"user_id": "a", "logins": 2147483648}') is None
    assert built.map(b'{"user_id": "a", "logins": "many"}') is not None  # text: not held


def test_the_lane_says_which_names_it_held():
    built = lane()
    # Logins may also be text, which the decode does not hold: the gate checks it.
    assert built.guaranteed == {"Plan"}
    assert built.row_type is not None
    assert built.map(b'{"user_id": "a", "seen_at": "2024-01-01T00:00:00Z"}') is not None
