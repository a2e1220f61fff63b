"""Data Extension columns from a stream's SCHEMA, and which values fit a column."""

from __future__ import annotations

import decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from target_sfmc.de_columns import Column, ColumnRules, decimal_scale, property_shape
from target_sfmc.de_row_checks import compile_row_check
from target_sfmc.de_tables import stream_tables
from target_sfmc.de_values import always_fits, value_check
from target_sfmc.fastpath.rows import attribute_row_type
from target_sfmc.settings import parse_settings

RULES = ColumnRules(text_length=254, decimal_precision=18, decimal_scale=4)


def column_of(definition, name="prop", root=None, **kwargs):
    shape = property_shape(definition, root or {}, name)
    return RULES.for_property("Prop", shape, **kwargs)


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ({"type": "string"}, Column("Prop", "Text", 254)),
        ({"type": ["string", "null"], "maxLength": 40}, Column("Prop", "Text", 40)),
        ({"type": "string", "maxLength": 4000}, Column("Prop", "Text", 4000)),
        ({"type": "string", "format": "date-time"}, Column("Prop", "Date")),
        ({"type": ["null", "string"], "format": "date"}, Column("Prop", "Date")),
        ({"type": "string", "format": "time"}, Column("Prop", "Text", 254)),
        ({"type": "string", "format": "email"}, Column("Prop", "EmailAddress", 254)),
        ({"type": "integer"}, Column("Prop", "Number")),
        ({"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, Column("Prop", "Number")),
        ({"type": "integer", "maximum": 2**31}, Column("Prop", "Decimal", 29, 0)),
        ({"type": "integer", "minimum": -(2**31) - 1}, Column("Prop", "Decimal", 29, 0)),
        ({"type": "number"}, Column("Prop", "Decimal", 18, 4)),
        ({"type": ["number", "null"], "multipleOf": 0.01}, Column("Prop", "Decimal", 18, 2)),
        ({"type": "number", "multipleOf": 1e-10}, Column("Prop", "Decimal", 18, 10)),
        ({"type": "number", "multipleOf": 5}, Column("Prop", "Decimal", 18, 0)),
        ({"type": ["integer", "number"]}, Column("Prop", "Decimal", 18, 4)),
        ({"type": "boolean"}, Column("Prop", "Boolean")),
        ({"type": ["string", "integer"]}, Column("Prop", "Text", 254)),
        ({}, Column("Prop", "Text", 254)),
        (
            {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            Column("Prop", "Date"),
        ),
    ],
)
def test_type_rules(definition, expected):
    assert column_of(definition) == (expected, None)


def test_objects_and_arrays_get_no_column():
    assert column_of({"type": ["object", "null"]}) == (None, None)
    assert column_of({"type": "array", "items": {"type": "string"}}) == (None, None)


def test_a_property_named_email_is_an_email_address():
    assert column_of({"type": "string"}, is_email=True)[0] == Column("Prop", "EmailAddress", 254)


def test_text_over_4000_is_a_problem_naming_the_length():
    column, problem = column_of({"type": "string", "maxLength": 5000})
    assert column == Column("Prop", "Text", 4000)
    assert "5000" in problem
    assert "4000" in problem


def test_references_are_followed():
    root = {"definitions": {"money": {"type": "number", "multipleOf": 0.01}}}
    assert column_of({"$ref": "#/definitions/money"}, root=root)[0] == Column(
        "Prop", "Decimal", 18, 2
    )


def test_primary_keys_are_never_nullable():
    column, _ = column_of({"type": "string"}, primary_key=True)
    assert column == Column("Prop", "Text", 254, primary_key=True, nullable=False)
    assert column.to_api(0) == {
        "name": "Prop",
        "type": "Text",
        "length": 254,
        "isPrimaryKey": True,
        "isNullable": False,
        "ordinal": 0,
    }


def test_decimal_scale_from_multiple_of():
    assert decimal_scale(0.01) == 2
    assert decimal_scale(decimal.Decimal("0.25")) == 2
    assert decimal_scale(10) == 0
    assert decimal_scale(0) is None
    assert decimal_scale("x") is None


@pytest.mark.parametrize(
    ("column", "value", "fits"),
    [
        (Column("T", "Text", 5), "abcde", True),
        (Column("T", "Text", 5), "abcdef", False),
        (Column("T", "Text", 4), True, True),
        (Column("T", "Text", 4), False, False),
        (Column("N", "Number"), 2**31 - 1, True),
        (Column("N", "Number"), 2**31, False),
        (Column("N", "Number"), -(2**31), True),
        (Column("N", "Number"), "42", True),
        (Column("N", "Number"), "forty-two", False),
        (Column("N", "Number"), decimal.Decimal("4.5"), False),
        (Column("N", "Number"), decimal.Decimal(42), True),
        (Column("N", "Number"), True, False),
        (Column("D", "Decimal", 5, 2), decimal.Decimal("123.45"), True),
        (Column("D", "Decimal", 5, 2), decimal.Decimal("1234.5"), False),
        (Column("D", "Decimal", 5, 2), decimal.Decimal("1.234"), False),
        (Column("D", "Decimal", 5, 2), decimal.Decimal("1.230"), True),
        (Column("D", "Decimal", 5, 2), 999, True),
        (Column("D", "Decimal", 5, 2), 1000, False),
        (Column("D", "Decimal", 5, 2), "12.5", True),
        (Column("D", "Decimal", 5, 2), "abc", False),
        (Column("D", "Decimal", 5, 2), 1.5, True),
        (Column("B", "Boolean"), True, True),
        (Column("B", "Boolean"), "Yes", True),
        (Column("B", "Boolean"), "maybe", False),
        (Column("B", "Boolean"), 1, False),
        (Column("W", "Date"), "2024-01-01", True),
        (Column("W", "Date"), 20240101, False),
    ],
)
def test_value_checks(column, value, fits):
    check = value_check(column)
    assert check is not None
    assert (check(value) is None) is fits


def test_value_check_reasons_never_quote_the_value():
    reason = value_check(Column("T", "Text", 3))("secret-value")
    assert reason == "is too long"
    assert "secret" not in value_check(Column("N", "Number"))("secret")


def test_schema_guarantees_skip_the_checks():
    def fits(column, definition):
        return always_fits(column, property_shape(definition, {}, "p"))

    assert fits(Column("B", "Boolean"), {"type": ["boolean", "null"]})
    assert fits(Column("T", "Text", 50), {"type": "string", "maxLength": 50})
    assert not fits(Column("T", "Text", 50), {"type": "string", "maxLength": 51})
    assert not fits(Column("T", "Text", 50), {"type": "string"})
    assert fits(Column("N", "Number"), {"type": "integer", "minimum": 0, "maximum": 10})
    assert not fits(Column("N", "Number"), {"type": "integer"})
    assert fits(Column("W", "Date"), {"type": "string", "format": "date-time"})
    assert fits(
        Column("D", "Decimal", 5, 2),
        {"type": "number", "multipleOf": 0.01, "minimum": -999, "maximum": 999},
    )
    assert not fits(Column("D", "Decimal", 5, 2), {"type": "number", "maximum": 999})
    assert not always_fits(Column("B", "Boolean"), None)


def settings_of(**config):
    base = {"client_id": "c", "client_secret": "s", "subdomain": "mc563885gzs27c5t9-63k636ttgm"}
    settings, errors = parse_settings({**base, **config})
    assert errors == []
    return settings


def columns_of(spec):
    return [(c.name, c.short(), c.primary_key) for c in spec.columns.values()]


USERS = {
    "type": "object",
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "firstName": {"type": ["string", "null"], "maxLength": 100},
        "logins": {"type": ["integer", "null"]},
        "lifetime_value": {"type": ["number", "null"], "multipleOf": 0.01},
        "is_active": {"type": ["boolean", "null"]},
        "createdAt": {"type": ["string", "null"], "format": "date-time"},
        "address": {"type": ["object", "null"]},
    },
}


