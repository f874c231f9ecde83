"""A whole session through the API leaves the complete record the README promises."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from aiortc import RTCSessionDescription
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip, SyntheticCaller
from recorder.events import EVENT_NAMES
from recorder.verify import verify_bundle
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import EVIDENCE, SERVICE, SETTINGS
from tests.client import Client, client_of
from tests.harness import fill_disk

HEADERS = {"X-Requested-With": "scenelink"}
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


async def wait_for(
    client: Client, session_id: str, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    session: dict[str, Any] = {}
    while time.monotonic() < deadline:
        session = await (await client.get(f"/api/sessions/{session_id}")).json()
        if wanted(session):
            return session
        await asyncio.sleep(0.1)
    raise AssertionError(f"session never got there: {session}")


async def serve(aiohttp_client: AiohttpClient, data_dir: Path, **settings: Any) -> Client:
    app = make_app(
        load_settings(
            data_dir=data_dir,
            operators=[{"username": "alice", "password": "pw", "roles": ["call_handler"]}],
            **settings,
        )
    )
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    login = {"username": "alice", "password": "pw"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200
    return client


async def create(client: Client) -> tuple[str, str]:
    """A new session and its caller link's id, opened on an iPhone."""
    created = await client.post(
        "/api/sessions", json={"phone": "07700 900123", "incident_ref": "CAD-9"}, headers=HEADERS
    )
    session_id: str = (await created.json())["id"]
    outbox = await (await client.get("/api/sms/outbox")).json()
    text = outbox["messages"][-1]["text"]
    path = text[text.index("/c/") :].split()[0]
    assert (await client.get(path, headers={"User-Agent": IPHONE})).status == 200
    return session_id, path.rsplit("/", 1)[1]


async def offer(client: Client, token: str, caller: SyntheticCaller) -> None:
    sdp = await caller.offer()
    answer = await client.post(
        "/api/caller/offer",
        json={"sdp": sdp.sdp, "type": sdp.type, "consent_version": "v3"},
        headers={"Authorization": f"Bearer {token}", "User-Agent": IPHONE},
    )
    assert answer.status == 200, await answer.text()
    body = await answer.json()
    await caller.accept(RTCSessionDescription(body["sdp"], body["type"]))


async def call(client: Client, caller: SyntheticCaller) -> str:
    """A session whose caller (on an iPhone, as far as the server can tell) is live."""
    session_id, token = await create(client)
    await offer(client, token, caller)
    await wait_for(client, session_id, lambda s: s["state"] == "live")
    return session_id


async def ended_call(client: Client, clip: Clip) -> str:
    """A session whose caller streamed ``clip`` for a second, then ended by the call handler."""
    caller = SyntheticCaller(clip)
    try:
        session_id = await call(client, caller)
        await asyncio.sleep(1.0)
        await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    finally:
        await caller.close()
    return session_id


async def test_a_session_leaves_its_complete_record(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    app = client.app
    assert app is not None
    caller = SyntheticCaller(clips["H264"])
    try:
        session_id = await call(client, caller)
        await asyncio.sleep(2.0)
        ended = await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
        assert (await ended.json())["state"] == "ended"
    finally:
        await caller.close()

    folder = app[SETTINGS].evidence_dir / session_id
    closed = (folder / "events.jsonl").read_bytes()
    # Late arrivals once the bundle is closed and signed: nothing is added to it, and no
    # second recorder is opened on its folder.
    service = app[SERVICE]
    fix = {"type": "fix", "lat": 51.5, "lon": -0.1, "accuracy": 5, "timestamp": time.time() * 1000}
    await service.handle_caller_message(session_id, json.dumps(fix))
    await service.record_event(
        session_id, {"event": "viewer_joined", "at": "2026-12-07T10:00:00+00:00", "by": "late"}
    )
    assert (await service.view(await service.store.get(session_id)))["rejected_fixes"] == 1
    assert (folder / "events.jsonl").read_bytes() == closed
    assert not (folder / "location.jsonl").exists()

    events = [json.loads(line) for line in closed.splitlines()]
    names = [e["event"] for e in events]
    assert all(e["event"] in EVENT_NAMES and e["at"] for e in events), names
    assert all("type" not in e for e in events)  # one discriminator key
    calls = [n for n in names if not n.startswith(("recording_part", "rtcp_sr"))]
    assert calls == [
        "session_created",
        "link_sent",
        "link_opened",
        "consent_given",
        "connecting",
        "live",
        "ended",
        "recording_totals",
    ]
    by_name = {e["event"]: e for e in events}
    assert by_name["ended"]["by"] == "alice"
    assert by_name["consent_given"]["consent_version"] == "v3"
    totals = by_name["recording_totals"]
    assert totals["video"]["written"] > 0 and totals["audio"]["written"] > 0
    assert totals["video"]["lost"] == totals["audio"]["lost"] == 0

    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert manifest["status"] == "closed"
    assert manifest["incident_ref"] == "CAD-9"
    assert manifest["token_id"] == by_name["session_created"]["token_id"]
    assert manifest["caller"] == {
        "user_agent": IPHONE,
        "browser": "Mobile Safari 17.5",
        "device": "iPhone (iOS 17.5)",
        "consent_version": "v3",
    }
    assert manifest["segments"] and manifest["gaps"] == []
    verify_bundle(folder, app[EVIDENCE].signer.jwks(), decode=True)


async def test_a_full_disk_is_shown_for_the_session_and_recording_resumes(
    aiohttp_client: AiohttpClient, small_disk: Path, clips: dict[str, Clip]
) -> None:
    client = await serve(aiohttp_client, small_disk / "data", evidence_low_space_mb=2)
    caller = SyntheticCaller(clips["H264"])
    try:
        session_id = await call(client, caller)
        await asyncio.sleep(1.0)
        filler = fill_disk(small_disk, leave=64 * 1024)
        failed = await wait_for(client, session_id, lambda s: s["recording"]["state"] == "failed")
        assert failed["recording"]["cause"] == "disk full" and failed["state"] == "live"
        status = await (await client.get("/api/evidence/status")).json()
        assert [f["session_id"] for f in status["recording_failures"]] == [session_id]
        assert status["recording_failures"][0]["cause"] == "disk full"
        assert status["disk"]["low"] is True
        filler.unlink()
        await wait_for(client, session_id, lambda s: s["recording"]["state"] == "recording")
        status = await (await client.get("/api/evidence/status")).json()
        assert status["recording_failures"] == [] and status["disk"]["low"] is False
        await asyncio.sleep(1.0)
        await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    finally:
        await caller.close()
    app = client.app
    assert app is not None
    folder = app[SETTINGS].evidence_dir / session_id
    manifest = verify_bundle(folder, app[EVIDENCE].signer.jwks(), decode=True)
    assert manifest.status == "closed"
    events = [json.loads(line) for line in (folder / "events.jsonl").read_bytes().splitlines()]
    names = [e["event"] for e in events]
    assert names.index("recording_failed") < names.index("recording_resumed") < names.index("ended")
