"""Date-like fields: what is parsed, what is sent as received, and where references lead."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from singer_sdk.helpers.conform import DatetimeErrorTreatmentEnum

from target_sfmc.dates import (
    PARSERS,
    DateParser,
    UnresolvableReferenceError,
    canonical_datetime_text,
    datelike_properties,
    is_canonical_datetime,
    parse_datelike,
)
from target_sfmc.mapping import format_datetime, to_sfmc_value

LOGGER = logging.getLogger("test")


def sent(value: str, kind: str = "date-time"):
    parsed = parse_datelike(value, kind, PARSERS[kind])
    return parsed if type(parsed) is str else to_sfmc_value(parsed)


@pytest.mark.parametrize(
    ("received", "expected"),
    [
        ("2020-05-30T13:30:00+05:30", "2020-05-30T13:30:00+05:30"),
        ("2020-05-30T13:30:00.123+05:30", "2020-05-30T13:30:00.123+05:30"),
        ("2020-05-30T13:30:00.123456+05:30", "2020-05-30T13:30:00.123+05:30"),
        ("2020-05-30T13:30:00.999999-03:00", "2020-05-30T13:30:00.999-03:00"),
        ("2020-12-31T23:59:59.9999999+00:00", "2020-12-31T23:59:59.999+00:00"),
        ("2020-05-30T13:30:00.000500Z", "2020-05-30T13:30:00+00:00"),
        ("2020-05-30T13:30:00", "2020-05-30T13:30:00+00:00"),
        ("2020-05-30 13:30:00.5", "2020-05-30T13:30:00.500+00:00"),
        ("2020-05-30T13:30:00Z", "2020-05-30T13:30:00+00:00"),
    ],
)
def test_date_times_have_an_offset_and_at_most_milliseconds(received, expected):
    assert sent(received) == expected


@given(
    st.datetimes(
        timezones=st.sampled_from([None, dt.UTC, dt.timezone(dt.timedelta(hours=-9, minutes=-30))])
    )
)
def test_the_instant_is_kept_and_never_rounded_up(value):
    text = format_datetime(value)
    back = dt.datetime.fromisoformat(text)
    original = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    assert dt.timedelta(0) <= original - back < dt.timedelta(milliseconds=1)
    assert len(text.partition(".")[2].partition("+")[0].partition("-")[0]) <= 3


def test_an_offset_with_seconds_is_sent_in_utc():
    lmt = dt.timezone(dt.timedelta(hours=5, minutes=53, seconds=28))
    value = dt.datetime(1890, 1, 1, 12, 0, tzinfo=lmt)
    text = format_datetime(value)
    assert text.endswith("+00:00")
    assert dt.datetime.fromisoformat(text) == value


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("2020-05-30T13:30:00+05:30", True),
        ("2020-05-30T13:30:00.1+05:30", True),
        ("2020-05-30T13:30:00.123+05:30", True),
        ("2020-05-30T13:30:00.1234+05:30", False),
        ("2020-05-30T13:30:00.123456+05:30", False),
        ("2020-05-30 13:30:00+05:30", False),
        ("2020-05-30T13:30+05:30", False),
    ],
)
def test_canonical_date_times_are_those_sfmc_stores_as_they_are(text, canonical):
    assert is_canonical_datetime(text, dt.datetime.fromisoformat(text)) is canonical


date_time_texts = st.one_of(
    st.datetimes(timezones=st.just(dt.UTC)).map(lambda value: value.isoformat()),
    st.datetimes(timezones=st.just(dt.UTC)).map(
        lambda value: value.isoformat(timespec="milliseconds")
    ),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,6})?)?"
        r"([+-][0-9]{2}:?[0-9]{2}|Z)?",
        fullmatch=True,
    ),
    st.text(alphabet="0123456789-:T.+Z ", max_size=30),
)


@given(text=date_time_texts)
def test_the_canonical_text_pattern_agrees_with_the_canonical_check(text):
    """The lanes send a date-time matching the pattern as it is, once it parses: exactly when
    the general path would."""
    try:
        parsed = PARSERS["date-time"](text)
    except ValueError:
        return
    assert bool(canonical_datetime_text(text)) == is_canonical_datetime(text, parsed)


@pytest.mark.parametrize("value", ["13:30:00", "13:30:00.123456", "13:30:00+02:00", "23:59"])
def test_times_are_kept_as_the_text_received(value):
    assert sent(value, "time") == value


def test_dates_are_sent_as_year_month_day():
    assert sent("2020-01-02", "date") == "2020-01-02"


def test_date_like_properties_are_found_through_references_and_anyof():
    schema = {
        "definitions": {
            "ts": {"type": ["null", "string"], "format": "date-time"},
            "alias": {"$ref": "#/definitions/ts"},
        },
        "properties": {
            "created": {"$ref": "#/definitions/alias"},
            "day": {"oneOf": [{"type": "null"}, {"type": "string", "format": "date"}]},
            "at": {
                "anyOf": [{"type": "string", "format": "date-time"}, {"type": ["string", "null"]}]
            },
            "name": {"type": "string"},
        },
    }
    found = {name: kind for name, kind, _ in datelike_properties(schema)}
    assert found == {"created": "date-time", "day": "date", "at": "date-time"}


def test_a_referenced_naive_timestamp_gets_an_offset():
    schema = {
        "definitions": {"ts": {"type": "string", "format": "date-time"}},
        "properties": {"created": {"$ref": "#/definitions/ts"}},
    }
    record = {"created": "2020-05-30T13:30:00"}
    DateParser(schema, DatetimeErrorTreatmentEnum.ERROR, LOGGER).parse(record)
    assert to_sfmc_value(record["created"]) == "2020-05-30T13:30:00+00:00"


@pytest.mark.parametrize("ref", ["#/definitions/missing", "shared/user.json#/", "http://x/y.json"])
def test_an_unresolvable_reference_is_one_clear_error_naming_the_property(ref):
    schema = {"definitions": {}, "properties": {"created": {"$ref": ref}}}
    with pytest.raises(UnresolvableReferenceError, match="'created'") as caught:
        datelike_properties(schema)
    assert ref in str(caught.value)


def test_a_reference_cycle_ends():
    schema = {
        "definitions": {"a": {"$ref": "#/definitions/b"}, "b": {"$ref": "#/definitions/a"}},
        "properties": {"x": {"$ref": "#/definitions/a"}},
    }
    assert datelike_properties(schema) == ()
