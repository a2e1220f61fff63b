"""A record lane gives exactly what the general path gives, or declines the record."""

from __future__ import annotations

import decimal
import json
import logging
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from singer_sdk.contrib.msgspec import decoder as sdk_decoder
from singer_sdk.exceptions import InvalidRecord
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum

from target_sfmc.dates import DateParser
from target_sfmc.fastpath.lanes import compile_lane, decode_envelope
from target_sfmc.fastpath.rows import AttributeRow
from target_sfmc.jsonio import encode_json
from target_sfmc.mapping import CONTACT_KEY, contact_key, map_attributes
from target_sfmc.validation import FastJSONSchemaValidator

USER_ID_PROPERTIES = ("user_id", "userId")
EMAIL_PROPERTY = "email"

# An object or null: a union the decode holds values to.
PREFERENCES: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "properties": {"newsletter": {"type": "boolean"}},
            "required": ["newsletter"],
        },
        {"type": "null"},
    ]
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "firstName": {"type": ["string", "null"]},
        "plan code": {"type": "string"},
        "logins": {"type": ["integer", "null"]},
        "score": {"type": ["number", "null"]},
        "ratio": {"type": ["integer", "number"]},
        "is_active": {"type": ["boolean", "null"]},
        "created_at": {"type": ["string", "null"], "format": "date-time"},
        "birthday": {"type": ["string", "null"], "format": "date"},
        "meta": {"type": ["object", "null"]},
        "tags": {"type": ["array", "null"]},
        "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "balance": {"oneOf": [{"type": "null"}, {"type": "number"}]},
        "seen_on": {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
        "address": {
            "type": ["object", "null"],
            "properties": {"city": {"type": "string"}, "zip": {"type": ["integer", "null"]}},
            "required": ["city"],
        },
        "orders": {"type": "array", "items": {"type": "number", "multipleOf": 0.01}},
        "preferences": PREFERENCES,
        "_sdc_extracted_at": {"type": ["string", "null"], "format": "date-time"},
    },
    "required": ["plan code"],
}
NESTED = {"meta", "tags", "address", "orders", "preferences"}
KEY_PROPERTIES = ["user_id"]
# No object or array properties: rows are built in one step. "ratio" cannot be null.
FLAT_SCHEMA: dict[str, Any] = {
    **SCHEMA,
    "properties": {
        name: definition for name, definition in SCHEMA["properties"].items() if name not in NESTED
    },
}
# A closed schema: a property it does not declare makes the record invalid.
CLOSED_SCHEMA: dict[str, Any] = {**SCHEMA, "additionalProperties": False}

json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    st.sampled_from(
        [
            "",
            "u1",
            "a:b",
            " x@example.com ",
            "2023-01-02T03:04:05+00:00",
            "2023-01-02T03:04:05Z",
            "2023-01-02 03:04:05",
            "2023-01-02",
            "not a date",
            "2023-13-40",
        ]
    ),
    st.text(max_size=4),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)
date_texts = st.sampled_from(
    ["2023-01-02T03:04:05+00:00", "2023-01-02T03:04:05Z", "2023-01-02 03:04", "2023-01-02"]
)
# Mostly valid records (values of the declared types), some with any value anywhere.
valid_fields = st.fixed_dictionaries(
    {"user_id": st.one_of(st.text(max_size=4), st.none()), "plan code": st.text(max_size=4)},
    optional={
        "email": st.one_of(st.none(), st.sampled_from(["a@b.co", " c:d@e.fr ", ""])),
        "firstName": st.text(max_size=3),
        "logins": st.integers(min_value=-(2**70), max_value=2**70),
        "score": st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False)),
        "ratio": st.one_of(st.integers(), st.decimals(allow_nan=False, allow_infinity=False)),
        "is_active": st.booleans(),
        "created_at": st.one_of(st.none(), date_texts),
        "birthday": st.one_of(st.none(), date_texts),
        "meta": st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
        "tags": st.lists(st.integers(), max_size=2),
        "nickname": st.one_of(st.none(), st.text(max_size=3)),
        "balance": st.one_of(st.none(), st.decimals(allow_nan=False, allow_infinity=False)),
        "seen_on": st.one_of(st.none(), date_texts),
        "address": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"city": st.text(max_size=3)},
                optional={"zip": st.one_of(st.none(), st.integers(), st.text(max_size=2))},
            ),
            st.fixed_dictionaries({"zip": st.integers()}),
        ),
        "orders": st.lists(
            st.one_of(
                st.decimals(min_value=-100, max_value=100, places=2),
                st.decimals(min_value=-1, max_value=1, places=3),
            ),
            max_size=3,
        ),
        "preferences": st.one_of(
            st.none(),
            st.fixed_dictionaries({"newsletter": st.one_of(st.booleans(), st.text(max_size=2))}),
        ),
        "_sdc_extracted_at": date_texts,
    },
)
any_fields = st.dictionaries(
    st.sampled_from([*SCHEMA["properties"], "undeclared", "context"]), json_values, max_size=2
)
records = st.builds(lambda valid, anything: {**valid, **anything}, valid_fields, any_fields)