def test_identify_columns_and_sendable():
    settings = settings_of(
        identify_data_extension_key="IDENTIFY",
        streams={"users": {"type": "identify", "data_extension_name": "Website Users"}},
    )
    (spec,), events = stream_tables(settings.streams["users"], settings, USERS, ["user_id"])
    assert events == []
    assert (spec.key, spec.name, spec.sendable) == ("IDENTIFY", "Website Users", True)
    assert columns_of(spec) == [
        ("Contact Key", "Text(254)", True),
        ("User Id", "Text(254)", False),
        ("Email", "EmailAddress(254)", False),
        ("First Name", "Text(100)", False),
        ("Logins", "Number", False),
        ("Lifetime Value", "Decimal(18,2)", False),
        ("Is Active", "Boolean", False),
        ("Created At", "Date", False),
    ]


def test_context_attributes_only_when_context_is_declared():
    settings = settings_of(
        identify_data_extension_key="IDENTIFY", streams={"u": {"type": "identify"}}
    )
    with_context = {
        "properties": {
            "user_id": {"type": "string"},
            "context": {
                "type": "object",
                "properties": {
                    "app": {"properties": {"name": {"type": "string", "maxLength": 30}}}
                },
            },
        }
    }
    (spec,), _ = stream_tables(settings.streams["u"], settings, with_context, [])
    names = [c.name for c in spec.columns.values()]
    assert "Context" not in names
    assert spec.columns["app name"] == Column("App Name", "Text", 30)
    assert spec.columns["screen height"] == Column("Screen Height", "Number")
    assert spec.columns["wifi enabled"] == Column("Wifi Enabled", "Boolean")
    (plain,), _ = stream_tables(settings.streams["u"], settings, USERS, [])
    assert "app name" not in plain.columns


