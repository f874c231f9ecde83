"""Relay unit tests: bounded queues, keyframe resume, keyframe requests, source switch."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

import pytest
import uvloop
from aiortc import RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from streamserver import ingest, patches
from streamserver.frames import EncodedFrame
from streamserver.ingest import FrameSink
from streamserver.relay import DRAIN_S, GRID_LEAD_S, TrackRelay, grid_point_after


class QueueTrack(MediaStreamTrack):
    """A source track fed by the test (stands in for an ingested RemoteStreamTrack)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue[EncodedFrame | None] = asyncio.Queue()

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        frame = await self.queue.get()
        if frame is None:
            raise MediaStreamError
        return frame


def vframe(i: int, key: bool, arrival: float | None = None) -> EncodedFrame:
    return EncodedFrame(
        kind="video",
        codec="VP8",
        data=bytes([0 if key else 1]) + i.to_bytes(4, "big"),
        pts=i * 3000,
        clock_rate=90000,
        keyframe=key,
        arrival=time.time() if arrival is None else arrival,
    )


async def settle(track: QueueTrack) -> None:
    for _ in range(200):
        if track.queue.empty():
            break
        await asyncio.sleep(0)
    await asyncio.sleep(0)


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


async def test_new_subscriber_starts_at_keyframe_and_requests_one() -> None:
    relay = TrackRelay("video", queue_size=10, keyframe_min_interval=0.0)
    src = QueueTrack("video")
    req = Counter()
    relay.set_source(src, req)
    src.queue.put_nowait(vframe(0, True))
    src.queue.put_nowait(vframe(1, False))
    await settle(src)
    sub = relay.subscribe()
    assert req.calls == 1, "joining must ask the caller for a keyframe"
    for i in range(2, 5):
        src.queue.put_nowait(vframe(i, False))
    src.queue.put_nowait(vframe(5, True))
    src.queue.put_nowait(vframe(6, False))
    first = await asyncio.wait_for(sub.get(), 1)
    second = await asyncio.wait_for(sub.get(), 1)
    assert first is not None and first.keyframe and first.pts == 5 * 3000
    assert second is not None and second.pts == 6 * 3000
    assert req.calls >= 2, "deltas while waiting keep asking (rate-limited)"
    await relay.stop()
    assert await sub.get() is None


