"""Unit and property tests of the pure mapping rules."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from target_sfmc.jsonio import encode_json
from target_sfmc.mapping import (
    CONTACT_KEY,
    CONTEXT_ATTRIBUTES,
    MappingError,
    contact_key,
    context_attributes,
    is_dropped,
    map_attributes,
    parse_primary_keys,
    primary_key_values,
    record_uuid,
    segment_email,
    title_case,
    to_sfmc_value,
)

# --- Title Case -------------------------------------------------------------------------------

TITLE_CASE_EXAMPLES = [
    ("firstName", "First Name"),
    ("first_name", "First Name"),
    ("createdAt", "Created At"),
    ("created_at", "Created At"),
    ("userID", "User ID"),
    ("IPAddress", "IP Address"),
    ("order_id", "Order Id"),
    ("orderId", "Order Id"),
    ("UTM Campaign", "UTM Campaign"),
    ("_leading", "Leading"),
    ("a__b", "A B"),
    ("über_name", "Über Name"),
    ("camelCaseWithNumber2", "Camel Case With Number 2"),
    ("version2Beta", "Version 2 Beta"),
    ("Device-model", "Device-model"),
    ("address__city", "Address City"),
]


@pytest.mark.parametrize(
    ("key", "expected"), TITLE_CASE_EXAMPLES, ids=[k for k, _ in TITLE_CASE_EXAMPLES]
)
def test_title_case_examples(key: str, expected: str) -> None:
    assert title_case(key) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", ""),
        ("   ", ""),
        ("__", ""),
        ("  first   name  ", "First Name"),
        ("first\tname", "First Name"),
        ("a.b", "A.b"),
        ("device.model", "Device.model"),
        ("ABC", "ABC"),
        ("HTTPServer", "HTTP Server"),
        ("item2", "Item 2"),
        ("2fast", "2 Fast"),
        ("trailing_", "Trailing"),
        ("émile_zola", "Émile Zola"),
    ],
)
def test_title_case_edge_cases(key: str, expected: str) -> None:
    assert title_case(key) == expected


def test_title_case_does_not_lowercase_other_characters() -> None:
    assert title_case("mixedCASE_Word") == "Mixed CASE Word"
    assert title_case("iPhone") == "I Phone"


@given(st.text())
def test_title_case_is_idempotent(key: str) -> None:
    once = title_case(key)
    assert title_case(once) == once


_CASED_ALPHABET = st.characters(
    categories=["Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "No", "Zs", "Mn"],
    include_characters="_-. \t",
)


@given(st.text(alphabet=_CASED_ALPHABET, max_size=12))
def test_title_case_is_idempotent_on_cased_text(key: str) -> None:
    once = title_case(key)
    assert title_case(once) == once


@given(st.text())
def test_title_case_output_spacing_and_underscores(key: str) -> None:
    result = title_case(key)
    assert result == result.strip()
    assert "  " not in result
    assert "_" not in result
    # Only single ASCII spaces separate words: every other white space is collapsed.
    assert all(not ch.isspace() or ch == " " for ch in result)


def _has_one_char_uppercase(char: str) -> bool:
    upper = char.upper()
    return len(upper) == 1 and upper.isupper()


@given(st.text())
def test_title_case_words_start_with_a_non_lowercase_char(key: str) -> None:
    for word in title_case(key).split(" "):
        if not word:
            continue
        first = word[0]
        if first.islower():
            # Only characters that cannot be upper-cased one-to-one may stay lower-case.
            assert not _has_one_char_uppercase(first) or first.upper().isalpha() != first.isalpha()


@given(st.text(alphabet=st.characters(categories=["Ll", "Lu", "Nd"]) | st.just("_"), max_size=20))
def test_title_case_only_changes_case_of_word_starts(key: str) -> None:
    result = title_case(key).replace(" ", "")
    source = key.replace("_", "")
    assert len(result) == len(source)
    assert all(r in {k, k.upper()} for r, k in zip(result, source, strict=True))


# --- Contact Key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_id", "email", "expected"),
    [
        ("user-1", "a@example.com", "user-1"),
        (None, "a@example.com", "a@example.com"),
        ("", "a@example.com", "a@example.com"),
        ("   ", "a@example.com", "a@example.com"),
        ("urn:user:1", None, "urnuser1"),
        ("  user-2  ", None, "user-2"),
        (None, "  b@example.com ", "b@example.com"),
        (None, "mailto:c@example.com", "mailtoc@example.com"),
        (12345, None, "12345"),
        (0, "a@example.com", "0"),
        (None, None, None),
        ("", "", None),
        (":", " : ", None),
        ("  ", None, None),
    ],
)
def test_contact_key(user_id: object, email: object, expected: str | None) -> None:
    assert contact_key(user_id, email) == expected


@given(st.one_of(st.none(), st.text(), st.integers()), st.one_of(st.none(), st.text()))
def test_contact_key_never_has_colons_or_surrounding_space(user_id: object, email: object) -> None:
    key = contact_key(user_id, email)
    if key is not None:
        assert key
        assert ":" not in key
        assert key == key.strip()


# --- Values -----------------------------------------------------------------------------------


def test_nulls_and_nested_values_are_omitted() -> None:
    record = {
        "name": "Ann",
        "nothing": None,
        "address": {"city": "Paris"},
        "tags": ["a", "b"],
        "empty_list": [],
        "empty_obj": {},
    }
    assert map_attributes(record) == {"Name": "Ann"}


def test_booleans_stay_booleans_and_integers_stay_integers() -> None:
    attributes = map_attributes({"is_active": True, "opted_out": False, "age": 42, "zero": 0})
    assert attributes == {"Is Active": True, "Opted Out": False, "Age": 42, "Zero": 0}
    assert attributes["Is Active"] is True
    assert attributes["Opted Out"] is False
    assert type(attributes["Age"]) is int
    assert type(attributes["Zero"]) is int


def test_big_integers_are_not_rounded() -> None:
    big = 2**63 + 1
    assert map_attributes({"n": big}) == {"N": big}
    assert encode_json(map_attributes({"n": big})) == f'{{"N":{big}}}'.encode()


@pytest.mark.parametrize(
    "text",
    ["1.10", "0.1", "12345678901234567890.123456789012", "-0.000000000000000001", "100"],
)
def test_decimals_keep_their_exact_digits(text: str) -> None:
    exact = decimal.Decimal(text)
    value = to_sfmc_value(exact)
    assert isinstance(value, decimal.Decimal)
    assert value.as_tuple() == exact.as_tuple()
    sent = json.loads(encode_json({"Price": value}), parse_float=decimal.Decimal)
    assert isinstance(sent["Price"], decimal.Decimal | int)
    assert decimal.Decimal(sent["Price"]).as_tuple() == exact.as_tuple()


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        decimal.Decimal("NaN"),
        decimal.Decimal("sNaN"),
        decimal.Decimal("Infinity"),
        decimal.Decimal("-Infinity"),
    ],
    ids=["nan", "inf", "-inf", "dec-nan", "dec-snan", "dec-inf", "dec-minf"],
)
def test_non_finite_numbers_are_mapping_errors(value: object) -> None:
    with pytest.raises(MappingError):
        to_sfmc_value(value)
    with pytest.raises(MappingError):
        map_attributes({"score": value})


def test_mapping_error_is_a_value_error() -> None:
    assert issubclass(MappingError, ValueError)


def test_finite_float_passes_through() -> None:
    assert to_sfmc_value(1.5) == 1.5


def test_naive_datetime_is_taken_as_utc() -> None:
    value = dt.datetime(2020, 5, 30, 13, 30)  # noqa: DTZ001
    assert to_sfmc_value(value) == "2020-05-30T13:30:00+00:00"


def test_naive_datetime_with_microseconds_keeps_its_milliseconds() -> None:
    value = dt.datetime(2020, 5, 30, 13, 30, 0, 123456)  # noqa: DTZ001
    assert to_sfmc_value(value) == "2020-05-30T13:30:00.123+00:00"


def test_aware_datetime_keeps_its_offset() -> None:
    tz = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
    value = dt.datetime(2020, 5, 30, 13, 30, tzinfo=tz)
    assert to_sfmc_value(value) == "2020-05-30T13:30:00-05:30"
    assert to_sfmc_value(dt.datetime(2020, 5, 30, 13, 30, tzinfo=dt.UTC)) == (
        "2020-05-30T13:30:00+00:00"
    )


def test_date_is_sent_as_yyyy_mm_dd() -> None:
    assert to_sfmc_value(dt.date(2021, 1, 2)) == "2021-01-02"


def test_other_strings_are_unchanged() -> None:
    for text in ["", " padded ", "2020-05-30T13:30:00", "ünïcode", "null"]:
        assert to_sfmc_value(text) == text


def test_dropped_values_are_marked() -> None:
    assert is_dropped(to_sfmc_value(None))
    assert is_dropped(to_sfmc_value({"a": 1}))
    assert is_dropped(to_sfmc_value([1]))
    assert not is_dropped(to_sfmc_value(0))
    assert not is_dropped(to_sfmc_value(""))
    assert not is_dropped(to_sfmc_value(value=False))


def test_later_duplicate_title_case_key_wins() -> None:
    assert map_attributes({"first_name": "a", "firstName": "b"}) == {"First Name": "b"}
    assert map_attributes({"firstName": "b", "first_name": "a"}) == {"First Name": "a"}


def test_later_null_does_not_erase_earlier_duplicate() -> None:
    # A null is omitted, so it cannot win the name.
    assert map_attributes({"first_name": "a", "firstName": None}) == {"First Name": "a"}


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.booleans(), st.integers())))
def test_map_attributes_keys_are_title_cased_and_values_non_null(record: dict) -> None:
    attributes = map_attributes(record)
    for name, value in attributes.items():
        assert title_case(name) == name
        assert value is not None
    assert "" not in attributes  # a name with no letter or digit names no column
    for key, value in record.items():
        if value is not None and title_case(key):
            assert title_case(key) in attributes


# --- Context ----------------------------------------------------------------------------------

FULL_CONTEXT = {
    "app": {"name": "Shop", "version": "1.2.3", "build": "45"},
    "campaign": {
        "name": "spring",
        "source": "newsletter",
        "medium": "email",
        "term": "shoes",
        "content": "banner",
    },
    "locale": "fr-FR",
    "userAgent": "Mozilla/5.0",
    "ip": "203.0.113.7",
    "device": {
        "adTrackingEnabled": True,
        "manufacturer": "Apple",
        "model": "iPhone7,2",
        "name": "maguro",
        "type": "ios",
    },
    "network": {"bluetooth": False, "carrier": "T-Mobile", "cellular": True, "wifi": False},
    "screen": {"density": 2, "height": 568, "width": 320},
}

CONTEXT_EXPECTED = {
    "App Name": "Shop",
    "App Version": "1.2.3",
    "App Build": "45",
    "UTM Campaign": "spring",
    "UTM Source": "newsletter",
    "UTM Medium": "email",
    "UTM Term": "shoes",
    "UTM Content": "banner",
    "Locale": "fr-FR",
    "User Agent": "Mozilla/5.0",
    "IP Address": "203.0.113.7",
    "Ad Tracking Enabled": True,
    "Device Manufacturer": "Apple",
    "Device-model": "iPhone7,2",
    "Device Name": "maguro",
    "Device Type": "ios",
    "Bluetooth Enabled": False,
    "Network Carrier": "T-Mobile",
    "Cellular Enabled": True,
    "Wifi Enabled": False,
    "Screen Density": 2,
    "Screen Height": 568,
    "Screen Width": 320,
}


def test_context_table() -> None:
    assert map_attributes({}, FULL_CONTEXT) == CONTEXT_EXPECTED


def test_context_unknown_paths_nulls_and_nested_values_are_ignored() -> None:
    context = {
        "library": {"name": "analytics.js"},
        "locale": None,
        "app": {"name": {"nested": True}, "version": None},
        "device": "not-an-object",
        "screen": {"width": 320},
    }
    assert map_attributes({}, context) == {"Screen Width": 320}


@pytest.mark.parametrize("context", [None, "text", 5, ["a"]], ids=["none", "str", "int", "list"])
def test_context_that_is_not_an_object_adds_nothing(context: object) -> None:
    assert map_attributes({"a": 1}, context) == {"A": 1}


def test_record_attributes_win_context_clashes() -> None:
    record = {"locale": "en-US", "UTM Campaign": "from-record", "Device-model": "Pixel"}
    attributes = map_attributes(record, FULL_CONTEXT)
    assert attributes["Locale"] == "en-US"
    assert attributes["UTM Campaign"] == "from-record"
    assert attributes["Device-model"] == "Pixel"
    assert attributes["UTM Source"] == "newsletter"


def test_null_record_attribute_does_not_erase_context_value() -> None:
    assert map_attributes({"locale": None}, {"locale": "de-DE"}) == {"Locale": "de-DE"}


def walked_context_attributes(context: object) -> dict:
    """The context table read path by path (the rule as written, for comparison)."""
    attributes = {}
    for path, name in CONTEXT_ATTRIBUTES:
        node = context
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        value = to_sfmc_value(node)
        if not is_dropped(value):
            attributes[name] = value
    return attributes


context_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
    st.just({"nested": 1}),
)
context_parts = {path[1]: context_leaves for path, _name in CONTEXT_ATTRIBUTES if len(path) > 1}
context_values = st.dictionaries(
    st.sampled_from(sorted({path[0] for path, _name in CONTEXT_ATTRIBUTES} | {"library"})),
    st.one_of(
        context_leaves,
        st.fixed_dictionaries({}, optional=context_parts),  # type: ignore[arg-type]
    ),
)


@given(context=st.one_of(context_values, context_leaves))
def test_context_attributes_follow_the_table_in_its_order(context: object) -> None:
    got = context_attributes(context)
    expected = walked_context_attributes(context)
    assert list(got.items()) == list(expected.items())


def test_context_values_are_converted() -> None:
    with pytest.raises(MappingError):
        map_attributes({}, {"screen": {"density": float("nan")}})


# --- Primary keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, ()),
        ("", ()),
        ("Contact Key", ("Contact Key",)),
        ("Contact Key,Product Id", ("Contact Key", "Product Id")),
        (" contact_key , productId ", ("Contact Key", "Product Id")),
        ("order_id,,", ("Order Id",)),
        (["order_id", "line_no"], ("Order Id", "Line No")),
        (["  ", "sku"], ("Sku",)),
        ([], ()),
    ],
)
def test_parse_primary_keys(spec: object, expected: tuple[str, ...]) -> None:
    assert parse_primary_keys(spec) == expected


def test_primary_key_values() -> None:
    row = {CONTACT_KEY: "u1", "Order Id": 7, "Other": "x"}
    assert primary_key_values(row, ("Contact Key", "Order Id")) == {
        "Contact Key": "u1",
        "Order Id": 7,
    }


def test_primary_key_values_keep_falsy_non_empty_values() -> None:
    assert primary_key_values({"N": 0, "B": False}, ("N", "B")) == {"N": 0, "B": False}


@pytest.mark.parametrize(
    "row",
    [{}, {"Order Id": None}, {"Order Id": ""}, {"Other": 1}],
    ids=["empty", "none", "blank", "other"],
)
def test_primary_key_values_missing_is_a_mapping_error(row: dict) -> None:
    with pytest.raises(MappingError, match="Order Id"):
        primary_key_values(row, ("Order Id",))


def test_record_uuid_is_deterministic_and_valid() -> None:
    record = {"event": "Order Completed", "amount": decimal.Decimal("9.99"), "n": 1}
    first = record_uuid(record)
    assert first == record_uuid(dict(reversed(list(record.items()))))
    assert first == record_uuid(
        json.loads(json.dumps({"event": "Order Completed", "n": 1}))
        | {"amount": decimal.Decimal("9.99")}
    )
    parsed = uuid.UUID(first)
    assert parsed.version == 5
    assert str(parsed) == first


def test_record_uuid_accepts_datetimes() -> None:
    record = {"at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "d": dt.date(2020, 1, 1)}
    assert record_uuid(record) == record_uuid(dict(record))


@given(
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=4),
)
def test_record_uuid_differs_for_different_records(a: dict, b: dict) -> None:
    if a == b:
        assert record_uuid(a) == record_uuid(b)
    else:
        assert record_uuid(a) != record_uuid(b)


# --- Segment email ----------------------------------------------------------------------------


def test_segment_email_precedence() -> None:
    message = {
        "traits": {"email": "traits@example.com"},
        "context": {"traits": {"email": "context@example.com"}},
        "properties": {"email": "props@example.com"},
    }
    assert segment_email(message) == "traits@example.com"
    del message["traits"]
    assert segment_email(message) == "context@example.com"
    del message["context"]
    assert segment_email(message) == "props@example.com"
    del message["properties"]
    assert segment_email(message) is None


def test_segment_email_skips_null_and_malformed_nodes() -> None:
    message = {
        "traits": {"email": None},
        "context": "not-an-object",
        "properties": {"email": "props@example.com"},
    }
    assert segment_email(message) == "props@example.com"
    assert segment_email({"traits": ["x"], "context": {"traits": None}}) is None


@pytest.mark.parametrize("email", [["a@b.co"], {"a": 1}], ids=["list", "object"])
def test_segment_email_of_an_unhashable_value_is_no_contact_key(email: object) -> None:
    message = {"traits": {"email": email}, "properties": {"email": "props@example.com"}}
    assert segment_email(message) == email  # the first email found, as for any other value
    assert contact_key(None, segment_email(message)) is None


def test_float_infinity_check_uses_math() -> None:
    # Sanity: finite extremes are allowed.
    assert to_sfmc_value(1e308) == 1e308
    assert math.isfinite(to_sfmc_value(-1e308))


@given(st.one_of(st.text(), st.text(alphabet="abcXYZ019-_@.ẞßİ"), st.integers(), st.none()))
def test_key_values_fold_as_sfmc_compares_keys_and_lowercase_ascii_is_not_copied(
    value: Any,
) -> None:
    from target_sfmc.records import key_value_folded  # noqa: PLC0415

    folded = key_value_folded(value)
    assert folded == (value.casefold() if isinstance(value, str) else value)
    if isinstance(value, str) and value.isascii() and (value.islower() or value.isdigit()):
        assert folded is value
