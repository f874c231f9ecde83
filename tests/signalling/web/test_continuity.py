"""Continuity (issue 11, item 4): a gap in the caller's media is shown as "reconnecting"
within 3 s and recorded; a caller back with a fresh peer connection resumes the same session;
a restart on embedded defaults leaves the caller's link working."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip, PacketTrack, SyntheticCaller
from recorder.verify import verify_bundle
from signalling.calls.links import CallerLink
from signalling.calls.sessions import CallSession, utcnow
from signalling.calls.state import MemoryStore
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import EVIDENCE, SETTINGS
from tests.client import client_of
from tests.signalling.web.test_evidence_record import (
    HEADERS,
    IPHONE,
    create,
    offer,
    serve,
    wait_for,
)


class MediaGate:
    """Holds a synthetic caller's tracks (no frame leaves) while the connection stays up:
    a stairwell, where ICE consent takes some 30 s to fail."""

    def __init__(self, caller: SyntheticCaller) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.closed_at = 0.0
        for track in (caller.video, caller.audio):
            assert track is not None
            self._hold(track)

    def _hold(self, track: PacketTrack) -> None:
        original = track.recv

        async def recv() -> Any:
            await self.open.wait()
            return await original()

        track.recv = recv  # type: ignore[method-assign]

    def close(self) -> None:
        self.open.clear()
        self.closed_at = time.monotonic()

    def reopen(self) -> None:
        self.open.set()


def events_of(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_bytes().splitlines()]


def named(events: list[dict[str, Any]], *names: str) -> list[str]:
    return [e["event"] for e in events if e["event"] in names]


async def test_a_media_gap_shows_reconnecting_and_is_recorded(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    caller = SyntheticCaller(clips["H264"])
    gate = MediaGate(caller)
    try:
        session_id, token = await create(client)
        await offer(client, token, caller)
        await wait_for(client, session_id, lambda s: s["state"] == "live")
        await asyncio.sleep(1.5)
        gate.close()
        await wait_for(client, session_id, lambda s: s["state"] == "reconnecting")
        shown = time.monotonic() - gate.closed_at
        assert caller.pc.connectionState == "connected"  # the connection never noticed
        await asyncio.sleep(max(0.0, 3.0 - shown))
        gate.reopen()
        reopened = time.monotonic()
        await wait_for(client, session_id, lambda s: s["state"] == "live")
        resumed = time.monotonic() - reopened
        print(
            f"media gap: 'reconnecting' shown {shown:.2f} s after the last frame, "
            f"live again {resumed:.2f} s after media resumed"
        )
        assert 2.0 < shown < 3.0
        assert resumed < 1.0
        await asyncio.sleep(1.0)
        await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    finally:
        await caller.close()

    app = client.app
    assert app is not None
    folder = app[SETTINGS].evidence_dir / session_id
    events = events_of(folder)
    assert named(events, "live", "reconnecting", "media_gap_started", "media_gap_ended") == [
        "live",
        "media_gap_started",
        "reconnecting",
        "media_gap_ended",
        "live",
    ]
    gap = next(e for e in events if e["event"] == "media_gap_ended")
    assert gap["resumed"] is True and gap["part"] == 1
    assert 2.8 < gap["seconds"] < 4.0, gap
    assert gap["started_at"] < gap["ended_at"]
    manifest = verify_bundle(folder, app[EVIDENCE].signer.jwks(), decode=True)
    assert manifest.status == "closed"
    gaps = json.loads((folder / "manifest.json").read_bytes())["gaps"]
    assert len(gaps) == 1 and gaps[0]["reason"] == "no media from the caller"
    assert gaps[0]["seconds"] == gap["seconds"]
    span = gaps[0]["ended_wall_clock"] - gaps[0]["last_frame_wall_clock"]
    assert round(span, 3) == gap["seconds"]


async def test_a_caller_back_after_a_15_s_drop_resumes_the_same_session(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    first = SyntheticCaller(clips["H264"])
    second = SyntheticCaller(clips["H264"])
    gate = MediaGate(first)
    try:
        session_id, token = await create(client)
        await offer(client, token, first)
        await wait_for(client, session_id, lambda s: s["state"] == "live")
        await asyncio.sleep(1.0)
        gate.close()  # the network drops: nothing gets through
        await wait_for(client, session_id, lambda s: s["state"] == "reconnecting")
        shown = time.monotonic() - gate.closed_at
        await asyncio.sleep(15.0 - shown)
        # The network is back: the page offers at once with a fresh peer connection.
        back = time.monotonic()
        await offer(client, token, second)
        await first.close()
        live = await wait_for(client, session_id, lambda s: s["state"] == "live")
        resumed = time.monotonic() - back
        print(
            f"15 s drop: 'reconnecting' shown after {shown:.2f} s, "
            f"resumed {resumed:.2f} s after the network came back"
        )
        assert shown < 3.0 and resumed < 5.0
        assert live["id"] == session_id
        await asyncio.sleep(1.0)
        await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    finally:
        await first.close()
        await second.close()

    app = client.app
    assert app is not None
    folder = app[SETTINGS].evidence_dir / session_id
    events = events_of(folder)
    gap = next(e for e in events if e["event"] == "media_gap_ended")
    assert gap["resumed"] is True and gap["part"] == 2
    assert 15.0 < gap["seconds"] < 20.0, gap
    parts = [e["part"] for e in events if e["event"] == "recording_part_started"]
    assert len(parts) == 2
    verify_bundle(folder, app[EVIDENCE].signer.jwks(), decode=True)
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert [g["seconds"] for g in manifest["gaps"]] == [gap["seconds"]]
    assert len(manifest["segments"]) >= 2


async def test_a_restart_on_embedded_defaults_keeps_the_callers_link(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> None:
    settings: dict[str, Any] = {
        "data_dir": tmp_path,
        "operators": [{"username": "alice", "password": "pw", "roles": ["call_handler"]}],
    }
    first_app = make_app(load_settings(**settings))
    first_server = TestServer(first_app)
    await first_server.start_server(**RUNNER_OPTIONS)
    first = await client_of(aiohttp_client, first_server)
    login = {"username": "alice", "password": "pw"}
    assert (await first.post("/api/login", json=login, headers=HEADERS)).status == 200
    before = SyntheticCaller(clips["H264"])
    after = SyntheticCaller(clips["H264"])
    try:
        session_id, token = await create(first)
        await offer(first, token, before)
        await wait_for(first, session_id, lambda s: s["state"] == "live")
        await asyncio.sleep(1.0)
        await first.close()  # the server stops (its cleanup runs)
        assert (tmp_path / "state.json").exists()

        second = await serve(aiohttp_client, tmp_path)
        listed = await (await second.get("/api/sessions")).json()
        sessions = listed["sessions"] if isinstance(listed, dict) else listed
        assert session_id in [s["id"] for s in sessions]
        assert (await second.get(f"/c/{token}", headers={"User-Agent": IPHONE})).status == 200
        await offer(second, token, after)
        await wait_for(second, session_id, lambda s: s["state"] == "live")
        await asyncio.sleep(1.0)
        ended = await second.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
        assert (await ended.json())["state"] == "ended"
    finally:
        await before.close()
        await after.close()

    app = second.app
    assert app is not None
    folder = app[SETTINGS].evidence_dir / session_id
    manifest = verify_bundle(folder, app[EVIDENCE].signer.jwks(), decode=True)
    assert manifest.status == "closed"
    events = events_of(folder)
    assert named(events, "session_created", "consent_given") == [
        "session_created",
        "consent_given",
    ]
    assert len([e for e in events if e["event"] == "recording_part_started"]) == 2


async def test_the_embedded_store_writes_changes_together_and_reads_them_back(
    tmp_path: Path,
) -> None:
    path = tmp_path / "data" / "state.json"
    store = MemoryStore(path)
    now = utcnow()
    session = CallSession(
        id="s1",
        incident_ref="CAD-1",
        phone="+447700900123",
        mode="video",
        state="link_sent",
        created_at=now,
        created_by="alice",
        token_id="t1",
        link_expires_at=now + timedelta(minutes=30),
    )
    await store.create(session)
    assert await store.save_link("ab" * 32, CallerLink("s1", "t1"), time.time() + 60)
    assert await store.save_link("cd" * 32, CallerLink("s1", "old"), time.time() - 1)
    await store.revoke("cookie", time.time() + 60)
    for i in range(50):  # a burst of fixes and state changes: a few writes, not fifty
        await store.add_fix("s1", {"lat": 51.5, "lon": -0.1, "n": i})  # type: ignore[typeddict-item]
    await store.update("s1", state="live")
    await asyncio.sleep(0.5)
    assert 1 <= store.saves <= 3 and path.exists()
    await store.update("s1", codec="H264")
    await store.close()  # what is not written yet is written now
    assert store.saves <= 4

    again = await asyncio.to_thread(MemoryStore.load, path)
    reloaded = await again.get("s1")
    assert reloaded.codec == "H264" and reloaded.token_id == "t1"
    assert reloaded.state == "reconnecting"  # its connection went with the old process
    assert await again.find_link("ab" * 32) == CallerLink("s1", "t1")
    assert await again.find_link("cd" * 32) is None
    assert await again.is_revoked("cookie")
    assert (await again.trail_summary("s1"))[0] == 50