def _encode(record: dict[str, Any]) -> str:
    """JSON text with Decimals written as JSON numbers (as a tap writes them)."""
    return encode_json(record).decode()


def general_path(
    text: str, schema: dict[str, Any], *, validate: bool
) -> tuple[str | None, dict[str, Any]] | None:
    """What the SDK steps plus routing give for a record; None when they refuse it."""
    record = sdk_decoder.decode(text)
    for name in list(record):
        if name.startswith("_sdc_"):
            del record[name]
    try:
        if validate:
            FastJSONSchemaValidator(schema).validate(record)
        DateParser(schema, DatetimeErrorTreatmentEnum.ERROR, logging.getLogger()).parse(record)
    except InvalidRecord:
        return None
    if any(key not in record for key in KEY_PROPERTIES):
        return None
    ck = contact_key(*map(record.get, USER_ID_PROPERTIES), record.get(EMAIL_PROPERTY))
    attributes = map_attributes(record, record.get("context"))
    if ck is not None:  # as routing sets it (a lane's row holds it already)
        attributes[CONTACT_KEY] = ck
    return ck, attributes


def lane_for(schema: dict[str, Any], *, validate: bool = True) -> Any:
    lane = compile_lane(
        schema,
        KEY_PROPERTIES,
        validate=validate,
        user_id_properties=USER_ID_PROPERTIES,
        email_property=EMAIL_PROPERTY,
    )
    assert lane is not None
    return lane


@settings(max_examples=400, deadline=None)
@given(record=records, validate=st.booleans(), shape=st.sampled_from(["flat", "nested", "closed"]))
def test_lane_agrees_with_the_general_path(
    record: dict[str, Any], *, validate: bool, shape: str
) -> None:
    schema = {"flat": FLAT_SCHEMA, "nested": SCHEMA, "closed": CLOSED_SCHEMA}[shape]
    if shape == "flat":
        record = {name: value for name, value in record.items() if name not in NESTED}
    text = _encode(record)
    expected = general_path(text, schema, validate=validate)
    got = lane_for(schema, validate=validate).map(text.encode())
    if got is not None:
        assert expected is not None, "the lane took a record the general path refuses"
        assert (got[0], dict(got[1])) == expected
        # The request body carries the same names and values (nulls left out alike).
        assert sdk_decoder.decode(encode_json(got[1])) == sdk_decoder.decode(
            encode_json(expected[1])
        )


def test_a_plain_valid_record_takes_the_lane() -> None:
    line = (
        '{"type":"RECORD","stream":"users","record":{"user_id":"u:1","email":"a@b.co",'
        '"firstName":"Ada","plan code":"pro","logins":3,"score":1.50,"ratio":2,'
        '"is_active":true,"created_at":"2023-01-02T03:04:05Z","birthday":"1990-05-06",'
        '"meta":{"x":1},"tags":null,"_sdc_extracted_at":"2023-01-02T03:04:05Z"}}'
    )
    envelope = decode_envelope(line)
    assert (envelope.type, envelope.stream) == ("RECORD", "users")
    mapped = lane_for(SCHEMA).map(envelope.record)
    assert mapped is not None
    ck, attributes = mapped
    assert ck == "u1"
    assert attributes["Plan Code"] == "pro"
    assert attributes["Score"] == decimal.Decimal("1.50")
    assert attributes["Created At"] == "2023-01-02T03:04:05+00:00"
    assert "Meta" not in attributes
    assert "Sdc Extracted At" not in attributes
    expected = general_path(json.dumps(json.loads(line)["record"]), SCHEMA, validate=True)
    assert dict(attributes) == expected[1]  # type: ignore[index]


OWN_CONTACT_KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": ["string", "null"]},
        "email": {"type": ["string", "null"]},
        "contact_key": {"type": ["string", "null"]},  # its column is the Contact Key's
        "plan": {"type": ["string", "null"]},
    },
}


