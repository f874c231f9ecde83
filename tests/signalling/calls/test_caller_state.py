"""The caller's state: parsed strictly, kept by both stores, summed up in one line."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from signalling.calls.caller_state import (
    LINES,
    CallerState,
    InvalidCallerState,
    caller_summary,
    parse_caller_state,
    stopped_sharing,
)
from signalling.calls.sessions import CallSession, utcnow
from signalling.calls.state import MemoryStore, RedisStore, StateStore

REPORT: dict[str, Any] = {
    "type": "caller_state",
    "camera": "off",
    "microphone": "off",
    "location": "on",
    "page": "visible",
    "network": "online",
    "webrtc": False,
    "declined": False,
}


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    made: StateStore = (
        MemoryStore()
        if request.param == "memory"
        else RedisStore(request.getfixturevalue("redis_url"))
    )
    yield made
    await made.close()


def test_a_report_is_parsed_strictly() -> None:
    state = parse_caller_state(REPORT)
    assert state == {k: v for k, v in REPORT.items() if k != "type"}
    for bad, problem in [
        (REPORT | {"camera": "blue"}, "camera: must be one of"),
        (REPORT | {"webrtc": 0}, "webrtc: must be true or false"),
        (REPORT | {"page": ["visible"]}, "page: must be one of"),
        (REPORT | {"type": "fix"}, "type"),
        (REPORT | {"x": 1}, "x: unknown field"),
        ({k: v for k, v in REPORT.items() if k != "network"}, "network: missing"),
    ]:
        with pytest.raises(InvalidCallerState, match=problem):
            parse_caller_state(bad)


def test_a_location_invite_never_asks_about_the_camera() -> None:
    state = parse_caller_state(REPORT)
    assert caller_summary("location", True, state) == LINES["location_only"]
    assert caller_summary("video", True, state) == LINES["no_video_browser"]
    blocked: CallerState = state | {"location": "refused"}
    assert caller_summary("location", True, blocked) == LINES["location_blocked"]
    assert caller_summary("location", True, None) == "Link opened"
    assert caller_summary("location", False, None) == "Waiting for the caller"
    assert caller_summary("video", False, None, link_refused=True) == LINES["link_refused"]
    # Once the (new) link is opened, what the caller's page says is what counts.
    assert caller_summary("location", True, state, link_refused=True) == LINES["location_only"]


async def test_both_stores_keep_the_caller_state(store: StateStore) -> None:
    session = CallSession(
        id=secrets.token_hex(8),
        incident_ref="CAD-1",
        phone="+447700900123",
        mode="video",
        state="opened",
        created_at=utcnow(),
        created_by="alice",
        token_id="t1",
        link_expires_at=utcnow() + timedelta(minutes=30),
    )
    await store.create(session)
    state = parse_caller_state(REPORT)
    device = {"user_agent": "UA", "browser": "Mobile Safari 17.5", "device": "iPhone"}
    await store.update(session.id, caller_state=state, caller_device=device, link_refused="x")
    kept = await store.get(session.id)
    assert kept.caller_state == state and kept.caller_device == device
    assert kept.link_refused == "x"
    await store.update(session.id, link_refused=None)
    assert (await store.get(session.id)).link_refused is None


def test_everything_off_after_sharing_is_a_stop_until_something_is_on_again() -> None:
    sharing = parse_caller_state(REPORT | {"camera": "on", "webrtc": True})
    nothing: CallerState = sharing | {"location": "off", "camera": "off"}
    assert not stopped_sharing(None, nothing, False)  # the page before Agree
    assert not stopped_sharing(nothing, nothing, False)
    assert stopped_sharing(sharing, nothing, False)
    assert stopped_sharing(nothing | {"page": "hidden"}, nothing, True)  # stays stopped
    assert not stopped_sharing(nothing, sharing, True)  # started again
    line = "Caller stopped sharing: ask them to tap Start sharing again"
    for mode in ("video", "location"):
        assert caller_summary(mode, True, nothing, stopped=True) == LINES["stopped"] == line
        assert caller_summary(mode, True, nothing) == LINES["opened"]
    # What matters more still comes first.
    declined: CallerState = nothing | {"declined": True}
    assert caller_summary("video", True, declined, stopped=True) == LINES["declined"]
