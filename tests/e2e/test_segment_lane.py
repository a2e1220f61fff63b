"""Segment-format streams through the CLI: the lane stores exactly what the general path stores."""

from __future__ import annotations

import json
import re

from harness import (
    CLIENT_ID,
    CLIENT_SECRET,
    EXAMPLES,
    base_config,
    run_target,
    singer_lines,
    summary,
)

from target_sfmc.emulator import SfmcEmulator

SCHEMA = {
    "type": "object",
    "properties": {
        "messageId": {"type": ["string", "null"]},
        "type": {"type": "string"},
        "userId": {"type": ["string", "null"]},
        "anonymousId": {"type": ["string", "null"]},
        "event": {"type": ["string", "null"]},
        "traits": {
            "type": ["object", "null"],
            "properties": {"created_at": {"type": ["string", "null"], "format": "date-time"}},
        },
        "properties": {"type": ["object", "null"]},
        "context": {"type": ["object", "null"]},
        "timestamp": {"type": ["string", "null"], "format": "date-time"},
    },
}
# What differs between any two runs (ids the emulator makes, the clock).
VARYING = {"eventInstanceId", "created_at", "record_time"}
LANE_LINE = re.compile(r"Stream 'events': (\d+) records took its lane")


def message(i: int) -> dict:
    """Message i: identify and track messages of every kind, some refused, some skipped."""
    user = f"u:{i % 23}"  # repeated users: merges and later rounds
    base = {"messageId": f"m-{i}", "anonymousId": f"a-{i}", "timestamp": "2024-03-01T10:00:00Z"}
    context = {
        "campaign": {"name": f"c{i % 3}", "source": "mail"},
        "locale": "en-US",
        "app": {"name": "Shop", "version": "1.2"},
        "device": {"model": "Pixel 8"},
        "library": {"name": "analytics.js"},
    }
    traits = {
        "email": f"user{i % 23}@example.com",
        "firstName": "Ada",
        "plan": ["free", "pro"][i % 2],
        "logins": i,
        "created_at": "2024-01-02 03:04:05",
        "trial_users": i % 2 == 0,
    }
    order = {"order_id": f"o-{i % 31}", "total": i + 0.5, "currency": "EUR", "coupon": None}
    match i % 10:
        case 0:
            return {
                **base,
                "type": "identify",
                "userId": user,
                "traits": traits,
                "context": context,
            }
        case 1:
            return {**base, "type": "track", "userId": user, "event": "Order Completed",
                    "properties": order, "context": context}  # fmt: skip
        case 2:
            return {**base, "type": "track", "event": " order completed ",
                    "properties": {**order, "email": f"e{i}@example.com"}}  # fmt: skip
        case 3:
            return {**base, "type": "page", "userId": user}
        case 4:
            return {**base, "type": "track", "userId": user, "event": "Unknown Event"}
        case 5:
            return {**base, "type": "identify", "traits": {"plan": "free"}}
        case 6:
            return {**base, "type": "track", "userId": user, "event": "Signed Up",
                    "properties": {"plan": "pro"}}  # fmt: skip
        case 7:
            return {**base, "type": "identify", "userId": user, "traits": {"plan": "x" * 60}}
        case 8:
            return {**base, "type": "track", "userId": user, "event": "Order Completed",
                    "properties": {**order, "currency": "EURO"}}  # fmt: skip
        case _:
            return {**base, "type": "Identify", "userId": None,
                    "context": {**context, "traits": {"email": f"ctx{i}@example.com"}}}  # fmt: skip


def load(tmp_path, name: str, **overrides) -> dict:
    """Load the messages into a fresh emulator; what it stored and what the run said."""
    definition = json.loads((EXAMPLES / "data_extensions.json").read_text())
    with SfmcEmulator(
        data_extensions=definition["data_extensions"],
        event_definitions=definition["event_definitions"],
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    ) as emulator:
        dead = tmp_path / f"{name}-dead.jsonl"
        config = base_config(
            emulator,
            identify_data_extension_key="IDENTIFY",
            conversion_events=[
                {
                    "event": "Order Completed",
                    "data_extension_key": "ORDER_COMPLETED",
                    "primary_keys": "Contact Key,Order Id",
                }
            ],
            api_events=[
                {"event": "Signed Up", "event_definition_key": "APIEvent-signup"},
            ],
            streams={"events": {"type": "segment"}},
            row_error_policy="skip",
            dead_letter_path=str(dead),
            batch_size_rows=40,
            **overrides,
        )
        lines = singer_lines(
            "events", SCHEMA, [message(i) for i in range(200)], ["messageId"], {"n": 200}
        )
        run = run_target(tmp_path, config, lines, env={"LOGLEVEL": "DEBUG"})
        assert run.returncode == 0, run.tail()
        taken = LANE_LINE.search(run.stderr)
        counts = summary(run.stderr)
        return {
            "lane": int(taken.group(1)) if taken else 0,
            "rows": {key: emulator.rows(key) for key in ("IDENTIFY", "ORDER_COMPLETED")},
            # Contacts are created side by side: their ids follow no order.
            "contacts": sorted(contact["contactKey"] for contact in emulator.contacts()),
            "events": [
                {k: v for k, v in event.items() if k not in VARYING} for event in emulator.events()
            ],
            "dead": [
                {k: v for k, v in json.loads(line).items() if k not in VARYING}
                for line in dead.read_text().splitlines()
            ],
            "summary": {k: v for k, v in counts.items() if k != "elapsed"},
            "states": run.states,
        }


def test_segment_messages_through_the_lane_store_what_the_general_path_stores(tmp_path):
    laned = load(tmp_path, "lane")
    # A stream map that changes nothing takes the stream off the fast path.
    general = load(tmp_path, "general", stream_maps={"events": {}})
    assert laned["lane"] >= 100, "most messages should take the lane"
    assert general["lane"] == 0
    lane_side = {k: v for k, v in laned.items() if k != "lane"}
    general_side = {k: v for k, v in general.items() if k != "lane"}
    assert lane_side == general_side
    assert laned["summary"]["skipped"] > 0
    assert laned["summary"]["rejected"] > 0
    assert laned["rows"]["IDENTIFY"]
    assert laned["rows"]["ORDER_COMPLETED"]
    assert laned["events"]