@pytest.mark.parametrize(
    "record",
    [
        {"user_id": "u1", "contact_key": "own", "plan": "p"},
        {"user_id": None, "email": "a@b.co", "contact_key": "own"},
        {"user_id": None, "contact_key": "own"},  # no Contact Key: the record's own value stays
        {"user_id": "u2"},
        {"user_id": "", "contact_key": None, "plan": "p"},
    ],
)
def test_a_record_property_named_contact_key_gives_way_to_the_contact_key(
    record: dict[str, Any],
) -> None:
    text = json.dumps(record)
    mapped = lane_for(OWN_CONTACT_KEY_SCHEMA).map(text.encode())
    assert mapped is not None
    assert (mapped[0], dict(mapped[1])) == general_path(text, OWN_CONTACT_KEY_SCHEMA, validate=True)


@pytest.mark.parametrize(
    "record",
    [
        {"user_id": "u1", "plan code": "x", "ratio": 1},
        {"user_id": None, "email": " a:b@c.de ", "plan code": "", "score": None, "ratio": 1.5},
        {"user_id": "u2", "plan code": "y", "score": 1e3, "created_at": "2023-01-02 03:04"},
        {"user_id": "u3", "plan code": "z", "firstName": None, "_sdc_extracted_at": None},
    ],
)
def test_flat_records_with_nulls_and_gaps_take_the_lane(record: dict[str, Any]) -> None:
    text = json.dumps(record)
    mapped = lane_for(FLAT_SCHEMA).map(text.encode())
    assert mapped is not None
    ck, attributes = mapped
    assert isinstance(attributes, AttributeRow)  # built in one call
    expected = general_path(text, FLAT_SCHEMA, validate=True)
    assert (ck, dict(attributes)) == expected
    assert encode_json(attributes) == encode_json(expected[1])  # type: ignore[index] # same order


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ({"user_id": "u1", "plan code": "x", "undeclared": 1}, "an undeclared property"),
        ({"user_id": "u1", "plan code": 5}, "a value of another type"),
        ({"user_id": "u1"}, "a missing required property"),
        ({"plan code": "x"}, "a missing key property"),
        ({"user_id": "u1", "plan code": "x", "created_at": "soon"}, "a date that does not parse"),
        ({"user_id": "u1", "plan code": "x", "ratio": True}, "a boolean for a number"),
    ],
)
def test_the_lane_declines(record: dict[str, Any], why: str) -> None:
    assert lane_for(SCHEMA).map(json.dumps(record).encode()) is None, why


CONTAINERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "plan": {"type": ["string", "null"]},
        "meta": {"type": ["object", "null"]},
        "tags": {"type": "array"},
        "extra": {"anyOf": [{"type": "object"}, {"type": "array"}]},
    },
}


PREFERENCES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "user_id": {"type": "string"},
        "plan": {"type": ["string", "null"]},
        "preferences": PREFERENCES,
        "scores": {"oneOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
    },
}
CONTAINERS, UNIONS = "containers", "unions"
NESTED_SCHEMAS = {CONTAINERS: CONTAINERS_SCHEMA, UNIONS: PREFERENCES_SCHEMA}


@pytest.mark.parametrize(
    ("schema", "record", "taken"),
    [
        # Plain object and array properties.
        (
            CONTAINERS,
            {"user_id": "u", "plan": "p", "meta": {"a": [1]}, "tags": [], "extra": {}},
            True,
        ),
        (CONTAINERS, {"user_id": "u", "meta": None, "tags": [{"x": 1}], "extra": []}, True),
        (CONTAINERS, {"user_id": "u", "meta": "text"}, False),
        (CONTAINERS, {"user_id": "u", "tags": None}, False),
        (CONTAINERS, {"user_id": "u", "extra": None}, False),
        (CONTAINERS, {"user_id": "u", "meta": 1}, False),
        # A union of a nested schema and null (anyOf, oneOf).
        (UNIONS, {"user_id": "u", "preferences": {"newsletter": True}, "scores": [1]}, True),
        (UNIONS, {"user_id": "u", "preferences": None, "scores": None}, True),
        (UNIONS, {"user_id": "u", "preferences": {"newsletter": "yes"}}, False),
        (UNIONS, {"user_id": "u", "preferences": {}}, False),
        (UNIONS, {"user_id": "u", "preferences": []}, False),
        (UNIONS, {"user_id": "u", "scores": [1.5]}, False),
    ],
)
def test_object_and_array_properties_keep_rows_built_in_one_call(
    schema: str, record: dict[str, Any], *, taken: bool
) -> None:
    text = json.dumps(record)
    mapped = lane_for(NESTED_SCHEMAS[schema]).map(text.encode())
    assert (mapped is not None) is taken
    expected = general_path(text, NESTED_SCHEMAS[schema], validate=True)
    if mapped is not None:
        assert isinstance(mapped[1], AttributeRow)
        assert (mapped[0], dict(mapped[1])) == expected
    elif schema == UNIONS:
        assert expected is None  # every record declined here is invalid