def test_track_keys_uuid_and_contact_key():
    settings = settings_of(
        streams={
            "orders": {"type": "track", "data_extension_key": "ORDERS"},
            "views": {"type": "track", "data_extension_key": "VIEWS", "uuid_primary_key": True},
            "keyed": {
                "type": "track",
                "data_extension_key": "K",
                "primary_keys": "Contact Key,Sku",
            },
        }
    )
    schema = {
        "properties": {
            "order_id": {"type": "integer"},
            "user_id": {"type": "string"},
            "total": {"type": "number"},
        }
    }
    (orders,), _ = stream_tables(settings.streams["orders"], settings, schema, ["order_id"])
    assert columns_of(orders) == [
        ("Order Id", "Number", True),
        ("Contact Key", "Text(254)", False),
        ("User Id", "Text(254)", False),
        ("Total", "Decimal(18,4)", False),
    ]
    (views,), _ = stream_tables(settings.streams["views"], settings, schema, ["order_id"])
    assert columns_of(views)[0] == ("Uuid", "Text(36)", True)
    assert views.primary_keys == ("Uuid",)
    (keyed,), _ = stream_tables(settings.streams["keyed"], settings, schema, [])
    assert keyed.primary_keys == ("Contact Key", "Sku")
    assert keyed.columns["sku"] == Column("Sku", "Text", 254, primary_key=True, nullable=False)


def test_audience_columns_are_booleans_per_audience_seen():
    settings = settings_of(
        identify_data_extension_key="IDENTIFY", streams={"a": {"type": "audience"}}
    )
    (spec,), _ = stream_tables(
        settings.streams["a"], settings, {"properties": {}}, [], audiences=["trial_users", "VIP"]
    )
    assert columns_of(spec) == [
        ("Contact Key", "Text(254)", True),
        ("Trial Users", "Boolean", False),
        ("VIP", "Boolean", False),
    ]
    assert spec.sendable


