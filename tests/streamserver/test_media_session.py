"""Loopback: synthetic caller -> MediaSession -> two aiortc viewers + the recorder.

Everything is real aiortc over the loopback network; the ingest patch makes the viewers'
own receivers yield EncodedFrame too, so bytes can be compared end to end.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import OperationError

from bench.synthetic import Clip, SyntheticCaller
from recorder import SessionRecorder, media_duration
from recorder.library import video_packets
from streamserver.frames import EncodedFrame
from streamserver.session import GAP_CHECK_S, RECORDER_BATCH_S, MediaSession
from tests.viewer import Viewer, is_subsequence

# Every test here runs on the C ingress and on the pure-Python path (conftest.media_path).
pytestmark = pytest.mark.usefixtures("media_path")


async def wait_for(predicate: Callable[[], bool], seconds: float) -> None:
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_caller_to_two_viewers_and_recorder(
    codec: str, h264_clip: Clip, vp8_clip: Clip, tmp_path: Path
) -> None:
    clip = h264_clip if codec == "H264" else vp8_clip
    states: list[str] = []
    messages: list[str] = []
    recorder = SessionRecorder(tmp_path / "sess")
    session = MediaSession("sess", None, recorder, messages.append, states.append)
    forwarded: list[bytes] = []
    probe = session.video_relay.subscribe(10_000)

    async def collect() -> None:
        while (f := await probe.get()) is not None:
            forwarded.append(f.data)

    collector = asyncio.create_task(collect())
    caller = SyntheticCaller(clip, loop=False)
    viewers = [Viewer(), Viewer()]
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        assert session.codec == codec
        for viewer in viewers:
            await viewer.join(session.add_viewer)
        assert session.viewer_count == 2
        await wait_for(lambda: caller.channel.readyState == "open", 5)
        caller.channel.send(json.dumps({"lat": 51.5, "lon": -0.1}))
        await session.send_to_caller("help is on the way")
        assert caller.video is not None
        await wait_for(lambda: len(viewers[0].frames["video"]) >= 3, 5)
        await asyncio.sleep(0.6)  # past the relay's and the requester's rate limits
        receiver = next(t.receiver for t in viewers[0].pc.getTransceivers() if t.kind == "video")
        pli_before = caller.video.keyframe_requests
        await receiver._send_rtcp_pli(receiver.getSynchronizationSources()[0].source)
        await wait_for(lambda: caller.video is not None and caller.video.sent >= 90, 20)
        await wait_for(lambda: all(len(v.frames["video"]) >= 25 for v in viewers), 10)
        await asyncio.sleep(0.3)
        assert "live" in states and states[0] == "connecting"
        assert messages == ['{"lat": 51.5, "lon": -0.1}']
        assert caller.received == ["help is on the way"]
        for viewer in viewers:
            video = viewer.frames["video"]
            assert video[0].keyframe and {f.codec for f in video} == {codec}
            assert is_subsequence([f.data for f in video], forwarded)
            assert len(viewer.frames["audio"]) > 50
        # Joining viewers asked for a keyframe; and a viewer's PLI reaches the caller's
        # sender (whether joining needed one depends on timing, so send one explicitly).
        assert session.video_relay.keyframe_requests >= 1
        assert caller.video.keyframe_requests > pli_before
        stats = session.stats
        assert stats["frames_in"] >= 90 + 140 and stats["video"]["lag_events"] == 0
    finally:
        await session.close()
        await session.close()
        await recorder.close()  # the session's owner closes its recorder
        await caller.close()
        for viewer in viewers:
            await viewer.close()
        await collector
    assert states[-1] == "disconnected"
    part = tmp_path / "sess" / "media-001.mkv"
    assert recorder.parts == [part] and recorder.errors == []
    recorded = video_packets(part)
    assert len(recorded) >= 85
    assert recorded == forwarded, "the recording holds every forwarded frame, byte for byte"
    assert media_duration(part) == pytest.approx(clip.duration_s, abs=1.0)
    with av.open(str(part)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == len(recorded)


async def test_reconnect_keeps_viewers_and_starts_new_part(vp8_clip: Clip, tmp_path: Path) -> None:
    states: list[str] = []
    recorder = SessionRecorder(tmp_path / "r")
    session = MediaSession("r", None, recorder, lambda m: None, states.append)
    viewer = Viewer()
    first = SyntheticCaller(vp8_clip)
    second = SyntheticCaller(vp8_clip)
    try:
        # The viewer joins before the caller: its tracks wait.
        await viewer.join(session.add_viewer)
        await first.accept(await session.accept_caller(await first.offer()))
        await wait_for(lambda: len(viewer.frames["video"]) >= 20, 5)
        await second.accept(await session.accept_caller(await second.offer()))
        count = len(viewer.frames["video"])
        await wait_for(lambda: len(viewer.frames["video"]) >= count + 20, 5)
        pts = [f.pts for f in viewer.frames["video"]]
        assert pts == sorted(pts), "viewer timestamps keep increasing across the reconnect"
        assert session.video_relay.sources == 2
        assert states.count("connecting") == 2 and "live" in states
    finally:
        await session.close()
        await recorder.close()
        await first.close()
        await second.close()
        await viewer.close()
    assert [p.name for p in recorder.parts] == ["media-001.mkv", "media-002.mkv"]


async def test_location_only_caller(tmp_path: Path) -> None:
    messages: list[str] = []
    recorder = SessionRecorder(tmp_path / "loc")
    session = MediaSession("loc", None, recorder, messages.append, lambda s: None)
    caller = SyntheticCaller(None)
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        assert session.codec is None
        await wait_for(lambda: caller.channel.readyState == "open", 5)
        caller.channel.send('{"lat": 1}')
        await wait_for(lambda: messages == ['{"lat": 1}'], 3)
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
    assert recorder.parts == []


async def test_viewer_offer_without_common_codec_is_refused(
    h264_clip: Clip, tmp_path: Path
) -> None:
    recorder = SessionRecorder(tmp_path / "x")
    session = MediaSession("x", None, recorder, lambda m: None, lambda s: None)
    caller = SyntheticCaller(h264_clip)
    viewer = RTCPeerConnection()
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        t = viewer.addTransceiver("video", direction="recvonly")
        capabilities = t.receiver.getCapabilities("video")
        assert capabilities is not None
        caps = [c for c in capabilities.codecs if c.mimeType == "video/VP8"]
        t.setCodecPreferences(caps)
        await viewer.setLocalDescription(await viewer.createOffer())
        offer = viewer.localDescription
        with pytest.raises(OperationError):
            await session.add_viewer(RTCSessionDescription(offer.sdp, offer.type))
        assert session.viewer_count == 0
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
        await viewer.close()


async def test_viewer_leaving_is_removed(vp8_clip: Clip, tmp_path: Path) -> None:
    recorder = SessionRecorder(tmp_path / "v")
    session = MediaSession("v", None, recorder, lambda m: None, lambda s: None)
    caller = SyntheticCaller(vp8_clip)
    viewer = Viewer()
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        await viewer.join(session.add_viewer)
        await wait_for(lambda: len(viewer.frames["video"]) >= 5, 5)
        subscribers = session.video_relay.subscriber_count
        await viewer.close()  # the console tab goes away
        await wait_for(lambda: session.viewer_count == 0, 5)
        await wait_for(lambda: session.video_relay.subscriber_count == subscribers - 1, 2)
    finally:
        await session.close()
        await recorder.close()
        await caller.close()


async def test_sender_reports_give_frames_wall_clock_and_events(
    vp8_clip: Clip, tmp_path: Path
) -> None:
    recorder = SessionRecorder(tmp_path / "sr")
    session = MediaSession("sr", None, recorder, lambda m: None, lambda s: None)
    probes = {
        "video": session.video_relay.subscribe(10_000),
        "audio": session.audio_relay.subscribe(10_000),
    }
    caller = SyntheticCaller(vp8_clip)
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        await wait_for(lambda: set(session.sender_reports) == {"video", "audio"}, 6)
        await asyncio.sleep(0.5)
        drained: dict[str, list[EncodedFrame]] = {kind: [] for kind in probes}
        for kind, probe in probes.items():
            while (f := probe.get_nowait()) is not None:
                drained[kind].append(f)
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
    for kind, frames in drained.items():
        timed = [f for f in frames if f.capture_time is not None]
        assert timed, f"{kind}: no frame got a capture time"
        # Loopback: the caller's clock is ours, so capture precedes arrival by little.
        for f in timed:
            assert f.capture_time is not None
            assert -0.05 < f.arrival - f.capture_time < 0.5, kind
    events = [
        json.loads(line) for line in (tmp_path / "sr" / "events.jsonl").read_text().splitlines()
    ]
    sr = [e for e in events if e.get("event") == "rtcp_sr"]
    assert {e["kind"] for e in sr} == {"video", "audio"}
    assert len(sr) == 2, "rate-limited to one per track per interval"
    for e in sr:
        assert abs(e["ntp_time"] - e["arrival"]) < 1.0
        assert e["clock_rate"] == (90000 if e["kind"] == "video" else 48000)


async def test_closing_one_grants_viewers_leaves_the_others(vp8_clip: Clip, tmp_path: Path) -> None:
    recorder = SessionRecorder(tmp_path / "g")
    session = MediaSession("g", None, recorder, lambda m: None, lambda s: None)
    caller = SyntheticCaller(vp8_clip)
    console, officer_a, officer_b = Viewer(), Viewer(), Viewer()
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        await console.join(session.add_viewer)
        for officer in (officer_a, officer_b):
            await officer.pc.setLocalDescription(await officer.pc.createOffer())
            answer = await session.add_viewer(officer.pc.localDescription, grant="share-1")
            await officer.pc.setRemoteDescription(answer)
        await wait_for(lambda: len(officer_b.frames["video"]) >= 5, 5)
        subscribers = session.video_relay.subscriber_count
        assert await session.close_viewers("share-2") == 0
        assert await session.close_viewers("share-1") == 2
        assert session.viewer_count == 1
        await wait_for(lambda: session.video_relay.subscriber_count == subscribers - 2, 5)
        await wait_for(lambda: officer_a.pc.connectionState in ("closed", "failed"), 10)
        stopped = len(officer_a.frames["video"])
        still = len(console.frames["video"])
        await wait_for(lambda: len(console.frames["video"]) >= still + 10, 5)
        assert len(officer_a.frames["video"]) == stopped
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
        for viewer in (console, officer_a, officer_b):
            await viewer.close()


async def test_refused_re_offer_leaves_the_live_caller_connected(
    vp8_clip: Clip, tmp_path: Path
) -> None:
    states: list[str] = []
    recorder = SessionRecorder(tmp_path / "re")
    session = MediaSession("re", None, recorder, lambda m: None, states.append)
    caller = SyntheticCaller(vp8_clip)
    other = SyntheticCaller(vp8_clip)
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        await wait_for(lambda: session.state == "live", 5)
        offer = await other.offer()
        unknown = re.sub(r"a=rtpmap:(\d+) [^/]+/", r"a=rtpmap:\1 FOO/", offer.sdp)
        with pytest.raises(OperationError):  # aiortc's late refusal, past any check of ours
            await session.accept_caller(RTCSessionDescription(unknown, "offer"))
        sent = caller.video.sent if caller.video else 0
        await asyncio.sleep(0.5)
        assert session.state == "live" and states.count("connecting") == 1
        assert session.caller_connections == 1 and caller.pc.connectionState == "connected"
        assert caller.video is not None and caller.video.sent > sent
        assert session.video_relay.stats()["frames_in"] > 0
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
        await other.close()


def test_the_watchdog_looks_on_the_recorders_grid() -> None:
    """The media watchdog's grid (same phase) is part of the recorder's: every time it looks,
    the recorder's batch is due too, so it costs the event loop no wake-up of its own."""
    ratio = GAP_CHECK_S / RECORDER_BATCH_S
    assert ratio >= 1 and ratio == pytest.approx(round(ratio))