def test_a_required_object_property_keeps_its_lane() -> None:
    schema = {**CONTAINERS_SCHEMA, "required": ["meta"]}
    text = json.dumps({"user_id": "u", "meta": {"a": 1}})
    mapped = lane_for(schema).map(text.encode())
    assert mapped is not None
    assert (mapped[0], dict(mapped[1])) == general_path(text, schema, validate=True)
    assert lane_for(schema).map(b'{"user_id": "u"}') is None  # the general path refuses it


plain_type_names = st.sampled_from(["string", "integer", "number", "boolean", "null"])
type_lists = st.one_of(plain_type_names, st.lists(plain_type_names, min_size=1, max_size=3))
nested_schemas = st.recursive(
    st.builds(lambda kinds: {"type": kinds}, type_lists),
    lambda inner: st.one_of(
        st.builds(
            lambda properties, required, closed, nullable: {
                "type": ["object", "null"] if nullable else "object",
                "properties": properties,
                "required": [name for name in properties if name in required],
                **({"additionalProperties": False} if closed else {}),
            },
            st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
            st.sets(st.sampled_from(["a", "b"])),
            st.booleans(),
            st.booleans(),
        ),
        st.builds(lambda items: {"type": "array", "items": items}, inner),
        st.builds(lambda kinds: {"type": kinds, "minimum": 0}, type_lists),
        st.builds(
            lambda keyword, branches: {keyword: branches},
            st.sampled_from(["anyOf", "oneOf"]),
            st.lists(inner, min_size=1, max_size=3),
        ),
    ),
    max_leaves=6,
)
nested_values = st.recursive(
    json_values,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=1000, deadline=None)
@given(definition=nested_schemas, value=nested_values)
def test_a_nested_value_the_decode_takes_is_valid(definition: dict[str, Any], value: Any) -> None:
    from target_sfmc.fastpath.lanes import exact_type  # noqa: PLC0415
    from target_sfmc.validation import compile_validator  # noqa: PLC0415

    exact = exact_type(definition)
    if exact is None:
        return
    text = encode_json(value)
    try:
        msgspec.json.Decoder(exact, float_hook=decimal.Decimal).decode(text)
    except msgspec.ValidationError:
        return
    compile_validator(definition)(sdk_decoder.decode(text))  # the schema takes it too


USER_ID = {"user_id": {"type": "string"}}


@pytest.mark.parametrize(
    ("properties", "why"),
    [
        ({**USER_ID, "a": {"type": "string", "maxLength": 3}}, "a keyword beyond types"),
        ({**USER_ID, "o": {"$ref": "#/definitions/o"}}, "a reference"),
        (
            {**USER_ID, "o": {"type": "object", "properties": {"p": {"$ref": "#/x"}}}},
            "a nested schema with a reference",
        ),
        (
            {**USER_ID, "n": {"oneOf": [{"type": "integer"}, {"type": "number"}]}},
            "overlapping oneOf",
        ),
        ({**USER_ID, "context": {"type": "object"}}, "a context object"),
        (
            {**USER_ID, "first_name": {"type": "string"}, "firstName": {"type": "string"}},
            "colliding Title Case names",
        ),
        ({"a": {"type": "string"}}, "a key property the schema lacks"),
    ],
)
def test_schemas_without_a_lane(properties: dict[str, Any], why: str) -> None:
    schema = {"type": "object", "properties": properties}
    assert lane_for_or_none(schema) is None, why
    assert lane_for_or_none({"type": "object", "properties": USER_ID}) is not None


def lane_for_or_none(schema: dict[str, Any]) -> Any:
    return compile_lane(
        schema,
        KEY_PROPERTIES,
        validate=True,
        user_id_properties=USER_ID_PROPERTIES,
        email_property=EMAIL_PROPERTY,
    )


# -- Segment-format streams ------------------------------------------------------------------

