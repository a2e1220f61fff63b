"""Where reading waits for SFMC to confirm a batch: per stream kind and setting (Target API)."""

from __future__ import annotations

import json

import pytest
from harness import base_config

from target_sfmc.target import TargetSfmc

SCHEMA = {"type": "object", "properties": {"userId": {"type": "string"}}}


def batch_size(emulator, stream: dict, **settings) -> int:
    config = base_config(
        emulator,
        identify_data_extension_key="IDENTIFY",
        streams={"s": stream},
        do_not_create_or_update_contacts=True,
        **settings,
    )
    target = TargetSfmc(config=config)
    try:
        target.listen(
            iter(
                [
                    json.dumps(
                        {"type": "SCHEMA", "stream": "s", "schema": SCHEMA, "key_properties": []}
                    )
                    + "\n"
                ]
            )
        )
        return target.get_sink("s").max_size
    finally:
        target.shutdown()


@pytest.mark.parametrize(
    ("stream", "settings", "expected"),
    [
        # Rowsets go out while reading: a large batch keeps the budget busy at its end.
        ({"type": "identify"}, {}, 100_000),
        ({"type": "identify"}, {"batch_size_rows": 2_000}, 2_000),
        ({"type": "identify"}, {"use_async_api": True}, 500_000),
        # Entry events go out at the batch's end: the SDK's size, so they are not held back.
        ({"type": "api_event", "event_definition_key": "APIEvent-signup"}, {}, 10_000),
        (
            {"type": "api_event", "event_definition_key": "APIEvent-signup"},
            {"batch_size_rows": 500},
            500,
        ),
    ],
)
def test_batch_size(example_emulator, stream: dict, settings: dict, expected: int) -> None:
    assert batch_size(example_emulator, stream, **settings) == expected
