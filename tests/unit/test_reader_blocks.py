"""The reader's block decode: laned records in input order, with everything else between them."""

from __future__ import annotations

import io
import json
import os
import threading
from typing import Any

import msgspec
import pytest

from target_sfmc.errors import InputError
from target_sfmc.fastpath.reader import LineNumberingReader, ReaderLane


class UserRecord(msgspec.Struct):
    user_id: str
    plan: str | None = None


class OrderRecord(msgspec.Struct):
    order_id: int


def record(stream: str, value: dict[str, Any]) -> str:
    return json.dumps({"type": "RECORD", "stream": stream, "record": value})


class Recorder:
    """Lanes and callbacks that write what they get, in order, to one list."""

    def __init__(self, declined: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.events: list[tuple[str, Any]] = []
        self.declined = declined
        self.line_decodes = 0

    def lane(self, record_type: type, stream: str) -> ReaderLane:
        decoder = msgspec.json.Decoder(record_type)

        def decode(raw: Any) -> Any:
            self.line_decodes += 1
            return decoder.decode(raw)

        def take_run(records: Any, start: int) -> int:
            for index in range(start, len(records)):
                key = str(msgspec.structs.astuple(records[index])[0])
                if key in self.declined:
                    return index
                self.events.append((f"lane:{stream}", key))
            return len(records)

        return ReaderLane(decode, record_type, take_run)

    def callbacks(self) -> dict[str, Any]:
        def on_record(message: dict) -> None:
            self.events.append(
                (f"general:{message['stream']}", str(next(iter(message["record"].values()))))
            )

        return {
            "RECORD": on_record,
            "STATE": lambda message: self.events.append(("state", message["value"]["n"])),
            "SCHEMA": lambda message: self.events.append(("schema", message["stream"])),
        }


def reader_for(recorder: Recorder) -> LineNumberingReader:
    reader = LineNumberingReader()
    reader.record_lanes = {
        "users": recorder.lane(UserRecord, "users"),
        "orders": recorder.lane(OrderRecord, "orders"),
    }
    return reader


def expected_events(lines: list[str], declined: set[str]) -> list[tuple[str, Any]]:
    """What a line-by-line read gives: each message in input order."""
    events: list[tuple[str, Any]] = []
    for line in lines:
        if not line.strip():
            continue
        message = json.loads(line)
        if message["type"] == "STATE":
            events.append(("state", message["value"]["n"]))
        elif message["type"] == "SCHEMA":
            events.append(("schema", message["stream"]))
        else:
            stream = message["stream"]
            key = str(next(iter(message["record"].values())))
            laned = stream in {"users", "orders"} and key not in declined
            events.append((f"{'lane' if laned else 'general'}:{stream}", key))
    return events


def mixed_input() -> list[str]:
    """Many 64 KiB blocks: two laned streams interleaved, with STATE, SCHEMA, blank lines,
    another stream and records the lanes decline or cannot decode among them."""
    lines = []
    for i in range(6000):
        lines.append(record("users", {"user_id": f"u{i}", "plan": "x" * (i % 40)}))
        if i % 3 == 0:
            lines.append(record("orders", {"order_id": i}))
        if i % 1000 == 999:
            lines.append(json.dumps({"type": "STATE", "value": {"n": i}}))
        if i == 2500:
            lines.append("")  # a blank line
        if i == 3100:
            lines.append(record("other", {"id": i}))
        if i == 3300:
            lines.append(record("users", {"user_id": f"odd{i}", "plan": 5}))  # no decode
        if i == 4000:
            lines.append(json.dumps({"type": "SCHEMA", "stream": "other", "schema": {}}))
    return lines


def test_blocks_give_every_message_in_input_order() -> None:
    lines = mixed_input()
    declined = {"u10", "u2999", "u5000"}  # the lanes hand these to the general way
    recorder = Recorder(declined)
    reader = reader_for(recorder)
    text = ("\n".join(lines) + "\n").encode()

    counts = reader.process_lines(io.BufferedReader(io.BytesIO(text)), recorder.callbacks())

    # "odd3300" fails the lane's decode: the general way takes it too.
    assert recorder.events == expected_events(lines, {*declined, "odd3300"})
    assert reader.line_number == len(lines)
    records = sum('"RECORD"' in line for line in lines)
    assert counts["RECORD"] == records
    assert counts["STATE"] == 6
    # Most records came in whole blocks, not decoded line by line.
    assert recorder.line_decodes < records / 4


def test_input_without_a_final_newline_and_lines_split_across_reads() -> None:
    lines = [record("users", {"user_id": f"u{i}", "plan": "p" * 300}) for i in range(700)]
    recorder = Recorder()
    reader = reader_for(recorder)
    reader.process_lines(
        io.BufferedReader(io.BytesIO("\n".join(lines).encode())), recorder.callbacks()
    )
    assert recorder.events == expected_events(lines, set())


@pytest.mark.parametrize("position", [5, 900, 2999])
def test_a_bad_line_in_a_block_is_named_by_its_line_number(position: int) -> None:
    lines = [record("users", {"user_id": f"u{i}"}) for i in range(3000)]
    lines[position] = lines[position][:-5]  # cut short: not JSON
    reader = reader_for(Recorder())
    with pytest.raises(InputError, match=rf"Input line {position + 1} is not valid JSON"):
        reader.process_lines(
            io.BufferedReader(io.BytesIO("\n".join(lines).encode())), Recorder().callbacks()
        )


def test_bytes_that_are_not_utf8_in_a_block_are_named_by_their_line_number() -> None:
    lines = [record("users", {"user_id": f"u{i}"}).encode() for i in range(3000)]
    lines[2001] = lines[2001].replace(b'"u2001"', b'"u\xff"')
    reader = reader_for(Recorder())
    with pytest.raises(InputError, match=r"Input line 2002 is not valid UTF-8"):
        reader.process_lines(
            io.BufferedReader(io.BytesIO(b"\n".join(lines))), Recorder().callbacks()
        )


def test_a_pipe_is_read_as_lines_arrive_not_a_block_at_a_time() -> None:
    """A slow tap's records are taken while it still writes (nothing waits for a full block)."""
    read_end, write_end = os.pipe()
    recorder = Recorder()
    reader = reader_for(recorder)
    both_taken = threading.Event()
    original_take_run = reader.record_lanes["users"].take_run

    def take_run(records: Any, start: int) -> int:
        taken_to = original_take_run(records, start)
        if len(recorder.events) == 2:
            both_taken.set()
        return taken_to

    reader.record_lanes["users"] = reader.record_lanes["users"]._replace(take_run=take_run)
    with os.fdopen(read_end, "rb") as pipe_in:
        thread = threading.Thread(target=reader.process_lines, args=(pipe_in, recorder.callbacks()))
        thread.start()
        with os.fdopen(write_end, "wb", buffering=0) as pipe_out:
            pipe_out.write((record("users", {"user_id": "a"}) + "\n").encode())
            pipe_out.write((record("users", {"user_id": "b"}) + "\n").encode())
            taken_while_open = both_taken.wait(timeout=10)
        thread.join(timeout=10)
    assert taken_while_open
    assert recorder.events == [("lane:users", "a"), ("lane:users", "b")]