SEGMENT_SETTINGS = {
    "client_id": "x",
    "client_secret": "y",
    "subdomain": "mc563885gzs27c5t9-63k636ttgm",
    "identify_data_extension_key": "IDENTIFY",
    "conversion_events": [
        {
            "event": "Order Completed",
            "data_extension_key": "ORDERS",
            "primary_keys": "Contact Key,Order Id",
        },
        {"event": "Signed Up", "data_extension_key": "SIGNUPS", "uuid_primary_key": True},
    ],
    "api_events": [
        {"event": "order completed", "event_definition_key": "APIEvent-order"},
        {"event": "Viewed", "event_definition_key": "APIEvent-viewed"},
    ],
    "streams": {"events": {"type": "segment"}},
}
SEGMENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "messageId": {"type": ["string", "null"]},
        "type": {"type": "string"},
        "userId": {"type": ["string", "integer", "null"]},
        "anonymousId": {"type": ["string", "null"]},
        "event": {"type": ["string", "null"]},
        "traits": {"type": ["object", "null"]},
        "properties": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "context": {"type": ["object", "null"]},
        "timestamp": {"type": ["string", "null"], "format": "date-time"},
        "sentAt": {"type": "string", "format": "date"},
        "version": {"type": ["number", "null"]},
        "_sdc_extracted_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
# Keywords beyond types (an enum, nested schemas with dates), as Segment export taps write.
RICH_SEGMENT_SCHEMA: dict[str, Any] = {
    **SEGMENT_SCHEMA,
    "properties": {
        **SEGMENT_SCHEMA["properties"],
        "type": {"type": "string", "enum": ["identify", "track", "page", "Identify"]},
        "traits": {
            "type": ["object", "null"],
            "properties": {
                "created_at": {"type": ["string", "null"], "format": "date-time"},
                "logins": {"type": ["integer", "null"], "minimum": 0},
            },
        },
        "integrations": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "page": {
            "type": ["object", "null"],
            "properties": {"url": {"type": "string"}, "hits": {"type": ["integer", "null"]}},
            "required": ["url"],
        },
    },
    "required": ["type"],
}
CLOSED_SEGMENT_SCHEMA: dict[str, Any] = {**SEGMENT_SCHEMA, "additionalProperties": False}
SEGMENT_SCHEMAS = {
    "plain": SEGMENT_SCHEMA,
    "rich": RICH_SEGMENT_SCHEMA,
    "closed": CLOSED_SEGMENT_SCHEMA,
}

attribute_names = st.sampled_from(
    ["email", "firstName", "first_name", "plan", "order_id", "created_at", "logins", "locale", "_"]
)
attribute_values = st.one_of(json_values, date_texts)
bodies = st.one_of(
    st.dictionaries(attribute_names, attribute_values, max_size=5),
    json_values,
)
context_nodes = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "name": attribute_values,
            "version": attribute_values,
            "source": attribute_values,
            "model": attribute_values,
            "email": attribute_values,
            "wifi": attribute_values,
        },
    ),
    json_values,
)
context_objects = st.fixed_dictionaries(
    {},
    optional={
        "app": context_nodes,
        "campaign": context_nodes,
        "device": context_nodes,
        "network": context_nodes,
        "traits": context_nodes,
        "locale": attribute_values,
        "ip": attribute_values,
        "page": context_nodes,
    },
)
contexts = st.one_of(context_objects, json_values)
# Mostly valid messages (values of the declared types), some with any value anywhere.
valid_segment_fields = st.fixed_dictionaries(
    {
        "messageId": st.one_of(st.none(), st.sampled_from(["m-1", " ", "m:2"])),
        "type": st.sampled_from(["identify", "track", "Identify", "page"]),
    },
    optional={
        "userId": st.one_of(st.none(), st.sampled_from(["u1", "", "a:b"]), st.integers()),
        "user_id": st.one_of(st.none(), st.sampled_from(["u2", "  "])),
        "message_id": st.sampled_from(["m-3", None]),
        "anonymousId": st.one_of(st.none(), st.text(max_size=2)),
        "event": st.sampled_from(
            ["Order Completed", " order completed ", "Signed Up", "Viewed", "Unknown", None]
        ),
        "traits": st.one_of(st.none(), st.dictionaries(attribute_names, attribute_values)),
        "properties": st.one_of(st.none(), st.dictionaries(attribute_names, attribute_values)),
        "context": st.one_of(st.none(), context_objects),
        "timestamp": st.one_of(st.none(), date_texts),
        "sentAt": st.sampled_from(["2023-01-02", "2023-01-02", "2023-13-01"]),
        "version": st.one_of(
            st.none(), st.integers(), st.decimals(allow_nan=False, allow_infinity=False, places=2)
        ),
        "integrations": st.dictionaries(st.text(max_size=2), st.booleans(), max_size=2),
        "page": st.one_of(
            st.none(),
            st.fixed_dictionaries({"url": st.text(max_size=2)}, optional={"hits": json_values}),
        ),
        "preferences": st.one_of(
            st.none(),
            st.fixed_dictionaries({"newsletter": st.one_of(st.booleans(), st.text(max_size=2))}),
        ),
        "_sdc_extracted_at": date_texts,
    },
)
any_segment_fields = st.dictionaries(
    st.sampled_from([*RICH_SEGMENT_SCHEMA["properties"], "user_id", "message_id", "undeclared"]),
    st.one_of(json_values, bodies, contexts),
    max_size=1,
)
segment_messages = st.builds(
    lambda valid, anything: {**valid, **anything}, valid_segment_fields, any_segment_fields
)