def test_segment_streams_use_traits_and_properties():
    settings = settings_of(
        identify_data_extension_key="IDENTIFY",
        conversion_events=[
            {"event": "Order Completed", "data_extension_key": "ORDERS", "primary_keys": "Order Id"}
        ],
        api_events=[{"event": "Signed Up", "event_definition_key": "APIEvent-1"}],
        streams={"events": {"type": "segment"}},
    )
    schema = {
        "properties": {
            "traits": {
                "type": "object",
                "properties": {"plan": {"type": "string", "maxLength": 9}},
            },
            "properties": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}},
            },
        }
    }
    specs, events = stream_tables(settings.streams["events"], settings, schema, [])
    by_key = {spec.key: spec for spec in specs}
    assert columns_of(by_key["IDENTIFY"]) == [
        ("Contact Key", "Text(254)", True),
        ("Plan", "Text(9)", False),
    ]
    assert columns_of(by_key["ORDERS"]) == [
        ("Order Id", "Text(254)", True),
        ("Contact Key", "Text(254)", False),
        ("Total", "Decimal(18,4)", False),
    ]
    assert [e.key for e in events] == ["APIEvent-1"]
    assert list(events[0].columns) == ["order id", "total"]


def test_default_sizes_are_settings():
    settings = settings_of(
        default_text_length=80,
        default_decimal_precision=20,
        default_decimal_scale=6,
        identify_data_extension_key="I",
        streams={"u": {"type": "identify"}},
    )
    schema = {"properties": {"name": {"type": "string"}, "score": {"type": "number"}}}
    (spec,), _ = stream_tables(settings.streams["u"], settings, schema, [])
    assert spec.columns["name"] == Column("Name", "Text", 80)
    assert spec.columns["score"] == Column("Score", "Decimal", 20, 6)


def test_decimal_scale_above_precision_is_refused_at_start():
    base = {"client_id": "c", "client_secret": "s", "subdomain": "mc563885gzs27c5t9-63k636ttgm"}
    _, errors = parse_settings({**base, "default_decimal_precision": 4, "default_decimal_scale": 6})
    assert errors == [
        "Setting 'default_decimal_scale' cannot be more than 'default_decimal_precision'."
    ]


def test_column_read_from_sfmc():
    raw = {
        "name": "Order Total",
        "type": "decimal",
        "length": 18,
        "scale": 2,
        "isPrimaryKey": False,
        "isNullable": True,
    }
    assert Column.from_api(raw) == Column("Order Total", "Decimal", 18, 2)
    assert Column.from_api({"type": "Text"}) is None


# -- the compiled row check agrees with the column checks ------------------------------------

COLUMNS = [
    Column("T", "Text", 5),
    Column("E", "EmailAddress", 8),
    Column("N", "Number"),
    Column("D", "Decimal", 5, 2),
    Column("Z", "Decimal", 3, 0),
    Column("S", "Decimal", 2, 2),
    Column("B", "Boolean"),
    Column("W", "Date"),
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
        lambda d: abs(d.adjusted()) < 40
    ),
    st.text(max_size=12),
    st.sampled_from(["true", "no", "42", "-7", "1.25", "1E+2", "12345678901"]),
)


@given(st.lists(VALUES, min_size=len(COLUMNS), max_size=len(COLUMNS)))
@settings(max_examples=400, deadline=None)
def test_compiled_check_agrees_with_each_column_check(values):
    checks = [(c.name, c, value_check(c)) for c in COLUMNS]
    expected = None
    for index, (column, value) in enumerate(zip(COLUMNS, values, strict=True)):
        reason = None if value is None else value_check(column)(value)
        if reason is not None:
            expected = (index, reason)
            break
    as_dict = {c.name: v for c, v in zip(COLUMNS, values, strict=True)}
    assert compile_row_check(checks, None)(as_dict) == expected
    row_type = attribute_row_type([c.name for c in COLUMNS])
    positions = {name: i for i, name in enumerate(row_type.__struct_encode_fields__)}
    assert compile_row_check(checks, positions)(row_type(*values)) == expected


def test_compiled_check_skips_names_left_out_of_positions():
    checks = [("T", COLUMNS[0], value_check(COLUMNS[0]))]
    row_type = attribute_row_type(["T"])
    assert compile_row_check(checks, {})(row_type("far too long")) is None
    assert compile_row_check(checks, {"T": 0})(row_type("far too long")) == (0, "is too long")
