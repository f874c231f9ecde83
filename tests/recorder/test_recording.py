"""SessionRecorder muxes relayed frames into Matroska without encoding."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.synthetic import AUDIO_CLOCK, VIDEO_CLOCK, Clip
from recorder import SessionRecorder, media_duration
from recorder.library import video_packets
from recorder.recording import _written
from streamserver.frames import EncodedFrame, is_keyframe, vp8_dimensions
from streamserver.relay import TrackRelay
from tests.recorder.feed import PacedTrack, stream


def nal_units(data: bytes) -> list[bytes]:
    return [n.strip(b"\x00") for n in data.split(b"\x00\x00\x01") if n.strip(b"\x00")]


def decode_counts(path: Path) -> tuple[int, int]:
    """(video frames, audio frames) decoded by PyAV: the part must be playable."""
    with av.open(str(path)) as container:
        frames = list(container.decode(*container.streams))
    video = sum(isinstance(f, av.VideoFrame) for f in frames)
    return video, len(frames) - video


class ListTrack(MediaStreamTrack):
    """Yields prepared EncodedFrames as fast as they are read, then ends."""

    def __init__(self, kind: str, frames: list[EncodedFrame]) -> None:
        super().__init__()
        self.kind = kind
        self._frames = list(frames)

    async def recv(self) -> EncodedFrame:  # type: ignore[override]
        if not self._frames:
            raise MediaStreamError
        await asyncio.sleep(0)
        return self._frames.pop(0)


def clip_frames(clip: Clip, t0: float) -> tuple[list[EncodedFrame], list[EncodedFrame]]:
    video = [
        EncodedFrame(
            "video",
            clip.codec,
            p.data,
            p.pts,
            VIDEO_CLOCK,
            is_keyframe(clip.codec, p.data),
            t0 + p.pts / VIDEO_CLOCK,
        )
        for p in clip.video
    ]
    audio = [
        EncodedFrame("audio", "opus", p.data, p.pts, AUDIO_CLOCK, True, t0 + p.pts / AUDIO_CLOCK)
        for p in clip.audio
    ]
    return video, audio


async def record_clip(clip: Clip, folder: Path, parts: int = 1) -> SessionRecorder:
    rec = SessionRecorder(folder)
    for _ in range(parts):
        vrelay = TrackRelay("video", queue_size=1000)
        arelay = TrackRelay("audio", queue_size=1000)
        rec.attach(vrelay.subscribe(), arelay.subscribe())
        video, audio = clip_frames(clip, time.time())
        vrelay.set_source(ListTrack("video", video))
        arelay.set_source(ListTrack("audio", audio))
        async with asyncio.timeout(60):  # generous: CI machines are shared and slow
            while vrelay.frames_in < len(video) or arelay.frames_in < len(audio):
                await asyncio.sleep(0.01)
        await vrelay.stop()
        await arelay.stop()
    return rec


@pytest.mark.parametrize("codec", ["H264", "VP8"])
async def test_part_is_bit_exact_and_decodes_to_clip_duration(
    codec: str, clips: dict[str, Clip], tmp_path: Path
) -> None:
    clip = clips[codec]
    rec = await record_clip(clip, tmp_path / "s1")
    await rec.close()
    assert rec.errors == []
    part = tmp_path / "s1" / "media-001.mkv"
    assert rec.parts == [part]
    assert rec.frames_recorded == len(clip.video) + len(clip.audio)
    events = [json.loads(line) for line in (tmp_path / "s1" / "events.jsonl").open()]
    [totals] = [e for e in events if e.get("event") == "recording_totals"]
    assert totals["video"] == {
        "taken": len(clip.video),
        "dropped": 0,
        "written": len(clip.video),
        "skipped": 0,
        "lost": 0,
    }
    assert totals["audio"]["written"] == len(clip.audio) == totals["audio"]["taken"]
    recorded = video_packets(part)
    sent = [p.data for p in clip.video]
    if codec == "H264":
        assert [nal_units(p) for p in recorded] == [nal_units(p) for p in sent]
    else:
        assert recorded == sent
    frames_v, frames_a = decode_counts(part)
    assert frames_v == len(clip.video)
    assert frames_a >= len(clip.audio) - 2
    assert media_duration(part) == pytest.approx(clip.duration_s, abs=1.0)
    events = [json.loads(x) for x in (tmp_path / "s1" / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in events] == [
        "recording_part_started",
        "recording_part_finished",
        "recording_totals",
    ]
    assert events[0]["width"] == clip.width and events[0]["height"] == clip.height


async def test_each_attach_is_a_new_part_and_jsonl_files(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    folder = tmp_path / "sess-42"
    rec = await record_clip(clips["VP8"], folder, parts=2)
    rec.append_fix({"lat": 51.5, "lon": -0.12, "accuracy": 8.0})
    rec.append_fix({"lat": 51.6, "lon": -0.13, "accuracy": 9.0})
    rec.append_event({"event": "viewer_joined", "at": "2026-12-07T10:00:00+00:00", "by": "a"})
    await rec.close()
    await rec.close()  # idempotent
    assert [p.name for p in rec.parts] == ["media-001.mkv", "media-002.mkv"]
    fixes = (folder / "location.jsonl").read_text().splitlines()
    assert [json.loads(f)["lat"] for f in fixes] == [51.5, 51.6]
    recorded = sum(media_duration(part) for part in rec.parts)
    assert recorded == pytest.approx(2 * clips["VP8"].duration_s, abs=1.0)


async def test_waits_for_first_keyframe(clips: dict[str, Clip], tmp_path: Path) -> None:
    clip = clips["H264"]
    video, audio = clip_frames(clip, time.time())
    rec = SessionRecorder(tmp_path / "s")
    vrelay = TrackRelay("video", queue_size=1000)
    arelay = TrackRelay("audio", queue_size=1000)
    vsub, asub = vrelay.subscribe(), arelay.subscribe()
    vsub.waiting_keyframe = False  # let deltas through to the recorder itself
    rec.attach(vsub, asub)
    vrelay.set_source(ListTrack("video", video[5:]))
    arelay.set_source(ListTrack("audio", audio))
    await asyncio.sleep(0.5)
    await rec.close()
    await vrelay.stop()
    await arelay.stop()
    recorded = video_packets(tmp_path / "s" / "media-001.mkv")
    assert nal_units(recorded[0]) == nal_units(video[30].data)
    assert video[30].keyframe


async def test_frames_that_came_after_loss_are_on_the_record(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    """A frame the server got only part of is recorded as it arrived, and the evidence says
    which one it is; every other frame is as the phone sent it."""
    clip = clips["VP8"]
    video, audio = clip_frames(clip, time.time())
    video = [replace(f, after_loss=i in (0, 7, 40)) for i, f in enumerate(video)]
    audio = [replace(f, after_loss=i == 20) for i, f in enumerate(audio)]
    rec = SessionRecorder(tmp_path / "s")
    vrelay = TrackRelay("video", queue_size=1000)
    arelay = TrackRelay("audio", queue_size=1000)
    rec.attach(vrelay.subscribe(), arelay.subscribe())
    vrelay.set_source(ListTrack("video", video))
    arelay.set_source(ListTrack("audio", audio))
    async with asyncio.timeout(60):
        while vrelay.frames_in < len(video) or arelay.frames_in < len(audio):
            await asyncio.sleep(0.01)
    await vrelay.stop()
    await arelay.stop()
    await rec.close()
    events = [json.loads(line) for line in (tmp_path / "s" / "events.jsonl").open()]
    names = [e["event"] for e in events]
    losses = [e for e in events if e["event"] == "media_loss"]
    # After the part is on the record as started, before it is finished.
    assert names.index("recording_part_started") < names.index("media_loss")
    assert max(i for i, n in enumerate(names) if n == "media_loss") < names.index(
        "recording_part_finished"
    )
    named = {
        (e["kind"], i, t) for e in losses for i, t in zip(e["frames"], e["time_s"], strict=True)
    }
    assert {e["part"] for e in losses} == {"media-001.mkv"}
    written: dict[str, list[tuple[float, bytes]]] = {"video": [], "audio": []}
    with av.open(str(tmp_path / "s" / "media-001.mkv")) as container:
        for packet in container.demux():
            if packet.size and packet.pts is not None:
                kind = packet.stream.type
                written[kind].append((float(packet.pts * packet.time_base), bytes(packet)))
    assert {(kind, i) for kind, i, _ in named} == {
        ("video", 0),
        ("video", 7),
        ("video", 40),
        ("audio", 20),
    }
    for kind, i, time_s in named:  # the index and time a reader of the part finds it at
        source = video if kind == "video" else audio
        assert written[kind][i] == (pytest.approx(time_s, abs=0.0011), source[i].data)
    assert [data for _, data in written["video"]] == [f.data for f in video]


def test_vp8_dimensions(clips: dict[str, Clip]) -> None:
    assert vp8_dimensions(clips["VP8"].video[0].data) == (640, 360)
    with pytest.raises(ValueError):
        vp8_dimensions(clips["VP8"].video[1].data)


async def test_frames_the_recorder_never_got_are_on_the_record(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    """A recorder starved so long that its bounded queue overflowed says so in the evidence."""
    clip = clips["VP8"]
    video, _ = clip_frames(clip, time.time() - 60)
    relay = TrackRelay("video", queue_size=4000)
    rec = SessionRecorder(tmp_path / "starved")
    rec.attach(relay.subscribe(maxsize=8), None)
    relay.set_source(PacedTrack("video", video))  # all due already: read in one burst
    await asyncio.sleep(0.5)
    await relay.stop()
    await rec.close()
    events = [json.loads(line) for line in (tmp_path / "starved" / "events.jsonl").open()]
    overruns = [e for e in events if e.get("event") == "recording_overrun"]
    assert overruns and overruns[0]["kind"] == "video"
    assert overruns[-1]["frames_dropped_total"] > 0
    assert rec.frames_recorded + overruns[-1]["frames_dropped_total"] >= len(video) - 1
    [totals] = [e["video"] for e in events if e.get("event") == "recording_totals"]
    assert totals["dropped"] == overruns[-1]["frames_dropped_total"]
    assert totals["taken"] == totals["written"] + totals["skipped"] == rec.frames_recorded
    assert totals["taken"] + totals["dropped"] == relay.frames_in


async def test_audio_before_the_first_keyframe_is_kept(
    clips: dict[str, Clip], tmp_path: Path
) -> None:
    """The phone's audio starts a little before its first keyframe arrives: none is lost."""
    clip = clips["VP8"]
    t0 = time.time()
    video, audio = clip_frames(clip, t0)
    rec = SessionRecorder(tmp_path / "early")
    vrelay = TrackRelay("video", queue_size=1000)
    arelay = TrackRelay("audio", queue_size=1000)
    rec.attach(vrelay.subscribe(), arelay.subscribe())
    arelay.set_source(ListTrack("audio", audio[:10]))
    async with asyncio.timeout(10):
        while arelay.frames_in < 10:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # the recorder has them before any video
    later = [replace(f, arrival=f.arrival + 0.2) for f in video]
    vrelay.set_source(ListTrack("video", later))
    await asyncio.sleep(0.5)
    await vrelay.stop()
    await arelay.stop()
    await rec.close()
    assert rec.totals["audio"]["written"] == 10 and rec.totals["audio"]["skipped"] == 0
    with av.open(str(tmp_path / "early" / "media-001.mkv")) as container:
        audio_packets = [p for p in container.demux(audio=0) if p.size]
    assert len(audio_packets) == 10
    first = audio_packets[0]
    assert first.pts is not None
    assert float(first.pts * first.time_base) < 0.05  # at its own time