def segment_router_for() -> Any:
    from target_sfmc.routing import SegmentRouter  # noqa: PLC0415
    from target_sfmc.settings import parse_settings  # noqa: PLC0415

    parsed, problems = parse_settings(SEGMENT_SETTINGS)
    assert not problems
    return SegmentRouter(parsed)


def general_segment_path(
    text: str, schema: dict[str, Any], *, validate: bool, router: Any = None
) -> Any:
    """What the SDK steps plus Segment routing give for a message; None when they refuse it."""
    from target_sfmc.fastpath.lanes import SDK_METADATA  # noqa: PLC0415
    from target_sfmc.mapping import MappingError  # noqa: PLC0415

    record = sdk_decoder.decode(text)
    for name in SDK_METADATA & set(record):
        del record[name]
    try:
        if validate:
            FastJSONSchemaValidator(schema).validate(record)
        DateParser(schema, DatetimeErrorTreatmentEnum.ERROR, logging.getLogger()).parse(record)
    except InvalidRecord:
        return None
    if "messageId" not in record:
        return None
    try:
        return (router or segment_router_for())(record)
    except MappingError:
        return None


def segment_lane_for(schema: dict[str, Any], *, validate: bool) -> Any:
    from target_sfmc.fastpath.segment_lane import compile_segment_lane  # noqa: PLC0415

    lane = compile_segment_lane(
        schema, ["messageId"], validate=validate, route=segment_router_for().route_fields
    )
    assert lane is not None
    return lane


def outcome_bodies(outcomes: list[Any]) -> list[bytes]:
    """Each outcome as the JSON its request or dead letter carries (names in order)."""
    carried = ("values", "data", "row")
    return [
        encode_json([getattr(o, name) for name in carried if hasattr(o, name)]) for o in outcomes
    ]


@settings(max_examples=500, deadline=None)
@given(
    message=segment_messages,
    validate=st.booleans(),
    shape=st.sampled_from(sorted(SEGMENT_SCHEMAS)),
)
def test_segment_lane_agrees_with_the_general_path(
    message: dict[str, Any], *, validate: bool, shape: str
) -> None:
    schema = SEGMENT_SCHEMAS[shape]
    text = _encode(message)
    expected = general_segment_path(text, schema, validate=validate)
    got = segment_lane_for(schema, validate=validate).map(text.encode())
    if got is not None:
        assert expected is not None, "the lane took a message the general path refuses"
        assert got == expected
        assert outcome_bodies(got) == outcome_bodies(expected)  # same names, same order


SEGMENT_LINES = [
    {
        "messageId": "m-1",
        "type": "identify",
        "userId": "u:1",
        "traits": {"email": "a@b.co", "firstName": "Ada", "logins": 3, "score": 1.5},
        "context": {"campaign": {"name": "spring"}, "locale": "en-US", "app": {"name": "Shop"}},
        "timestamp": "2024-03-01T10:00:00Z",
    },
    {
        "messageId": "m-2",
        "type": "track",
        "event": " order completed ",
        "properties": {"order_id": "o-1", "total": 9.95, "email": "c@d.fr"},
        "context": {"device": {"model": "Pixel 8"}, "traits": {"email": "e@f.de"}},
    },
    {"messageId": "m-3", "type": "track", "event": "Signed Up", "userId": "u2"},
]


