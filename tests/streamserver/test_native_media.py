"""Both per-packet paths end to end: the same frames, bit for bit, to a viewer and on record.

A synthetic caller plays its clip once into a MediaSession with one viewer and the recorder,
first with the C path (ingress and the viewer's egress), then with the pure-Python path; the
recording and what the viewer got must be identical between the two, frame for frame and
byte for byte.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType

import pytest

from bench.synthetic import Clip, SyntheticCaller
from recorder import SessionRecorder
from recorder.library import video_packets
from streamserver import native, nativesrtp
from streamserver.session import MediaSession
from tests.streamserver.test_media_session import wait_for
from tests.viewer import Viewer

Run = tuple[list[bytes], list[bytes], list[bytes], int, int]


async def one_call(clip: Clip, data: Path) -> Run:
    """Recorded video, the viewer's video and audio, and how many packets C unprotected and
    how many it sent to the viewer."""
    recorder = SessionRecorder(data)
    session = MediaSession("sess", None, recorder, lambda _: None, lambda _: None)
    caller = SyntheticCaller(clip, loop=False)
    viewer = Viewer()
    unprotected = sent = 0
    try:
        # Before the caller: the viewer sees every frame (VP8 is its first choice of codec).
        await viewer.join(session.add_viewer)
        await caller.accept(await session.accept_caller(await caller.offer()))
        assert caller.video is not None
        await wait_for(lambda: caller.video is not None and caller.video.sent >= 90, 20)
        await wait_for(lambda: len(viewer.frames["video"]) >= 90, 10)
        await asyncio.sleep(0.3)
        assert session._caller is not None
        for pc in (viewer.pc, session._caller, *session._viewers):
            for transceiver in pc.getTransceivers():
                receiver = nativesrtp.receiver_of(transceiver.receiver.transport)
                unprotected += 0 if receiver is None else receiver.packets
        for pc in session._viewers:
            for transceiver in pc.getTransceivers():
                sender = nativesrtp.sender_of(transceiver.sender.transport)
                sent += 0 if sender is None else sender.packets
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
        await viewer.close()
    return (
        video_packets(data / "media-001.mkv"),
        [f.data for f in viewer.frames["video"]],
        [f.data for f in viewer.frames["audio"]],
        unprotected,
        sent,
    )


async def test_both_paths_relay_and_record_the_same_frames(
    vp8_clip: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, c_extension: ModuleType
) -> None:
    c_path = await one_call(vp8_clip, tmp_path / "c")
    monkeypatch.setattr(native, "NATIVE", None)
    python_path = await one_call(vp8_clip, tmp_path / "python")
    assert c_path[3] > 2 * len(vp8_clip.video) and python_path[3] == 0
    assert c_path[4] > len(vp8_clip.video) and python_path[4] == 0
    clip_video = [p.data for p in vp8_clip.video]
    assert c_path[0] == python_path[0] == clip_video, "recordings differ"
    assert c_path[1] == python_path[1] == clip_video, "the viewer's video differs"
    assert c_path[2] == python_path[2] and len(c_path[2]) > 100, "the viewer's audio differs"
