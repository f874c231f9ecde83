"""The caller's state reaches the console as one line, and the evidence as chained events:
whatever the caller can share (a data channel alone), over the channel or over HTTPS."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from pytest_aiohttp import AiohttpClient

from bench.synthetic import SyntheticCaller
from recorder.verify import verify_bundle
from signalling.calls.caller_state import LINES, SummaryKey
from signalling.calls.sessions import utcnow
from signalling.web.appkeys import EVIDENCE, SERVICE, SETTINGS
from tests.client import Client
from tests.signalling.web.test_evidence_record import HEADERS, IPHONE, call, serve, wait_for

STATE: dict[str, Any] = {
    "type": "caller_state",
    "camera": "on",
    "microphone": "busy",
    "location": "on",
    "page": "visible",
    "network": "online",
    "webrtc": True,
    "declined": False,
}


def fix(**changes: Any) -> dict[str, Any]:
    return {
        "type": "fix",
        "lat": 51.5,
        "lon": -0.12,
        "accuracy": 10,
        "timestamp": time.time() * 1000,
    } | changes


async def events(client: Client, session_id: str) -> list[dict[str, Any]]:
    """The session's events.jsonl once the writes submitted so far are done."""
    assert client.app is not None
    recorder = client.app[SERVICE]._recorders.get(session_id)
    if recorder is not None:  # None once the session ended and its bundle closed
        await recorder.flush()
    folder = client.app[SETTINGS].evidence_dir / session_id
    return [json.loads(line) for line in (folder / "events.jsonl").read_bytes().splitlines()]


async def session(client: Client, session_id: str) -> dict[str, Any]:
    answer: dict[str, Any] = await (await client.get(f"/api/sessions/{session_id}")).json()
    return answer


async def link(client: Client, **body: Any) -> tuple[str, str]:
    """A new session and its link's last part (the caller's bearer token)."""
    payload = {"phone": "07700 900123", "incident_ref": "CAD-9"} | body
    created = await (await client.post("/api/sessions", json=payload, headers=HEADERS)).json()
    outbox = await (await client.get("/api/sms/outbox")).json()
    text = next(m["text"] for m in outbox["messages"] if m["session_id"] == created["id"])
    return created["id"], text[text.index("/c/") :].split()[0].rsplit("/", 1)[1]