@pytest.mark.parametrize("message", SEGMENT_LINES)
def test_segment_messages_take_the_lane(message: dict[str, Any]) -> None:
    text = json.dumps(message)
    got = segment_lane_for(SEGMENT_SCHEMA, validate=True).map(text.encode())
    assert got is not None
    assert got == general_segment_path(text, SEGMENT_SCHEMA, validate=True)


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ({"messageId": "m", "type": "page", "userId": "u"}, "a skipped type (the whole message)"),
        ({"messageId": "m", "type": "track", "event": "Nope"}, "an unmapped event"),
        ({"messageId": None, "type": "track", "event": "Signed Up"}, "a Uuid key made of it"),
        ({"messageId": "m", "type": "identify", "timestamp": "soon"}, "a date that does not parse"),
        ({"messageId": "m", "type": 5}, "a value of another type"),
        ({"type": "identify"}, "a missing key property"),
    ],
)
def test_the_segment_lane_declines(message: dict[str, Any], why: str) -> None:
    assert (
        segment_lane_for(SEGMENT_SCHEMA, validate=True).map(json.dumps(message).encode()) is None
    ), why


@pytest.mark.parametrize(
    ("properties", "why"),
    [
        (
            {"messageId": {"type": "string"}, "event": {"type": "string", "format": "date"}},
            "a date routed",
        ),
        (
            {"messageId": {"type": "string"}, "traits": {"$ref": "#/properties/messageId"}},
            "a reference",
        ),
        ({"id": {"type": "string"}}, "a key property the schema lacks"),
    ],
)
def test_segment_schemas_without_a_lane(properties: dict[str, Any], why: str) -> None:
    from target_sfmc.fastpath.segment_lane import compile_segment_lane  # noqa: PLC0415

    lane = compile_segment_lane(
        {"type": "object", "properties": properties},
        ["messageId"],
        validate=True,
        route=segment_router_for().route_fields,
    )
    assert lane is None, why


# -- Segment rows built past their gate ------------------------------------------------------

ROWS_SETTINGS = {
    **SEGMENT_SETTINGS,
    "conversion_events": [SEGMENT_SETTINGS["conversion_events"][0]],
    "api_events": [SEGMENT_SETTINGS["api_events"][1]],
}
# Checked and unchecked columns of every kind; the other attributes are ignored.
ROW_COLUMNS = {
    "IDENTIFY": [
        ("Contact Key", "Text", 254),
        ("Email", "EmailAddress", 12),
        ("First Name", "Text", 3),
        ("Plan", "Text", None),
        ("Logins", "Number", None),
        ("Created At", "Date", None),
        ("Locale", "Locale", 5),
        ("App Name", "Text", 4),
        ("Wifi Enabled", "Boolean", None),
        ("Order Id", "Decimal", 5),
    ],
    "ORDERS": [
        ("Contact Key", "Text", 254),
        ("Order Id", "Text", 4),
        ("Plan", "Decimal", 6),
        ("UTM Campaign", "Text", 3),
    ],
}


class _IgnoredNames:
    def ignore_attribute(self, stream: str, name: str, why: str) -> None:
        pass


def row_gates() -> Any:
    from target_sfmc.column_gate import ColumnGate, StreamGates  # noqa: PLC0415
    from target_sfmc.data_extensions import DataExtension  # noqa: PLC0415
    from target_sfmc.de_columns import Column  # noqa: PLC0415
    from target_sfmc.de_tables import TableSpec  # noqa: PLC0415

    gates = StreamGates()
    for key, definitions in ROW_COLUMNS.items():
        columns = [
            Column(name, kind, length, 2 if kind == "Decimal" else None, name == "Contact Key")
            for name, kind, length in definitions
        ]
        de = DataExtension(key, f"id-{key}", key, {c.name.casefold(): c for c in columns})
        spec = TableSpec(key, key)
        spec.add(columns[0])
        gates.rows[key] = ColumnGate(None, de, spec, "events", _IgnoredNames(), can_add=False)
    return gates


def routed_values(text: str) -> tuple[Any, ...] | None:
    lane = segment_lane_for(SEGMENT_SCHEMA, validate=True)
    try:
        return lane.routed_of(lane.decode(text.encode()))
    except msgspec.DecodeError:
        return None


def general_rows(text: str, router: Any, gates: Any) -> list[Any] | None:
    """The general path's outcomes of a message, past their gates; None when it refuses it."""
    outcomes = general_segment_path(text, SEGMENT_SCHEMA, validate=True, router=router)
    return None if outcomes is None else [gates.admit(outcome) for outcome in outcomes]