async def test_a_batch_written_before_the_next_costs_the_loop_no_wake_up(
    clips: dict[str, Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread does not call back into the event loop for each batch it writes (a
    wake-up of an idle server costs more than the write): the recorder looks at the batch
    before only when the next one comes, and waits only if it is still being written."""
    loop = asyncio.get_running_loop()
    calls = 0
    original = loop.call_soon_threadsafe

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    rec = SessionRecorder(tmp_path / "s1")
    await rec.flush()  # its folder is set up
    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    await stream(rec, clips["H264"], 1.5)  # paced: each frame a batch of its own
    monkeypatch.undo()
    await rec.close()
    assert rec.errors == []
    assert rec.frames_recorded > 80
    assert calls < rec.frames_recorded / 4, f"{calls} wake-ups for {rec.frames_recorded} frames"


async def test_a_cancelled_wait_for_a_write_leaves_the_write_to_go_on() -> None:
    """A recording cancelled while it waits for its writer (its close was cancelled) must not
    take a batch of evidence that is still queued for the writer with it."""
    executor = ThreadPoolExecutor(1)
    gate = threading.Event()
    written: list[int] = []
    executor.submit(gate.wait)  # the writer is busy with the batch before
    writing = executor.submit(written.append, 1)
    waiting = asyncio.ensure_future(_written(writing))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    gate.set()
    await asyncio.to_thread(executor.shutdown, True)
    assert written == [1] and not writing.cancelled()
