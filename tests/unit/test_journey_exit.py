"""Journey exits and deleted records without a server: routing, waves, SFMC's answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from target_sfmc.errors import SfmcApiError
from target_sfmc.loading.journey_exit import JourneyExitLoader, load_in_order
from target_sfmc.records import DataExtensionRow, JourneyEvent, JourneyExit, LoadResult
from target_sfmc.routing import deleted_record_router, flat_router
from target_sfmc.settings import parse_settings

BASE = {"client_id": "id", "client_secret": "secret", "subdomain": "mc563885gzs27c5t9-63k636ttgm"}


def settings_for(stream: dict[str, Any], **config: Any) -> Any:
    settings, errors = parse_settings({**BASE, "streams": {"s": stream}, **config})
    assert errors == []
    return settings


class FakeClient:
    """Answers by the request's first contact (requests may run in any order)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers: dict[str, Any] = answers
        self.bodies: list[list[dict[str, Any]]] = []

    def exit_contacts(self, body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.bodies.append(body)
        answer = self.answers.get(body[0]["ContactKey"], [])
        if isinstance(answer, Exception):
            raise answer
        return answer


def ignored(contact: str, message: str) -> dict[str, Any]:
    return {
        "contactKey": contact,
        "definitionKey": "J",
        "status": [{"version": 1, "message": message}],
    }


def test_exits_read_back_per_contact_and_absent_contacts_are_out_already() -> None:
    client = FakeClient(
        {
            "a": [
                ignored("b", "Exit request Ignored - Contact is not in the journey."),
                ignored("c", "Exit request Ignored - Duplicate Request"),
                ignored("d", "Exit request Ignored - Invalid Interaction Name."),
            ]
        }
    )
    with ThreadPoolExecutor(2) as pool:
        loader = JourneyExitLoader(client, pool)  # type: ignore[arg-type]
        exits = [JourneyExit("J", key) for key in "abcd"]
        result = loader.exit("J", exits)
    assert client.bodies == [[{"ContactKey": k, "DefinitionKey": "J"} for k in "abcd"]]
    assert result.deleted == 3
    [refused] = result.rejected
    assert refused.item.contact_key == "d"  # type: ignore[union-attr]
    assert "Invalid Interaction Name" in refused.message


def test_exits_go_in_requests_of_fifty_and_a_400_refuses_its_request_only() -> None:
    refusal = SfmcApiError(endpoint="contactexit", status=400, error_code=10005, message="bad")
    client = FakeClient({"c50": refusal})
    with ThreadPoolExecutor(1) as pool:
        loader = JourneyExitLoader(client, pool)  # type: ignore[arg-type]
        result = loader.exit("J", [JourneyExit("J", f"c{i}", secondary=True) for i in range(120)])
    assert sorted(len(body) for body in client.bodies) == [20, 50, 50]
    assert result.extra_written == 70
    assert len(result.rejected) == 50


class Recorder:
    def __init__(self) -> None:
        self.log: list[tuple[str, list[str]]] = []

    def load(self, definition: str, events: list[JourneyEvent]) -> LoadResult:
        self.log.append((f"enter {definition}", [e.contact_key for e in events]))
        return LoadResult().confirm(events)

    def exit(self, journey: str, exits: list[JourneyExit]) -> LoadResult:
        self.log.append((f"exit {journey}", [e.contact_key for e in exits]))
        return LoadResult().confirm(exits)


def test_each_contacts_actions_keep_their_order_in_waves() -> None:
    recorder = Recorder()
    actions: list[JourneyEvent | JourneyExit] = [
        JourneyEvent("E", "a", {}),
        JourneyExit("J", "a"),
        JourneyEvent("E", "b", {}),
        JourneyEvent("E", "a", {}),
        JourneyExit("J", "c"),
    ]
    result = load_in_order(actions, recorder, recorder)  # type: ignore[arg-type]
    assert recorder.log == [
        ("enter E", ["a", "b"]),
        ("exit J", ["c"]),
        ("exit J", ["a"]),
        ("enter E", ["a"]),
    ]
    assert (result.written, result.deleted) == (3, 2)


def test_audience_journey_outcomes_follow_membership() -> None:
    stream = {"type": "audience", "data_extension_key": "ID", "journey_key": "J"}
    settings = settings_for({**stream, "event_definition_key": "E"})
    route = flat_router(settings.streams["s"], settings, [])
    row, event = route({"user_id": "u1", "audience": "trial", "in_audience": True})
    assert isinstance(row, DataExtensionRow)
    assert event == JourneyEvent("E", "u1", {"Contact Key": "u1", "Trial": True}, secondary=True)
    row, leave = route({"user_id": "u1", "audience": "trial", "in_audience": False})
    assert leave == JourneyExit("J", "u1", secondary=True)
    (skipped,) = route({"audience": "trial", "in_audience": False})  # no contact: no journey
    assert not isinstance(skipped, JourneyExit)


def test_deleted_records_route_by_stream_type_and_settings() -> None:
    identify = settings_for({"type": "identify", "data_extension_key": "ID"}, hard_delete=True)
    route = flat_router(identify.streams["s"], identify, [])
    deleted = deleted_record_router(identify.streams["s"], identify, route)
    assert deleted is not None
    (row,) = deleted({"user_id": "u1", "email": "u1@example.com", "plan": "x"})
    assert isinstance(row, DataExtensionRow)
    assert (row.delete, row.keys, row.values, row.contact_key) == (
        True,
        {"Contact Key": "u1"},
        {"Contact Key": "u1"},
        None,
    )
    off = settings_for({"type": "identify", "data_extension_key": "ID"})
    assert deleted_record_router(off.streams["s"], off, route) is None
    segment = settings_for({"type": "segment"}, hard_delete=True)
    assert deleted_record_router(segment.streams["s"], segment, route) is None

    audience = settings_for({"type": "audience", "data_extension_key": "ID"}, hard_delete=True)
    route = flat_router(audience.streams["s"], audience, [])
    leave = deleted_record_router(audience.streams["s"], audience, route)
    assert leave is not None
    (row,) = leave({"user_id": "u1", "audience": "trial", "in_audience": True})
    assert isinstance(row, DataExtensionRow)
    assert (row.delete, row.values["Trial"]) == (False, False)

    api = {"type": "api_event", "event_definition_key": "E", "journey_key": "J"}
    events = settings_for({**api, "exit_on_delete": True})
    route = flat_router(events.streams["s"], events, [])
    exit_ = deleted_record_router(events.streams["s"], events, route)
    assert exit_ is not None
    assert exit_({"user_id": "u1"}) == [JourneyExit("J", "u1")]


@pytest.mark.parametrize(
    ("stream", "config", "words"),
    [
        ({"type": "api_event", "event_definition_key": "E", "exit_on_delete": True}, {}, "needs"),
        ({"type": "track", "data_extension_key": "D", "journey_key": "J"}, {}, "journey_key"),
        ({"type": "audience", "data_extension_key": "D", "journey_key": "J"}, {}, "together"),
        (
            {
                "type": "audience",
                "data_extension_key": "D",
                "journey_key": "J",
                "event_definition_key": "E",
            },
            {"use_async_api": True},
            "audience journeys",
        ),
    ],
)
def test_journey_settings_problems_are_one_sentence(
    stream: dict[str, Any], config: dict[str, Any], words: str
) -> None:
    _, errors = parse_settings({**BASE, "streams": {"s": stream}, **config})
    assert len(errors) == 1
    assert words in errors[0]