@settings(max_examples=150, deadline=None)
@given(messages=st.lists(segment_messages, min_size=1, max_size=6))
def test_segment_rows_built_past_the_gate_equal_the_general_path(
    messages: list[dict[str, Any]],
) -> None:
    from target_sfmc.fastpath.segment_rows import SegmentRows  # noqa: PLC0415
    from target_sfmc.routing import SegmentRouter  # noqa: PLC0415
    from target_sfmc.settings import parse_settings  # noqa: PLC0415

    router = SegmentRouter(parse_settings(ROWS_SETTINGS)[0])
    gates = row_gates()
    rows = SegmentRows(router, gates)
    for message in [message for message in messages for _twice in range(2)]:
        text = _encode(message)
        values = routed_values(text)
        # The same gate, before the general path teaches it the message's names.
        built = None if values is None else rows.row(values)
        expected = general_rows(text, router, gates)
        if built is None:
            continue
        assert expected is not None, "a row built for a message the general path refuses"
        assert len(expected) == 1
        (row,) = expected
        assert type(row).__name__ == "DataExtensionRow"
        assert (built.data_extension_key, built.keys, built.contact_key) == (
            row.data_extension_key,
            row.keys,
            row.contact_key,
        )
        assert built.known_primary_key == row.primary_key
        assert encode_json(built.values) == encode_json(row.values)  # same names, same order


def test_common_segment_rows_are_built_once_the_gate_knows_their_names() -> None:
    from target_sfmc.fastpath.segment_rows import SegmentRows  # noqa: PLC0415
    from target_sfmc.routing import SegmentRouter  # noqa: PLC0415
    from target_sfmc.settings import parse_settings  # noqa: PLC0415

    router = SegmentRouter(parse_settings(ROWS_SETTINGS)[0])
    gates = row_gates()
    rows = SegmentRows(router, gates)
    message = {
        "messageId": "m-1",
        "type": "track",
        "userId": "u1",
        "event": "Order Completed",
        "properties": {"order_id": "o-1", "plan": 12.5, "coupon": None, "items": [1]},
        "context": {"campaign": {"name": "abc", "source": "x"}, "library": {"name": "js"}},
    }
    text = json.dumps(message)
    values = routed_values(text)
    assert values is not None
    assert rows.row(values) is None  # the gate has not seen "UTM Source" yet
    general_rows(text, router, gates)
    built = rows.row(routed_values(text))
    assert built is not None
    assert built.keys == {"Contact Key": "u1", "Order Id": "o-1"}
    assert encode_json(built.values) == (
        b'{"UTM Campaign":"abc","Order Id":"o-1","Plan":12.5,"Contact Key":"u1"}'
    )
    # A value that does not surely fit its column takes the slower way, which words it.
    too_long = json.dumps({**message, "properties": {"order_id": "o-12345", "plan": 1}})
    assert rows.row(routed_values(too_long)) is None


def test_segment_rows_share_repeated_text_until_a_column_has_too_many_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from target_sfmc.fastpath import rows as shared_rows  # noqa: PLC0415
    from target_sfmc.fastpath import segment_rows  # noqa: PLC0415
    from target_sfmc.routing import SegmentRouter  # noqa: PLC0415
    from target_sfmc.settings import parse_settings  # noqa: PLC0415

    monkeypatch.setattr(shared_rows, "MAX_SHARED_VALUES", 3)
    monkeypatch.setattr(shared_rows, "SHARE_CHECK_ROWS", 4)
    router = SegmentRouter(parse_settings(ROWS_SETTINGS)[0])
    gates = row_gates()
    rows = segment_rows.SegmentRows(router, gates)

    def order(order_id: str) -> str:
        return json.dumps(
            {
                "messageId": f"m-{order_id}",
                "type": "track",
                "userId": "u1",
                "event": "Order Completed",
                "properties": {"order_id": order_id},
                "context": {"campaign": {"name": "abc"}},
            }
        )

    general_rows(order("o-0"), router, gates)  # the gate learns the names
    built = [rows.row(routed_values(order(f"o-{index}"))) for index in range(1, 9)]
    assert all(row is not None for row in built)
    campaigns = {id(row.values["UTM Campaign"]) for row in built if row is not None}
    assert len(campaigns) == 1  # one object for the value every row repeats
    # More distinct order ids than a column shares: later rows hold their own objects.
    first, second = (rows.row(routed_values(order("o-1"))) for _twice in range(2))
    assert first is not None and second is not None
    assert first.values["Order Id"] == second.values["Order Id"] == "o-1"
    assert first.values["Order Id"] is not second.values["Order Id"]
    assert first.values["UTM Campaign"] is second.values["UTM Campaign"]
    expected = b'{"UTM Campaign":"abc","Order Id":"o-1","Contact Key":"u1"}'
    assert encode_json(first.values) == expected
