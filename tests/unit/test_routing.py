"""Routing of flat and Segment records to SFMC destinations."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from target_sfmc.mapping import record_uuid
from target_sfmc.records import DataExtensionRow, JourneyEvent, MappingRefusal, Skipped
from target_sfmc.routing import flat_router, segment_router
from target_sfmc.settings import TargetSettings, parse_settings

SUBDOMAIN = "mc563885gzs27c5t9-63k636ttgm"


def make_settings(**overrides: Any) -> TargetSettings:
    config: dict[str, Any] = {
        "client_id": "id",
        "client_secret": "secret",
        "subdomain": SUBDOMAIN,
        "identify_data_extension_key": "IDENTIFY",
        "streams": {},
    }
    config.update(overrides)
    settings, errors = parse_settings(config)
    assert errors == []
    return settings


def flat(stream_config: dict[str, Any], key_properties: list[str] | None = None, **overrides: Any):
    settings = make_settings(streams={"s": stream_config}, **overrides)
    return flat_router(settings.streams["s"], settings, key_properties or [])


def only(outcomes: list[Any]) -> Any:
    assert len(outcomes) == 1, outcomes
    return outcomes[0]


# --- identify ---------------------------------------------------------------------------------


def test_identify_row() -> None:
    route = flat({"type": "identify"})
    row = only(route({"userId": "u:1", "email": "a@example.com", "firstName": "Ann", "x": None}))
    assert isinstance(row, DataExtensionRow)
    assert row.data_extension_key == "IDENTIFY"
    assert row.keys == {"Contact Key": "u1"}
    assert row.values == {
        "Contact Key": "u1",
        "User Id": "u:1",
        "Email": "a@example.com",
        "First Name": "Ann",
    }
    assert row.contact_key == "u1"
    assert row.primary_key == ("u1",)


def test_identify_row_uses_stream_de_key_over_identify_key() -> None:
    route = flat({"type": "identify", "data_extension_key": "OTHER"})
    assert only(route({"email": "a@example.com"})).data_extension_key == "OTHER"


def test_identify_email_fallback_and_user_id_alias() -> None:
    route = flat({"type": "identify"})
    assert only(route({"email": " a@example.com "})).keys == {"Contact Key": "a@example.com"}
    assert only(route({"user_id": 42})).keys == {"Contact Key": "42"}


def test_identify_custom_identity_properties() -> None:
    route = flat({"type": "identify", "user_id_property": "uid", "email_property": "mail"})
    assert only(route({"uid": "x", "userId": "ignored"})).keys == {"Contact Key": "x"}
    assert only(route({"mail": "m@example.com", "email": "ignored"})).keys == {
        "Contact Key": "m@example.com"
    }


@pytest.mark.parametrize(
    "overrides",
    [{"use_async_api": True}, {"do_not_create_or_update_contacts": True}],
    ids=["async", "no-contacts"],
)
def test_identify_contact_creation_off(overrides: dict[str, Any]) -> None:
    route = flat({"type": "identify"}, **overrides)
    row = only(route({"userId": "u1"}))
    assert isinstance(row, DataExtensionRow)
    assert row.contact_key is None


@pytest.mark.parametrize(
    "record",
    [{}, {"name": "Ann"}, {"userId": "", "email": ""}, {"userId": None, "email": "  "}],
    ids=["empty", "no-ids", "blank", "whitespace"],
)
def test_identify_missing_identifier_is_skipped(record: dict[str, Any]) -> None:
    outcome = only(flat({"type": "identify"})(record))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "missing_identifier"


def test_identify_context_is_mapped_and_loses_clashes() -> None:
    route = flat({"type": "identify"})
    row = only(
        route({"userId": "u1", "locale": "en", "context": {"locale": "fr", "ip": "1.2.3.4"}})
    )
    assert row.values["Locale"] == "en"
    assert row.values["IP Address"] == "1.2.3.4"
    assert "Context" not in row.values


# --- track ------------------------------------------------------------------------------------


def test_track_default_primary_keys_from_key_properties() -> None:
    route = flat({"type": "track", "data_extension_key": "ORDERS"}, ["order_id"])
    row = only(route({"order_id": 7, "userId": "u1", "total": 3}))
    assert isinstance(row, DataExtensionRow)
    assert row.data_extension_key == "ORDERS"
    assert row.keys == {"Order Id": 7}
    assert row.values == {"Order Id": 7, "User Id": "u1", "Total": 3, "Contact Key": "u1"}
    assert row.contact_key is None


def test_track_default_primary_key_is_contact_key_without_key_properties() -> None:
    route = flat({"type": "track", "data_extension_key": "ORDERS"})
    row = only(route({"email": "a@example.com", "total": 3}))
    assert row.keys == {"Contact Key": "a@example.com"}


def test_track_multiple_primary_keys_from_config() -> None:
    route = flat(
        {
            "type": "track",
            "data_extension_key": "ORDERS",
            "primary_keys": "Contact Key, product_id",
        },
        ["ignored"],
    )
    row = only(route({"userId": "u1", "productId": "p9"}))
    assert row.keys == {"Contact Key": "u1", "Product Id": "p9"}
    assert row.primary_key == ("u1", "p9")


def test_track_without_identifier_is_kept_when_contact_key_is_not_a_key() -> None:
    route = flat({"type": "track", "data_extension_key": "ORDERS"}, ["order_id"])
    row = only(route({"order_id": 1}))
    assert isinstance(row, DataExtensionRow)
    assert row.values == {"Order Id": 1}


def test_track_without_identifier_and_contact_key_primary_key_is_skipped() -> None:
    route = flat({"type": "track", "data_extension_key": "ORDERS"})
    outcome = only(route({"total": 1}))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "missing_identifier"


@pytest.mark.parametrize(
    "record",
    [{"userId": "u1"}, {"userId": "u1", "order_id": None}, {"userId": "u1", "order_id": ""}],
    ids=["absent", "null", "blank"],
)
def test_track_missing_primary_key_value_is_rejected(record: dict[str, Any]) -> None:
    route = flat({"type": "track", "data_extension_key": "ORDERS"}, ["order_id"])
    outcome = only(route(record))
    assert isinstance(outcome, MappingRefusal)
    assert "Order Id" in outcome.message
    assert outcome.destination == "ORDERS"


def test_track_uuid_primary_key_with_message_id() -> None:
    route = flat(
        {
            "type": "track",
            "data_extension_key": "EVENTS",
            "uuid_primary_key": True,
            "primary_keys": "Contact Key",
        },
    )
    row = only(route({"messageId": "msg-1", "userId": "u1", "x": 1}))
    assert row.keys == {"Uuid": "msg-1"}
    assert row.values["Uuid"] == "msg-1"
    assert row.values["Contact Key"] == "u1"
    alias = only(route({"message_id": "msg-2"}))
    assert alias.keys == {"Uuid": "msg-2"}


def test_track_uuid_primary_key_without_message_id_is_deterministic() -> None:
    route = flat({"type": "track", "data_extension_key": "EVENTS", "uuid_primary_key": True})
    record = {"userId": "u1", "event": "Clicked", "n": 1}
    first = only(route(record))
    again = only(route(dict(reversed(list(record.items())))))
    other = only(route({**record, "n": 2}))
    assert first.keys == again.keys
    assert first.keys == {"Uuid": record_uuid(record)}
    assert uuid.UUID(first.keys["Uuid"]).version == 5
    assert other.keys != first.keys


def test_track_custom_message_id_property() -> None:
    route = flat(
        {
            "type": "track",
            "data_extension_key": "E",
            "uuid_primary_key": True,
            "message_id_property": "event_id",
        }
    )
    assert only(route({"event_id": "e-1", "messageId": "m"})).keys == {"Uuid": "e-1"}


# --- audience ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("member", "expected"),
    [(True, True), (False, False), ("true", True), ("FALSE", False), (" True ", True)],
    ids=["true", "false", "str-true", "str-false", "str-padded"],
)
def test_audience_rows(member: Any, expected: bool) -> None:  # noqa: FBT001
    route = flat({"type": "audience"})
    row = only(route({"userId": "u1", "audience": "high_value_users", "in_audience": member}))
    assert isinstance(row, DataExtensionRow)
    assert row.data_extension_key == "IDENTIFY"
    assert row.keys == {"Contact Key": "u1"}
    assert row.values == {"Contact Key": "u1", "High Value Users": expected}
    assert row.values["High Value Users"] is expected


@pytest.mark.parametrize(
    "member", [1, 0, "yes", None, "", [True]], ids=["one", "zero", "yes", "none", "blank", "list"]
)
def test_audience_non_boolean_is_rejected(member: Any) -> None:
    route = flat({"type": "audience"})
    outcome = only(route({"userId": "u1", "audience": "vip", "in_audience": member}))
    assert isinstance(outcome, MappingRefusal)
    assert "in_audience" in outcome.message


def test_audience_without_name_is_rejected() -> None:
    route = flat({"type": "audience"})
    outcome = only(route({"userId": "u1", "in_audience": True}))
    assert isinstance(outcome, MappingRefusal)


def test_audience_custom_properties_and_missing_identifier() -> None:
    route = flat({"type": "audience", "audience_property": "seg", "member_property": "member"})
    row = only(route({"email": "a@example.com", "seg": "Churn Risk", "member": False}))
    assert row.values == {"Contact Key": "a@example.com", "Churn Risk": False}
    skipped = only(route({"seg": "Churn Risk", "member": False}))
    assert isinstance(skipped, Skipped)
    assert skipped.reason == "missing_identifier"


# --- api_event --------------------------------------------------------------------------------


def test_api_event_row_is_a_journey_event() -> None:
    route = flat({"type": "api_event", "event_definition_key": "APIEvent-1"})
    event = only(route({"userId": "u1", "planName": "Pro", "nested": {"a": 1}}))
    assert isinstance(event, JourneyEvent)
    assert event.event_definition_key == "APIEvent-1"
    assert event.contact_key == "u1"
    assert event.data == {"User Id": "u1", "Plan Name": "Pro"}


def test_api_event_without_identifier_is_skipped() -> None:
    route = flat({"type": "api_event", "event_definition_key": "APIEvent-1"})
    outcome = only(route({"planName": "Pro"}))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "missing_identifier"


# --- Segment ----------------------------------------------------------------------------------

SEGMENT_CONFIG: dict[str, Any] = {
    "conversion_events": [
        {"event": "Order Completed", "data_extension_key": "ORDERS"},
        {"event": "Product Viewed", "data_extension_key": "VIEWS", "primary_keys": "product_id"},
        {"event": "Clicked", "data_extension_key": "CLICKS", "uuid_primary_key": True},
    ],
    "api_events": [
        {"event": "order completed", "event_definition_key": "APIEvent-order"},
        {"event": "Signed Up", "event_definition_key": "APIEvent-signup"},
    ],
}


def segment(**overrides: Any):
    config = {**SEGMENT_CONFIG, **overrides}
    return segment_router(make_settings(**config))


def test_segment_identify() -> None:
    route = segment()
    row = only(
        route(
            {
                "type": "identify",
                "userId": "u1",
                "traits": {"firstName": "Ann", "email": "a@example.com"},
                "context": {"locale": "fr-FR"},
                "messageId": "m1",
            }
        )
    )
    assert isinstance(row, DataExtensionRow)
    assert row.data_extension_key == "IDENTIFY"
    assert row.keys == {"Contact Key": "u1"}
    assert row.values == {
        "Contact Key": "u1",
        "First Name": "Ann",
        "Email": "a@example.com",
        "Locale": "fr-FR",
    }
    assert row.contact_key == "u1"


def test_segment_identify_contact_creation_off_with_async() -> None:
    route = segment(use_async_api=True, api_events=[])
    row = only(route({"type": "identify", "userId": "u1", "traits": {}}))
    assert row.contact_key is None


def test_segment_identify_without_identify_de_is_unmapped() -> None:
    route = segment(identify_data_extension_key=None)
    outcome = only(route({"type": "identify", "userId": "u1", "traits": {"a": 1}}))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "unmapped_event"


def test_segment_identify_without_identifier_is_skipped() -> None:
    outcome = only(segment()({"type": "identify", "anonymousId": "anon", "traits": {"a": 1}}))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "missing_identifier"


def test_segment_track_conversion_event() -> None:
    route = segment()
    row = only(
        route(
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": "u1",
                "properties": {"product_id": "p1", "price": 3},
            }
        )
    )
    assert isinstance(row, DataExtensionRow)
    assert row.data_extension_key == "VIEWS"
    assert row.keys == {"Product Id": "p1"}
    assert row.values == {"Product Id": "p1", "Price": 3, "Contact Key": "u1"}


def test_segment_conversion_default_primary_key_is_contact_key() -> None:
    route = segment()
    outcomes = route({"type": "track", "event": "ORDER COMPLETED", "userId": "u1"})
    rows = [o for o in outcomes if isinstance(o, DataExtensionRow)]
    assert len(rows) == 1
    assert rows[0].keys == {"Contact Key": "u1"}


def test_segment_conversion_with_uuid_primary_key() -> None:
    route = segment()
    row = only(route({"type": "track", "event": "clicked", "messageId": "m-9", "userId": "u"}))
    assert row.keys == {"Uuid": "m-9"}
    message = {"type": "track", "event": "clicked", "userId": "u", "properties": {"n": 1}}
    first = only(route(message))
    assert first.keys == only(route(dict(message))).keys
    assert first.keys == {"Uuid": record_uuid(message)}


def test_segment_track_matching_both_conversion_and_api_event() -> None:
    route = segment()
    outcomes = route(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": "u1",
            "properties": {"orderId": "o1", "total": 10},
        }
    )
    assert len(outcomes) == 2
    rows = [o for o in outcomes if isinstance(o, DataExtensionRow)]
    events = [o for o in outcomes if isinstance(o, JourneyEvent)]
    assert len(rows) == 1
    assert len(events) == 1
    assert rows[0].data_extension_key == "ORDERS"
    assert events[0].event_definition_key == "APIEvent-order"
    assert events[0].contact_key == "u1"
    assert events[0].data == {"Order Id": "o1", "Total": 10}


@pytest.mark.parametrize("event", ["signed up", "SIGNED UP", "Signed Up", "sIgNeD uP"])
def test_segment_api_event_matched_case_insensitively(event: str) -> None:
    event_out = only(segment()({"type": "track", "event": event, "userId": "u1"}))
    assert isinstance(event_out, JourneyEvent)
    assert event_out.event_definition_key == "APIEvent-signup"


def test_segment_api_event_without_identifier_is_skipped() -> None:
    outcome = only(segment()({"type": "track", "event": "Signed Up", "properties": {"a": 1}}))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "missing_identifier"


@pytest.mark.parametrize("event", ["Unknown Event", "", None], ids=["unknown", "blank", "none"])
def test_segment_unmapped_track_is_skipped(event: Any) -> None:
    outcome = only(segment()({"type": "track", "event": event, "userId": "u1"}))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "unmapped_event"


@pytest.mark.parametrize(
    "kind",
    ["page", "screen", "group", "alias", "weird", "", None],
    ids=["page", "screen", "group", "alias", "weird", "blank", "none"],
)
def test_segment_other_types_are_skipped(kind: Any) -> None:
    outcome = only(segment()({"type": kind, "userId": "u1", "event": "Signed Up"}))
    assert isinstance(outcome, Skipped)
    assert outcome.reason == "unsupported_type"


def test_segment_type_is_case_insensitive() -> None:
    assert isinstance(only(segment()({"type": "Identify", "userId": "u1"})), DataExtensionRow)
    assert isinstance(
        only(segment()({"type": "TRACK", "event": "Signed Up", "userId": "u1"})), JourneyEvent
    )


def test_segment_email_precedence_for_contact_key() -> None:
    route = segment()
    base = {"type": "track", "event": "Order Completed"}
    full = {
        **base,
        "traits": {"email": "traits@example.com"},
        "context": {"traits": {"email": "context@example.com"}},
        "properties": {"email": "props@example.com"},
    }
    assert route(full)[0].keys == {"Contact Key": "traits@example.com"}
    no_traits = {k: v for k, v in full.items() if k != "traits"}
    assert route(no_traits)[0].keys == {"Contact Key": "context@example.com"}
    props_only = {**base, "properties": {"email": "props@example.com"}}
    assert route(props_only)[0].keys == {"Contact Key": "props@example.com"}
    with_user = {**full, "userId": "u:7"}
    assert route(with_user)[0].keys == {"Contact Key": "u7"}


def test_segment_identify_email_from_context_traits() -> None:
    row = only(
        segment()(
            {"type": "identify", "context": {"traits": {"email": "c@example.com"}}, "traits": {}}
        )
    )
    assert row.keys == {"Contact Key": "c@example.com"}


@pytest.mark.parametrize(
    ("stream_config", "key_properties", "record"),
    [
        ({"type": "identify"}, [], {"user_id": "u1", "plan": "pro"}),
        (
            {"type": "track", "data_extension_key": "T"},
            ["order_id"],
            {"user_id": "u1", "order_id": "o1"},
        ),
        ({"type": "track", "data_extension_key": "T", "uuid_primary_key": True}, [], {"url": "/a"}),
        (
            {"type": "track", "data_extension_key": "T", "primary_keys": "Contact Key,Sku"},
            [],
            {"email": "a@b.co", "sku": "s"},
        ),
        ({"type": "audience"}, [], {"user_id": "u1", "audience": "vip", "in_audience": True}),
    ],
    ids=["identify", "track-key-properties", "track-uuid", "track-configured-keys", "audience"],
)
def test_rows_carry_their_key_columns_in_values(stream_config, key_properties, record) -> None:
    # The async loader sends `values` alone as the flat item: the keys must be in it.
    row = only(flat(stream_config, key_properties)(record))
    assert row.keys
    assert row.keys.items() <= row.values.items()