async def test_stalled_subscriber_stays_bounded_and_resumes_at_keyframe() -> None:
    relay = TrackRelay("video", queue_size=8, keyframe_min_interval=0.0)
    src = QueueTrack("video")
    req = Counter()
    relay.set_source(src, req)
    stalled = relay.subscribe()
    reader = relay.subscribe()
    got: list[int] = []

    async def read() -> None:
        while (f := await reader.get()) is not None:
            got.append(f.pts // 3000)

    task = asyncio.create_task(read())
    for i in range(100):
        src.queue.put_nowait(vframe(i, i % 30 == 0))
        await asyncio.sleep(0)
        assert stalled.depth <= 8
    await settle(src)
    assert stalled.max_depth <= 8
    assert stalled.lag_events >= 1 and stalled.dropped > 0
    requests_before = req.calls
    assert requests_before >= 2
    # The stalled consumer wakes up: it gets what is queued, then the next keyframe onward.
    drained = []
    while (f := stalled.get_nowait()) is not None:
        drained.append(f)
    assert len(drained) <= 8
    src.queue.put_nowait(vframe(100, False))
    src.queue.put_nowait(vframe(120, True))
    src.queue.put_nowait(vframe(121, False))
    await settle(src)
    resumed = [stalled.get_nowait() for _ in range(stalled.depth)]
    assert resumed and resumed[0] is not None and resumed[0].keyframe
    # The healthy reader received every frame.
    await relay.stop()
    await task
    assert got == list(range(100)) + [100, 120, 121]
    assert relay.stats()["frames_in"] == 103


async def test_audio_subscriber_bounded() -> None:
    relay = TrackRelay("audio", queue_size=5)
    src = QueueTrack("audio")
    relay.set_source(src)
    sub = relay.subscribe()
    for i in range(50):
        src.queue.put_nowait(EncodedFrame("audio", "opus", b"x", i * 960, 48000, True, time.time()))
    await settle(src)
    assert sub.depth <= 5 and sub.dropped >= 45
    await relay.stop()


async def test_source_switch_keeps_pts_increasing() -> None:
    relay = TrackRelay("video", keyframe_min_interval=0.0)
    first = QueueTrack("video")
    relay.set_source(first, Counter())
    sub = relay.subscribe()
    t0 = time.time()
    for i in range(5):
        first.queue.put_nowait(vframe(i, i == 0, t0 + i / 30))
    await settle(first)
    second = QueueTrack("video")
    relay.set_source(second, Counter())
    # New peer connection: aiortc restarts its timestamps at 0; two seconds passed.
    second.queue.put_nowait(vframe(0, False, t0 + 2.0))  # not a keyframe: skipped
    second.queue.put_nowait(vframe(1, True, t0 + 2.0 + 1 / 30))
    await settle(second)
    pts = []
    while (f := sub.get_nowait()) is not None:
        pts.append(f.pts)
    assert len(pts) == 6
    assert pts == sorted(pts) and len(set(pts)) == 6
    # The gap follows the arrival gap (about 2 s - 4/30 s at 90 kHz).
    assert pts[5] - pts[4] == pytest.approx((2.0 + 1 / 30 - 4 / 30) * 90000, abs=2)
    assert relay.sources == 2
    await relay.stop()


async def test_viewer_tracks_share_one_packetization_and_bridge_keyframe_requests() -> None:
    relay = TrackRelay("video", keyframe_min_interval=0.0)
    src = QueueTrack("video")
    req = Counter()
    relay.set_source(src, req)
    tracks = [relay.viewer_track("VP8"), relay.viewer_track("VP8")]
    src.queue.put_nowait(vframe(0, True))
    waiting = [asyncio.create_task(t.recv()) for t in tracks]
    await asyncio.sleep(0.01)
    src.queue.put_nowait(vframe(1, True))
    first, second = await asyncio.wait_for(asyncio.gather(*waiting), 1)
    assert first is second, "one packetization for every viewer"
    assert first.frame.data == vframe(1, True).data and first.timestamp == 3000
    assert first.frame.seq == 2 and relay.packetized.built == 1
    calls = req.calls
    tracks[0].request_keyframe()
    assert req.calls == calls + 1
    for track in tracks:
        track.stop()
    assert relay.subscriber_count == 0
    await relay.stop()


async def test_batched_subscriber_is_woken_once_per_window() -> None:
    relay = TrackRelay("audio", queue_size=50)
    src = QueueTrack("audio")
    relay.set_source(src)
    slow = relay.subscribe(batch_window=1e9)  # its next grid point is decades away
    waiting = asyncio.ensure_future(slow.get())
    await asyncio.sleep(0)  # it is waiting before anything arrives
    for i in range(3):
        src.queue.put_nowait(dataclasses.replace(vframe(i, True), kind="audio"))
    await settle(src)
    assert slow.depth == 3 and not waiting.done(), "frames wait for the window"
    slow.finish()  # the end wakes it at once, and nothing queued is lost
    first = await asyncio.wait_for(waiting, 1)
    rest = [await slow.get(), await slow.get()]
    assert [f.pts for f in [first, *rest] if f is not None] == [0, 3000, 6000]
    assert await slow.get() is None
    quick = relay.subscribe(batch_window=0.001)
    src.queue.put_nowait(dataclasses.replace(vframe(3, True), kind="audio"))
    got = await asyncio.wait_for(quick.get(), 5)
    assert got is not None and got.pts == 9000
    await relay.stop()


async def test_batched_subscribers_are_woken_together_on_a_shared_grid() -> None:
    """A caller's audio and video recorders are woken by timers due at the same instant, the
    next point of their grid (window and phase), however far apart their batches began."""
    window, phase = 0.2, 0.07
    audio, video = TrackRelay("audio", queue_size=50), TrackRelay("video", queue_size=50)
    audio_src, video_src = QueueTrack("audio"), QueueTrack("video")
    audio.set_source(audio_src)
    video.set_source(video_src)
    subs = [audio.subscribe(batch_window=window, batch_phase=phase)]
    subs.append(video.subscribe(batch_window=window, batch_phase=phase))
    waiting = [asyncio.ensure_future(sub.get()) for sub in subs]
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    now = loop.time() - phase
    await asyncio.sleep((math.floor(now / window) + 1) * window - now + 0.01)  # a grid point passed
    started = loop.time()
    audio_src.queue.put_nowait(dataclasses.replace(vframe(0, True), kind="audio"))
    await settle(audio_src)
    await asyncio.sleep(0.03)  # the video batch begins later
    video_src.queue.put_nowait(vframe(0, True))
    await settle(video_src)
    due = [sub._flush.when() for sub in subs if sub._flush is not None]
    assert len(due) == 2 and due[0] == due[1], "one instant for both"
    assert started < due[0] <= started + window + 0.001
    assert (due[0] - phase) / window == pytest.approx(round((due[0] - phase) / window))
    got = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert [f.kind for f in got if f is not None] == ["audio", "video"]
    await audio.stop()
    await video.stop()


async def test_stopping_the_relay_delivers_what_is_queued_then_the_end() -> None:
    """A session ends while the recorder's batch waits: the tail is written, not dropped."""
    relay = TrackRelay("video", queue_size=50)
    src = QueueTrack("video")
    relay.set_source(src)
    recorder = relay.subscribe(batch_window=1e9)
    viewer = relay.subscribe()
    for i in range(4):
        src.queue.put_nowait(vframe(i, i == 0))
    await settle(src)
    assert viewer.depth == 4
    viewer.close()  # a viewer that leaves gives up its queue
    assert viewer.depth == 0 and await viewer.get() is None
    await relay.stop()
    tail = [await recorder.get() for _ in range(5)]
    assert [f.pts if f else None for f in tail] == [0, 3000, 6000, 9000, None]


async def test_frames_that_arrived_before_the_source_ended_are_forwarded_at_stop() -> None:
    """The caller hangs up with frames still queued on its track: they are recorded."""
    relay = TrackRelay("video", queue_size=50)
    src = QueueTrack("video")
    recorder = relay.subscribe(batch_window=1e9)
    relay.set_source(src)
    for i in range(5):
        src.queue.put_nowait(vframe(i, i == 0))
    src.queue.put_nowait(None)  # the connection closed
    await relay.stop()  # at once, before the relay task has read anything
    got = [await recorder.get() for _ in range(6)]
    assert [f.pts if f else None for f in got] == [0, 3000, 6000, 9000, 12000, None]


async def test_stop_cuts_off_a_source_that_is_still_live() -> None:
    relay = TrackRelay("video", queue_size=50)
    relay.set_source(QueueTrack("video"))  # never ends by itself
    viewer = relay.subscribe()
    await asyncio.wait_for(relay.stop(), DRAIN_S + 1)
    assert await viewer.get() is None


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
VP8_KEY = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\x68\x01"  # a VP8 keyframe's header


@pytest.fixture
def patched() -> None:
    """A receiver's track is pushed only with the patches in (its FrameSink feeds it)."""
    patches.install()


def received(i: int, key: bool = False) -> tuple[RTCRtpCodecParameters, JitterFrame]:
    """What a receiver hands its FrameSink: frame ``i`` of a VP8 stream."""
    return VP8, JitterFrame(VP8_KEY if key else bytes([0x11, i]), i * 3000)


async def test_a_receivers_track_hands_each_frame_on_in_its_packets_callback(patched: None) -> None:
    """A caller's track is not read by a task: the frame its last packet completed reaches
    the subscribers in that packet's own callback (no queue, no task switch per frame)."""
    relay = TrackRelay("video", queue_size=50, keyframe_min_interval=0.0)
    track = RemoteStreamTrack(kind="video")
    sink = FrameSink(track)
    sink.put(received(0, key=True))  # before the relay takes the track: it waits
    relay.set_source(track)
    recorder = relay.subscribe(batch_window=1e9)  # in the same step, as the session does
    await asyncio.sleep(0)
    assert recorder.depth == 1  # the waiting frame went first
    sink.put(received(1))
    assert recorder.depth == 2  # no await between: handed on in the same call

    again = RemoteStreamTrack(kind="video")  # the caller reconnects
    again_sink = FrameSink(again)
    relay.set_source(again)
    sink.put(received(2))  # the old connection's last frame: no longer this relay's
    await asyncio.sleep(0)
    again_sink.put(received(0, key=True))
    again_sink.put(received(1))
    again_sink.put(None)  # the new connection closes
    assert not relay.source_live
    await asyncio.wait_for(relay.stop(), DRAIN_S / 2)  # ended: nothing to wait for
    got = [await recorder.get() for _ in range(5)]
    assert got[4] is None
    frames = [f for f in got[:4] if f is not None]
    assert [f.data for f in frames] == [VP8_KEY, b"\x11\x01", VP8_KEY, b"\x11\x01"]
    assert [f.seq for f in frames] == [1, 2, 3, 4]
    assert frames[1].pts < frames[2].pts < frames[3].pts  # on across the reconnect


async def test_a_pushing_source_stopped_at_once_gives_what_it_holds_then_the_end(
    patched: None,
) -> None:
    relay = TrackRelay("video", queue_size=50)
    track = RemoteStreamTrack(kind="video")
    sink = FrameSink(track)
    recorder = relay.subscribe(batch_window=1e9)
    relay.set_source(track)
    for i in range(3):
        sink.put(received(i, key=i == 0))
    await asyncio.wait_for(relay.stop(), DRAIN_S + 1)  # still live: cut off after DRAIN_S
    sink.put(received(3))  # after the stop: not forwarded
    got = [await recorder.get() for _ in range(4)]
    assert [f.pts if f else None for f in got] == [0, 3000, 6000, None]


async def test_a_stop_cancelled_while_it_waits_still_ends_the_subscribers(patched: None) -> None:
    """A session torn down in a hurry cancels the relay's stop during its DRAIN_S wait: the
    recorder must still get its end, or its last part never closes."""
    relay = TrackRelay("video", queue_size=50)
    track = RemoteStreamTrack(kind="video")
    sink = FrameSink(track)
    recorder = relay.subscribe(batch_window=1e9)
    relay.set_source(track)
    sink.put(received(0, key=True))
    stopping = asyncio.ensure_future(relay.stop())
    await asyncio.sleep(DRAIN_S / 4)  # waiting for the live source to end
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    got = [await asyncio.wait_for(recorder.get(), 1) for _ in range(2)]
    assert [f.pts if f else None for f in got] == [0, None]
    sink.put(received(1))  # the track no longer feeds the relay
    assert recorder.depth == 0


async def test_the_source_holds_frames_while_every_subscriber_takes_them_in_batches(
    patched: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the recorder (batches): the source may keep its frames, taken on the recorder's
    grid; a live subscriber (a viewer) has them given at once, after those kept; at stop,
    what was kept goes first."""
    calls: list[tuple[str, bool]] = []
    monkeypatch.setattr(ingest, "hold_frames", lambda track, on: calls.append(("hold", on)))
    monkeypatch.setattr(ingest, "drain_frames", lambda track: calls.append(("drain", True)))
    relay = TrackRelay("video", queue_size=50)
    track = RemoteStreamTrack(kind="video")
    FrameSink(track)
    relay.subscribe(batch_window=0.05, batch_phase=0.01)
    relay.set_source(track)
    assert calls == []  # the source is taken on the next turn of the loop
    await asyncio.sleep(0)
    assert calls == [("hold", True)]
    await asyncio.sleep(0.25)
    assert 2 <= calls.count(("drain", True)) <= 6  # every 50 ms on the grid (a slow machine: late)
    calls.clear()
    viewer = relay.subscribe()
    assert calls == [("hold", False)]  # before the viewer was added: it starts from now
    await asyncio.sleep(0.12)
    assert calls == [("hold", False)]  # no more drains
    viewer.close()
    assert calls[-1] == ("hold", True)
    await relay.stop()
    assert calls[-1] == ("hold", False)


@pytest.mark.parametrize("now", [0.0, 0.05, 0.0995, 12.3456, 1937.4, 86400.001])
def test_a_grid_point_is_the_first_after_now_and_its_lead(now: float) -> None:
    for period, phase in ((0.1, 0.0), (0.1, 0.037), (0.3, 0.099)):
        due = grid_point_after(now, period, phase)
        assert now + GRID_LEAD_S <= due <= now + GRID_LEAD_S + period + 1e-9
        assert (due - phase) / period == pytest.approx(round((due - phase) / period))


def test_timers_on_a_grid_do_not_spin_under_uvloop() -> None:
    """uvloop's clock counts whole milliseconds: a timer due in the first half of one fires
    while the clock reads that millisecond's start, before the grid point it was set for.
    Asked again then, the grid must give the next point, not the same one a moment away."""
    period, phase = 0.05, 0.0502  # every point falls 0.2 ms into a millisecond

    async def wake_on_the_grid() -> int:
        loop = asyncio.get_running_loop()
        end, wakes = loop.time() + 0.5, 0
        while loop.time() < end:
            now = loop.time()
            await asyncio.sleep(grid_point_after(now, period, phase) - now)
            wakes += 1
        return wakes

    wakes = uvloop.run(wake_on_the_grid())
    assert wakes <= 0.5 / period + 2, f"{wakes} wake-ups in 0.5 s on a 50 ms grid"
