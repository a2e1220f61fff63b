"""Input read in blocks through the CLI: laned records keep input order, errors name their line."""

from __future__ import annotations

import re

from harness import CLIENT_ID, CLIENT_SECRET, base_config, run_target, singer_lines, summary

from target_sfmc.emulator import SfmcEmulator

USERS = {
    "key": "USERS",
    "fields": [
        {"name": "Contact Key", "type": "Text", "length": 254, "primary_key": True},
        {"name": "User Id", "type": "Text", "length": 50},
        {"name": "Plan", "type": "Text", "length": 50},
    ],
}
SCHEMA = {
    "type": "object",
    "properties": {"user_id": {"type": "string"}, "plan": {"type": ["string", "null"]}},
}
LANE_LINE = re.compile(r"Stream 'users': (\d+) records took its lane")


def emulator() -> SfmcEmulator:
    return SfmcEmulator(data_extensions=[USERS], client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


def config(emu: SfmcEmulator, **overrides: object) -> dict:
    return base_config(
        emu,
        identify_data_extension_key="USERS",
        streams={"users": {"type": "identify"}},
        do_not_create_or_update_contacts=True,
        **overrides,
    )


def test_records_the_lane_declines_keep_their_place_among_laned_ones(tmp_path):
    """Many blocks of records, with STATE between them; one record of a repeated key takes
    the general way (an undeclared property) between two laned ones: the last one wins."""
    records = [{"user_id": f"u{i}", "plan": "first"} for i in range(3000)]
    records[1500] = {"user_id": "u7", "plan": "declined", "nickname": "x"}
    records[1501] = {"user_id": "u7", "plan": "last"}
    records[2500] = {"user_id": "u9", "plan": "declined", "nickname": "y"}
    lines = singer_lines("users", SCHEMA, records, ["user_id"])
    for position in range(2800, 0, -700):  # STATE every 700 records
        lines.insert(position, f'{{"type": "STATE", "value": {{"at": {position}}}}}')
    lines.append('{"type": "STATE", "value": {"at": "end"}}')

    with emulator() as emu:
        run = run_target(
            tmp_path, config(emu, batch_size_rows=450), lines, env={"LOGLEVEL": "DEBUG"}
        )
        assert run.returncode == 0, run.tail()
        stored = {row["Contact Key"]: row["Plan"] for row in emu.rows("USERS")}

    assert stored["u7"] == "last"
    assert stored["u9"] == "declined"
    assert len(stored) == 2997  # u1500, u1501 and u2500 were replaced in the input
    taken = LANE_LINE.search(run.stderr)
    assert taken is not None, run.tail()
    # All but the first (before the lane exists) and the two with an undeclared property.
    assert int(taken.group(1)) == 2997
    assert summary(run.stderr)["read"] == 3000
    assert run.states[-1] == {"at": "end"}
    assert [state["at"] for state in run.states[:-1]] == sorted(
        state["at"] for state in run.states[:-1]
    )


def test_an_invalid_record_deep_in_a_block_is_named_by_its_line(tmp_path):
    records = [{"user_id": f"u{i}", "plan": "p"} for i in range(3000)]
    records[2000] = {"user_id": "u2000", "plan": 5}
    with emulator() as emu:
        run = run_target(tmp_path, config(emu), singer_lines("users", SCHEMA, records, ["user_id"]))
    assert run.returncode == 1, run.tail()
    assert "Input line 2002" in run.stderr, run.tail()  # line 1 is the SCHEMA