async def test_a_data_channel_only_caller_in_a_video_session_is_live_and_recorded(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    caller = SyntheticCaller(None)  # camera and microphone refused: location alone
    try:
        session_id = await call(client, caller)
        before = await session(client, session_id)
        assert before["mode"] == "video" and before["caller_summary"] == LINES["opened"]
        assert before["caller_device"] == {
            "browser": "Mobile Safari 17.5",
            "device": "iPhone (iOS 17.5)",
        }
        refused = STATE | {"camera": "refused", "microphone": "refused"}
        caller.channel.send(json.dumps(refused))
        caller.channel.send(json.dumps(fix()))
        shown = await wait_for(client, session_id, lambda s: s["fix_count"] == 1)
        shown = await wait_for(client, session_id, lambda s: s["caller_state"] is not None)
        assert shown["caller_summary"] == LINES["camera_blocked"]
        assert shown["caller_state"] == {k: v for k, v in refused.items() if k != "type"}
        caller.channel.send(json.dumps(STATE | {"extra": 1}))  # refused: nothing changes
        caller.channel.send(json.dumps(refused))  # the same again: no new event
        await asyncio.sleep(0.5)
        assert (await session(client, session_id))["caller_state"] == shown["caller_state"]
        assert (await session(client, session_id))["rejected_fixes"] == 0
        await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    finally:
        await caller.close()
    assert client.app is not None
    folder = client.app[SETTINGS].evidence_dir / session_id
    verify_bundle(folder, client.app[EVIDENCE].signer.jwks())  # the chain holds every event
    recorded = await events(client, session_id)
    names = [e["event"] for e in recorded]
    assert names[: names.index("ended")] == [
        "session_created",
        "link_sent",
        "link_opened",
        "consent_given",
        "connecting",
        "live",
        "caller_state",
    ]
    state = next(e for e in recorded if e["event"] == "caller_state")
    assert state["camera"] == "refused" and state["summary"] == LINES["camera_blocked"]
    assert len((folder / "location.jsonl").read_text().splitlines()) == 1


async def test_caller_state_over_https_changes_the_line_and_bad_reports_change_nothing(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await session(client, session_id))["caller_summary"] == LINES["waiting"]
    assert (await client.get(f"/c/{token}", headers={"User-Agent": IPHONE})).status == 200

    assert client.app is not None
    async with client.app[SERVICE].store.subscribe(session_id) as feed:
        posted = await client.post("/api/caller/state", json=STATE, headers=bearer)
        assert posted.status == 204, await posted.text()
        update = await asyncio.wait_for(anext(feed), 5)
    assert update["type"] == "state"
    assert update["session"]["caller_summary"] == LINES["microphone_busy"]
    assert (await session(client, session_id))["caller_summary"] == LINES["microphone_busy"]
    steps: list[tuple[dict[str, Any], SummaryKey]] = [
        ({"page": "hidden"}, "hidden"),
        ({"page": "frozen"}, "frozen"),
        ({"camera": "lost"}, "camera_stopped"),
        ({"microphone": "on"}, "video_and_location"),
        ({"microphone": "on", "location": "refused"}, "location_blocked"),
        ({"microphone": "on", "location": "off"}, "video_only"),
        ({"network": "offline"}, "offline"),
        ({"webrtc": False, "camera": "unavailable"}, "no_video_browser"),
        ({"declined": True, "camera": "off", "location": "off"}, "declined"),
    ]
    for changes, line in steps:
        posted = await client.post("/api/caller/state", json=STATE | changes, headers=bearer)
        assert posted.status == 204
        assert (await session(client, session_id))["caller_summary"] == LINES[line], changes
    last = await session(client, session_id)
    written = await events(client, session_id)

    bad: list[dict[str, Any]] = [
        STATE | {"camera": "broken"},
        STATE | {"webrtc": "true"},
        STATE | {"declined": 1},
        STATE | {"type": "fix"},
        STATE | {"colour": "red"},
        {k: v for k, v in STATE.items() if k != "page"},
    ]
    for body in bad:
        refused = await client.post("/api/caller/state", json=body, headers=bearer)
        assert refused.status == 422, body
        assert (await refused.json())["error"] == "validation failed"
    assert (await client.post("/api/caller/state", data="{", headers=bearer)).status in (400, 415)
    assert (await client.post("/api/caller/state", json=STATE)).status == 401
    forged = {"Authorization": "Bearer " + "A" * len(token)}
    assert (await client.post("/api/caller/state", json=STATE, headers=forged)).status == 410
    assert await session(client, session_id) == last
    assert await events(client, session_id) == written
    caller_states = [e for e in written if e["event"] == "caller_state"]
    assert len(caller_states) == 10
    assert caller_states[-1]["declined"] is True
    assert caller_states[-1]["summary"] == LINES["declined"]


async def test_fixes_over_https_are_stored_and_bad_ones_counted(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client, mode="location")
    bearer = {"Authorization": f"Bearer {token}"}
    await client.get(f"/c/{token}")
    located = STATE | {"camera": "off", "microphone": "off", "webrtc": False}
    assert (await client.post("/api/caller/state", json=located, headers=bearer)).status == 204
    assert (await session(client, session_id))["caller_summary"] == LINES["location_only"]

    stored = await client.post("/api/caller/fixes", json=fix(), headers=bearer)
    assert stored.status == 204, await stored.text()
    for body, status, problem in [
        (fix(lat=95), 422, "lat out of range"),
        (fix(accuracy=None), 422, "accuracy is not a number"),
        (fix(lat="51.5"), 422, "lat"),
        (fix(colour="red"), 422, "colour"),
        (fix(type="caller_state"), 422, "type"),
    ]:
        refused = await client.post("/api/caller/fixes", json=body, headers=bearer)
        assert refused.status == status, body
        assert problem in await refused.text()
    assert (await client.post("/api/caller/fixes", data="[", headers=bearer)).status in (400, 415)
    assert (await client.post("/api/caller/fixes", json=fix())).status == 401

    shown = await session(client, session_id)
    assert shown["fix_count"] == 1 and shown["rejected_fixes"] == 6
    trail = await (await client.get(f"/api/sessions/{session_id}/trail")).json()
    assert [f["lat"] for f in trail["fixes"]] == [51.5]
    await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    assert (await client.post("/api/caller/fixes", json=fix(), headers=bearer)).status == 410
    assert client.app is not None
    folder = client.app[SETTINGS].evidence_dir / session_id
    assert len((folder / "location.jsonl").read_text().splitlines()) == 1


async def test_an_expired_link_tapped_is_shown_and_recorded(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client)
    other_id, _ = await link(client)
    assert client.app is not None
    service = client.app[SERVICE]
    await service.store.update(session_id, link_expires_at=utcnow() - timedelta(seconds=1))

    assert (await client.get("/c/" + "A" * len(token))).status == 410  # forged: no session
    tapped = await client.get(f"/c/{token}", headers={"User-Agent": IPHONE})
    assert tapped.status == 410
    shown = await session(client, session_id)
    assert (
        shown["caller_summary"] == LINES["link_refused"] == "Link expired when tapped: use Resend"
    )
    assert shown["state"] == "link_sent"
    refused = [e for e in await events(client, session_id) if e["event"] == "link_refused"]
    assert [e["reason"] for e in refused] == ["not opened in time"]
    config = await client.get("/api/caller/config", headers={"Authorization": f"Bearer {token}"})
    assert config.status == 410
    assert len([e for e in await events(client, session_id) if e["event"] == "link_refused"]) == 2
    assert (await session(client, other_id))["caller_summary"] == LINES["waiting"]
    assert "link_refused" not in [e["event"] for e in await events(client, other_id)]

    resent = await client.post(f"/api/sessions/{session_id}/resend", headers=HEADERS)
    assert resent.status == 200, await resent.text()
    assert (await session(client, session_id))["caller_summary"] == LINES["waiting"]


async def test_a_caller_who_pressed_stop_is_told_to_start_again(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client)
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await client.get(f"/c/{token}", headers={"User-Agent": IPHONE})).status == 200
    nothing = {"camera": "off", "microphone": "off", "location": "off"}
    steps: list[tuple[dict[str, Any], SummaryKey]] = [
        (nothing, "opened"),  # the page as it loads: nothing asked yet, not a Stop
        ({}, "microphone_busy"),
        (nothing, "stopped"),  # Stop: the session stays open
        (nothing | {"page": "hidden"}, "hidden"),
        (nothing, "stopped"),  # still stopped when they come back to the page
        ({"microphone": "on"}, "video_and_location"),  # Start sharing again
    ]
    for changes, line in steps:
        posted = await client.post("/api/caller/state", json=STATE | changes, headers=bearer)
        assert posted.status == 204
        assert (await session(client, session_id))["caller_summary"] == LINES[line], changes
    assert LINES["stopped"] == "Caller stopped sharing: ask them to tap Start sharing again"
    recorded = [e for e in await events(client, session_id) if e["event"] == "caller_state"]
    assert [e["summary"] for e in recorded].count(LINES["stopped"]) == 2
