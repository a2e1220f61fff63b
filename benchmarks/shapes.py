"""The three input shapes of the CPU benchmark: their Singer input, stream config and DEs.

- ``flat``: identify records of plain types (strings, integers, numbers, booleans, a
  date-time).
- ``nested``: the same records plus an object (``address``), an array (``tags``) and a
  nullable ``anyOf`` object (``preferences``): the mapping drops all three, so the rows
  and the Data Extension are the flat shape's.
- ``segment``: Segment-format messages (``type``, ``userId``, ``anonymousId``, ``traits``,
  ``properties``, ``context``, ``timestamp``, ``messageId``) in one ``segment`` stream, half
  identify (into the Identify DE) and half ``Order Completed`` track (into a conversion DE).

Every record maps to exactly one row with a key of its own, so the rows the emulator stores
equal the records written.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

IDENTIFY_KEY = "IDENTIFY"
ORDERS_KEY = "ORDER_COMPLETED"

FLAT_PROPERTIES: dict[str, Any] = {
    "user_id": {"type": ["string", "null"]},
    "email": {"type": ["string", "null"]},
    "first_name": {"type": ["string", "null"]},
    "last_name": {"type": ["string", "null"]},
    "plan": {"type": ["string", "null"]},
    "country": {"type": ["string", "null"]},
    "logins": {"type": ["integer", "null"]},
    "age": {"type": ["integer", "null"]},
    "lifetime_value": {"type": ["number", "null"]},
    "is_active": {"type": ["boolean", "null"]},
    "created_at": {"type": ["string", "null"], "format": "date-time"},
}

NESTED_PROPERTIES: dict[str, Any] = {
    **FLAT_PROPERTIES,
    "address": {
        "type": ["object", "null"],
        "properties": {
            "city": {"type": ["string", "null"]},
            "zip": {"type": ["string", "null"]},
        },
    },
    "tags": {"type": ["array", "null"], "items": {"type": "string"}},
    "preferences": {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "newsletter": {"type": "boolean"},
                    "channel": {"type": "string"},
                },
            },
            {"type": "null"},
        ]
    },
}

SEGMENT_PROPERTIES: dict[str, Any] = {
    "messageId": {"type": "string"},
    "type": {"type": "string"},
    "userId": {"type": ["string", "null"]},
    "anonymousId": {"type": ["string", "null"]},
    "event": {"type": ["string", "null"]},
    "traits": {"type": ["object", "null"]},
    "properties": {"type": ["object", "null"]},
    "context": {"type": ["object", "null"]},
    "timestamp": {"type": ["string", "null"], "format": "date-time"},
}

# Every attribute a flat or nested identify record sends, plus the primary key.
IDENTIFY_DE: dict[str, Any] = {
    "key": IDENTIFY_KEY,
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
        {"name": "User Id", "type": "Text", "length": 50},
        {"name": "Email", "type": "EmailAddress"},
        {"name": "First Name", "type": "Text", "length": 50},
        {"name": "Last Name", "type": "Text", "length": 50},
        {"name": "Plan", "type": "Text", "length": 20},
        {"name": "Country", "type": "Text", "length": 2},
        {"name": "Logins", "type": "Number"},
        {"name": "Age", "type": "Number"},
        {"name": "Lifetime Value", "type": "Decimal", "precision": 18, "scale": 2},
        {"name": "Is Active", "type": "Boolean"},
        {"name": "Created At", "type": "Date"},
    ],
}

# The Segment context attributes the messages carry (see mapping.CONTEXT_ATTRIBUTES).
_CONTEXT_FIELDS: list[dict[str, Any]] = [
    {"name": "IP Address", "type": "Text", "length": 45},
    {"name": "Locale", "type": "Text", "length": 10},
    {"name": "User Agent", "type": "Text", "length": 200},
    {"name": "UTM Campaign", "type": "Text", "length": 50},
    {"name": "UTM Source", "type": "Text", "length": 50},
    {"name": "UTM Medium", "type": "Text", "length": 50},
    {"name": "App Name", "type": "Text", "length": 50},
    {"name": "App Version", "type": "Text", "length": 20},
    {"name": "Device-model", "type": "Text", "length": 50},
    {"name": "Device Type", "type": "Text", "length": 20},
]

SEGMENT_IDENTIFY_DE: dict[str, Any] = {
    "key": IDENTIFY_KEY,
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
        {"name": "Email", "type": "EmailAddress"},
        {"name": "First Name", "type": "Text", "length": 50},
        {"name": "Last Name", "type": "Text", "length": 50},
        {"name": "Plan", "type": "Text", "length": 20},
        {"name": "Country", "type": "Text", "length": 2},
        {"name": "Logins", "type": "Number"},
        {"name": "Lifetime Value", "type": "Decimal", "precision": 18, "scale": 2},
        {"name": "Is Active", "type": "Boolean"},
        *_CONTEXT_FIELDS,
    ],
}

ORDERS_DE: dict[str, Any] = {
    "key": ORDERS_KEY,
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
        {"name": "Order Id", "type": "Text", "length": 50, "primary_key": True},
        {"name": "Total", "type": "Decimal", "precision": 18, "scale": 2},
        {"name": "Currency", "type": "Text", "length": 3},
        {"name": "Coupon", "type": "Text", "length": 50},
        {"name": "Items Count", "type": "Number"},
        *_CONTEXT_FIELDS,
    ],
}

FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Frances"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson"]
PLANS = ["free", "pro", "team", "enterprise"]
COUNTRIES = ["GB", "US", "DE", "FR", "NL", "JP", "BR"]
CITIES = ["London", "Paris", "Berlin", "Amsterdam", "Tokyo", "Recife", "Boston"]
TAGS = ["beta", "vip", "newsletter", "mobile", "churn-risk", "referral"]
CHANNELS = ["email", "sms", "push"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY"]

_FLAT_RECORD = (
    '"user_id":"u%d","email":"user%d@example.com","first_name":"%s","last_name":"%s",'
    '"plan":"%s","country":"%s","logins":%d,"age":%d,"lifetime_value":%d.%02d,'
    '"is_active":%s,"created_at":"2023-%02d-%02dT%02d:%02d:%02d+00:00"'
)
_NESTED_EXTRA = ',"address":{"city":"%s","zip":"%05d"},"tags":["%s","%s"],"preferences":%s'


def _flat_values(i: int, rnd: random.Random) -> tuple[Any, ...]:
    return (
        i,
        i,
        FIRST[i % len(FIRST)],
        LAST[i % len(LAST)],
        PLANS[i % len(PLANS)],
        COUNTRIES[i % len(COUNTRIES)],
        rnd.randint(0, 5000),
        18 + i % 70,
        rnd.randint(0, 99_999),
        rnd.randint(0, 99),
        "true" if i % 3 else "false",
        1 + i % 12,
        1 + i % 28,
        i % 24,
        i % 60,
        (i * 7) % 60,
    )


def _flat_line(i: int, rnd: random.Random) -> str:
    record = _FLAT_RECORD % _flat_values(i, rnd)
    return '{"type":"RECORD","stream":"users","record":{' + record + "}}\n"


def _nested_line(i: int, rnd: random.Random) -> str:
    newsletter = "true" if i % 2 else "false"
    channel = CHANNELS[i % len(CHANNELS)]
    preferences = "null" if i % 4 == 0 else f'{{"newsletter":{newsletter},"channel":"{channel}"}}'
    extra = _NESTED_EXTRA % (
        CITIES[i % len(CITIES)],
        rnd.randint(0, 99_999),
        TAGS[i % len(TAGS)],
        TAGS[(i * 5 + 1) % len(TAGS)],
        preferences,
    )
    record = _FLAT_RECORD % _flat_values(i, rnd) + extra
    return '{"type":"RECORD","stream":"users","record":{' + record + "}}\n"


def _segment_context(i: int) -> dict[str, Any]:
    return {
        "ip": f"10.{i % 256}.{(i >> 8) % 256}.{(i >> 16) % 256}",
        "locale": "en-GB" if i % 2 else "de-DE",
        "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0",
        "campaign": {"name": f"spring-{i % 5}", "source": "newsletter", "medium": "email"},
        "app": {"name": "Shop", "version": f"4.{i % 10}.0"},
        "device": {"model": "Pixel 8" if i % 3 else "iPhone 15", "type": "android"},
        "library": {"name": "analytics.js", "version": "4.1.0"},
    }


def _segment_line(i: int, rnd: random.Random) -> str:
    user = f"u{i // 2}"
    timestamp = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
    message: dict[str, Any] = {
        "messageId": f"m-{i}",
        "type": "identify" if i % 2 == 0 else "track",
        "userId": user,
        "anonymousId": f"anon-{i // 2}" if i % 4 < 2 else None,
        "context": _segment_context(i),
        "timestamp": timestamp,
    }
    if i % 2 == 0:
        message["traits"] = {
            "email": f"user{i // 2}@example.com",
            "firstName": FIRST[i % len(FIRST)],
            "lastName": LAST[i % len(LAST)],
            "plan": PLANS[i % len(PLANS)],
            "country": COUNTRIES[i % len(COUNTRIES)],
            "logins": rnd.randint(0, 5000),
            "lifetime_value": round(rnd.randint(0, 9_999_999) / 100, 2),
            "is_active": bool(i % 3),
        }
    else:
        message["event"] = "Order Completed"
        message["properties"] = {
            "order_id": f"o-{i}",
            "total": round(rnd.randint(100, 99_999) / 100, 2),
            "currency": CURRENCIES[i % len(CURRENCIES)],
            "coupon": None if i % 5 else "SPRING",
            "items_count": 1 + i % 7,
        }
    record = json.dumps(message, separators=(",", ":"))
    return '{"type":"RECORD","stream":"events","record":' + record + "}\n"


@dataclass(frozen=True)
class Shape:
    """One input shape: how to write it, configure the target for it and define its DEs."""

    name: str
    description: str
    stream: str
    properties: dict[str, Any]
    key_properties: tuple[str, ...]
    data_extensions: tuple[dict[str, Any], ...]
    streams_config: dict[str, Any]
    extra_config: dict[str, Any]
    cpu_target: float  # the CPU-seconds ratio for this shape (at least)
    default_records: int

    def line(self, i: int, rnd: random.Random) -> str:
        """One RECORD line (newline included).

        Args:
            i: The record's number.
            rnd: Seeded random source.

        Returns:
            The line.
        """
        return _LINES[self.name](i, rnd)

    def write_input(self, path: Path, records: int, *, seed: int = 7) -> Path:
        """Write SCHEMA, ``records`` RECORDs and one STATE to ``path``, streaming.

        Args:
            path: Where to write.
            records: How many RECORD messages.
            seed: Seed of the random values.

        Returns:
            ``path``.
        """
        rnd = random.Random(seed)  # noqa: S311 - test data, not secrets
        schema = {"type": "object", "properties": self.properties}
        header = {
            "type": "SCHEMA",
            "stream": self.stream,
            "schema": schema,
            "key_properties": list(self.key_properties),
        }
        make = _LINES[self.name]
        with path.open("w", encoding="utf-8") as out:
            out.write(json.dumps(header) + "\n")
            chunk: list[str] = []
            for i in range(records):
                chunk.append(make(i, rnd))
                if len(chunk) >= 10_000:
                    out.writelines(chunk)
                    chunk.clear()
            out.writelines(chunk)
            out.write(json.dumps({"type": "STATE", "value": {"bookmark": records}}) + "\n")
        return path

    def config(self) -> dict[str, Any]:
        """The stream-related part of the target's config.

        Returns:
            ``identify_data_extension_key``, ``streams`` and any Segment settings.
        """
        return {
            "identify_data_extension_key": IDENTIFY_KEY,
            "streams": self.streams_config,
            **self.extra_config,
        }


_LINES = {"flat": _flat_line, "nested": _nested_line, "segment": _segment_line}

FLAT = Shape(
    name="flat",
    description="flat identify records, plain types",
    stream="users",
    properties=FLAT_PROPERTIES,
    key_properties=("user_id",),
    data_extensions=(IDENTIFY_DE,),
    streams_config={"users": {"type": "identify"}},
    extra_config={},
    cpu_target=8.0,
    default_records=200_000,
)
NESTED = Shape(
    name="nested",
    description="identify records + object, array and nullable anyOf (dropped)",
    stream="users",
    properties=NESTED_PROPERTIES,
    key_properties=("user_id",),
    data_extensions=(IDENTIFY_DE,),
    streams_config={"users": {"type": "identify"}},
    extra_config={},
    cpu_target=6.0,
    default_records=200_000,
)
SEGMENT = Shape(
    name="segment",
    description="Segment messages, half identify, half track into a conversion DE",
    stream="events",
    properties=SEGMENT_PROPERTIES,
    key_properties=("messageId",),
    data_extensions=(SEGMENT_IDENTIFY_DE, ORDERS_DE),
    streams_config={"events": {"type": "segment"}},
    extra_config={
        "conversion_events": [
            {
                "event": "Order Completed",
                "data_extension_key": ORDERS_KEY,
                "primary_keys": "Contact Key,Order Id",
            }
        ]
    },
    cpu_target=5.0,
    default_records=200_000,
)
SHAPES: dict[str, Shape] = {shape.name: shape for shape in (FLAT, NESTED, SEGMENT)}
