"""The C assembler in the receive path: frames out of C, aiortc's handler idle, NACK and RTX
recovery through it, statistics read by aiortc's reports."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiortc.rtcrtpreceiver import RTCRtpReceiver

from bench.synthetic import Clip, SyntheticCaller
from recorder import SessionRecorder
from recorder.library import video_packets
from streamserver import fastpath, native, nativeingest
from streamserver.session import MediaSession
from tests.streamserver.test_media_session import wait_for

DROP_EVERY = 37  # of the caller's first transmissions of video packets, on the way in


class Lossy:
    """Drops every DROP_EVERY-th video packet the server gets from the caller, first copies
    only (a retransmission comes on the RTX stream's own SSRC, read from the clear header)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ssrc: int | None = None  # the caller's video SSRC, once known
        self.seen = 0
        self.dropped = 0
        original = fastpath.SrtpFastPath.__call__

        def lossy(fast: fastpath.SrtpFastPath, data: bytes) -> None:
            if self.ssrc is not None and int.from_bytes(data[8:12], "big") == self.ssrc:
                if not 192 <= data[1] <= 223:  # RTP, not RTCP (RFC 5761)
                    self.seen += 1
                    if self.seen % DROP_EVERY == 0:
                        self.dropped += 1
                        return
            original(fast, data)

        monkeypatch.setattr(fastpath.SrtpFastPath, "__call__", lossy)


async def lossy_call(clip: Clip, data: Path, lossy: Lossy) -> tuple[list[bytes], int]:
    """The recorded video of one call with loss on the way in, and how many packets the
    server's receivers took in C (0 on the Python path)."""
    recorder = SessionRecorder(data)
    session = MediaSession("sess", None, recorder, lambda _: None, lambda _: None)
    caller = SyntheticCaller(clip, loop=False)
    in_c = 0
    try:
        offer = await caller.offer()
        video_sender = next(s for s in caller.pc.getSenders() if s.kind == "video")
        lossy.ssrc = video_sender._ssrc
        await caller.accept(await session.accept_caller(offer))
        assert caller.video is not None
        await wait_for(lambda: caller.video is not None and caller.video.sent >= 90, 20)
        await asyncio.sleep(1.0)  # the last retransmissions
        assert session._caller is not None
        for transceiver in session._caller.getTransceivers():
            routes: list[nativeingest.StreamRoute] = getattr(
                transceiver.receiver, nativeingest.ROUTES_ATTR, []
            )
            in_c += sum(r.assembler.packets_received for r in routes)
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
    return video_packets(data / "media-001.mkv"), in_c


async def test_lost_packets_come_back_by_nack_and_rtx_on_both_paths(
    vp8_clip: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, c_extension: ModuleType
) -> None:
    handled_by_aiortc: list[int] = []
    original = RTCRtpReceiver._handle_rtp_packet

    async def counted(self: RTCRtpReceiver, packet: Any, arrival_time_ms: int) -> None:
        handled_by_aiortc.append(packet.ssrc)
        await original(self, packet, arrival_time_ms)

    monkeypatch.setattr(RTCRtpReceiver, "_handle_rtp_packet", counted)
    lossy = Lossy(monkeypatch)
    c_recorded, c_in_c = await lossy_call(vp8_clip, tmp_path / "c", lossy)
    c_dropped, c_aiortc = lossy.dropped, len(handled_by_aiortc)
    monkeypatch.setattr(native, "NATIVE", None)
    lossy = Lossy(monkeypatch)
    handled_by_aiortc.clear()
    py_recorded, py_in_c = await lossy_call(vp8_clip, tmp_path / "python", lossy)
    clip_video = [p.data for p in vp8_clip.video]
    assert c_dropped > 5 and lossy.dropped > 5, (c_dropped, lossy.dropped)  # on both
    assert c_in_c > 2 * len(clip_video) and py_in_c == 0
    assert c_aiortc == 0, "the C path handed packets to aiortc's handler"
    assert len(handled_by_aiortc) > 2 * len(clip_video)
    assert c_recorded == py_recorded == clip_video, "a lost packet was not recovered"
