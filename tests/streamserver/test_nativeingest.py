"""The C assembler in the receive path: frames out of C, aiortc's handler idle, NACK and RTX
recovery through it, statistics read by aiortc's reports."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack, RTCRtpReceiver, TimestampMapper
from aiortc.rtp import HeaderExtensionsMap
from pylibsrtp import Policy, Session

from bench.synthetic import Clip, SyntheticCaller
from recorder import SessionRecorder
from recorder.library import video_packets
from streamserver import bandwidth, fastpath, ingest, native, nativeingest, patches
from streamserver.ingest import FrameSink
from streamserver.native._native import SrtpReceiver
from streamserver.reassembly import frame_parts
from streamserver.relay import TrackRelay
from streamserver.session import RECORDER_BATCH_S, MediaSession
from tests.streamserver.conftest import extensions_map
from tests.streamserver.test_media_session import wait_for
from tests.streamserver.test_native_ingress import SSRC, rtp, session
from tests.viewer import Viewer, runs_in_order

DROP_EVERY = 37  # of the caller's first transmissions of video packets, on the way in


class Lossy:
    """Drops every DROP_EVERY-th video packet the server gets from the caller, first copies
    only (a retransmission comes on the RTX stream's own SSRC, read from the clear header),
    or every retransmission too (``resent=False``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, resent: bool = True) -> None:
        self.ssrc: int | None = None  # the caller's video SSRC, once known
        self.rtx_ssrc: int | None = None  # its retransmissions', where they are lost too
        self.resent = resent
        self.seen = 0
        self.dropped = 0
        original = fastpath.SrtpFastPath.__call__
        sort_in_c = fastpath.SrtpFastPath.sort_in_c

        def lossy(fast: fastpath.SrtpFastPath, data: bytes) -> None:
            if not self.drops(data):
                original(fast, data)

        def lossy_sockets(fast: fastpath.SrtpFastPath, connection: Any) -> None:
            """On the C path the sockets' Demuxes take the packets: the loss goes before them."""
            sort_in_c(fast, connection)
            for protocol, demux in fast.demuxes:

                def received(data: bytes | str, addr: Any, demux: Any = demux) -> None:
                    if not (isinstance(data, bytes) and self.drops(data)):
                        demux(data, addr)

                protocol.datagram_received = received  # type: ignore[method-assign]

        monkeypatch.setattr(fastpath.SrtpFastPath, "__call__", lossy)
        monkeypatch.setattr(fastpath.SrtpFastPath, "sort_in_c", lossy_sockets)

    def drops(self, data: bytes) -> bool:
        """Every DROP_EVERY-th RTP packet of the caller's video is lost (and every
        retransmission, unless ``resent``)."""
        if not (127 < data[0] < 192 and not 192 <= data[1] <= 223):  # RTP, not RTCP (RFC 5761)
            return False
        ssrc = int.from_bytes(data[8:12], "big")
        if ssrc == self.rtx_ssrc and not self.resent:
            return True
        if self.ssrc is not None and ssrc == self.ssrc:
            self.seen += 1
            if self.seen % DROP_EVERY == 0:
                self.dropped += 1
                return True
        return False


async def lossy_call(clip: Clip, data: Path, lossy: Lossy) -> tuple[list[bytes], int]:
    """The recorded video of one call with loss on the way in (in ``data/media-001.mkv``), and
    how many packets the server's receivers took in C (0 on the Python path)."""
    recorder = SessionRecorder(data)
    session = MediaSession("sess", None, recorder, lambda _: None, lambda _: None)
    caller = SyntheticCaller(clip, loop=False)
    in_c = 0
    try:
        offer = await caller.offer()
        video_sender = next(s for s in caller.pc.getSenders() if s.kind == "video")
        lossy.ssrc, lossy.rtx_ssrc = video_sender._ssrc, video_sender._rtx_ssrc
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


async def test_frames_not_recovered_are_recorded_as_they_came_and_named_on_both_paths(
    vp8_clip: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, c_extension: ModuleType
) -> None:
    """Loss that no retransmission repairs: each frame it touched is given up on after the
    gap wait, recorded as far as it arrived and named in a ``media_loss`` event; every other
    frame is recorded as sent, in order."""
    clip_video = [p.data for p in vp8_clip.video]
    named: dict[str, int] = {}
    for path in ("c", "python"):
        if path == "python":
            monkeypatch.setattr(native, "NATIVE", None)
        lossy = Lossy(monkeypatch, resent=False)
        recorded, _ = await lossy_call(vp8_clip, tmp_path / path, lossy)
        events = [json.loads(line) for line in (tmp_path / path / "events.jsonl").open()]
        after_loss = {
            i
            for e in events
            if e["event"] == "media_loss" and e["kind"] == "video"
            for i in e["frames"]
        }
        marked = [(frame, i in after_loss) for i, frame in enumerate(recorded)]
        assert lossy.dropped > 5
        assert runs_in_order(marked, clip_video), path
        damaged = {i for i, frame in enumerate(recorded) if frame not in clip_video}
        assert damaged and damaged <= after_loss, (path, damaged, after_loss)  # none silently
        named[path] = len(after_loss)
    assert named["c"] == named["python"] >= 5, named


async def test_frames_wait_in_c_while_only_the_recorder_takes_them(
    vp8_clip: Clip, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, c_extension: ModuleType
) -> None:
    """With only the recorder, a caller's frames are kept in C and come to Python a batch at a
    time; a viewer has them at once. The recording is the clip either way."""
    answered: list[object] = []
    original = fastpath.SrtpFastPath.answered

    def counted(self: fastpath.SrtpFastPath, answer: Any) -> None:
        answered.append(answer)
        original(self, answer)

    monkeypatch.setattr(fastpath.SrtpFastPath, "answered", counted)
    recorder = SessionRecorder(tmp_path)
    session = MediaSession("sess", None, recorder, lambda _: None, lambda _: None)
    caller = SyntheticCaller(vp8_clip, loop=False)
    viewer = Viewer()
    try:
        await caller.accept(await session.accept_caller(await caller.offer()))
        assert caller.video is not None
        await wait_for(lambda: caller.video is not None and caller.video.sent >= 45, 20)
        assert session._caller is not None
        routes = [
            route
            for transceiver in session._caller.getTransceivers()
            for route in getattr(transceiver.receiver, nativeingest.ROUTES_ATTR, [])
        ]
        assert len(routes) == 2 and all(r.assembler.hold for r in routes)
        await viewer.join(session.add_viewer)
        await wait_for(lambda: not any(r.assembler.hold for r in routes), 10)  # a viewer
        held_phase = len(answered)
        await wait_for(lambda: caller.video is not None and caller.video.sent >= 90, 20)
        await asyncio.sleep(1.0)
    finally:
        await session.close()
        await recorder.close()
        await caller.close()
        await viewer.close()
    recorded = video_packets(tmp_path / "media-001.mkv")
    assert recorded == [p.data for p in vp8_clip.video]
    # 45 video frames and some 75 audio frames came while held: Python was called for a few.
    assert held_phase < 20, held_phase
    assert len(answered) > held_phase + 45  # then once per frame


class FakeReceiver:
    """The parts of aiortc's RTCRtpReceiver a route reads and calls, recording what it sends."""

    def __init__(self, codecs: dict[int, RTCRtpCodecParameters], rtx: dict[int, int]) -> None:
        self._enabled = True
        self._RTCRtpReceiver__codecs = codecs
        self._RTCRtpReceiver__rtx_ssrc = rtx
        self._RTCRtpReceiver__active_ssrc: dict[int, object] = {}
        self._RTCRtpReceiver__decoder_thread = True
        self._RTCRtpReceiver__decoder_queue = self
        self._RTCRtpReceiver__timestamp_mapper = TimestampMapper()
        self._RTCRtpReceiver__remote_streams: dict[int, object] = {}
        self._RTCRtpReceiver__rtcp_ssrc = 1
        self._RTCRtpReceiver__kind = "video"
        self._RTCRtpReceiver__remote_bitrate_estimator = bandwidth.GroupedBitrateEstimator()
        self.delivered: list[tuple[Any, Any]] = []

    def put(self, item: tuple[Any, Any]) -> None:
        self.delivered.append(item)


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)
RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
)


def fields(seq: int, pt: int, payload: bytes, ext: bytes | None = None, marker: int = 1) -> Any:
    return (marker, pt, seq, 3000 * seq, 5, (), 0xBEDE, ext, payload, 0)


def vp8_route(receiver: FakeReceiver, c_extension: ModuleType) -> nativeingest.StreamRoute:
    routes: dict[int, nativeingest.Route | None] = {}
    route = nativeingest.route_for(
        receiver,  # type: ignore[arg-type]
        5,
        96,
        routes,
        HeaderExtensionsMap(),
        lambda coro: coro.close(),
    )
    assert isinstance(route, nativeingest.StreamRoute)
    return route


def test_a_retransmission_stream_waits_for_its_media_stream_to_be_routed(
    c_extension: ModuleType,
) -> None:
    receiver: Any = FakeReceiver({96: VP8, 97: RTX}, rtx={6: 5})
    routes: dict[int, nativeingest.Route | None] = {}
    # RTX padding before any media packet: undecided (aiortc's path takes it), not "never".
    assert not nativeingest.decidable(receiver, 6, 97, routes)
    assert nativeingest.decidable(receiver, 5, 96, routes)
    routes[5] = vp8_route(receiver, c_extension)
    assert nativeingest.decidable(receiver, 6, 97, routes)
    rtx = nativeingest.route_for(receiver, 6, 97, routes, HeaderExtensionsMap(), print)
    assert isinstance(rtx, nativeingest.RtxRoute) and rtx.media is routes[5]


def test_a_codec_switch_ends_the_route_and_keeps_what_it_held(c_extension: ModuleType) -> None:
    receiver = FakeReceiver({96: VP8, 102: H264}, rtx={})
    route = vp8_route(receiver, c_extension)
    assert route.take(fields(1, 96, b"\x10\x00\x00\x9d\x01\x2a", marker=0), 0)  # held: no marker
    assert receiver.delivered == []
    assert route.take(fields(2, 102, b"\x65\x88"), 0) is False  # the stream is H.264 now
    assert route.closed and [codec for codec, _ in receiver.delivered] == [VP8]
    before = len(receiver.delivered)
    route.take(fields(3, 96, b"\x10\x00"), 0)  # an ended route takes nothing more
    assert len(receiver.delivered) == before and route.assembler.packets_received == 1


def test_a_malformed_extension_block_loses_no_frame(c_extension: ModuleType) -> None:
    receiver = FakeReceiver({96: VP8}, rtx={})
    route = vp8_route(receiver, c_extension)
    assert route.take(fields(1, 96, b"\x10\x00\x00\x9d\x01\x2a", ext=b"\x1f"), 0)
    assert len(receiver.delivered) == 1  # the frame went on; only the estimate had no sample


KEY = bytes(range(30))
PROFILE = Policy.SRTP_PROFILE_AES128_CM_SHA1_80


def held_chain(
    codecs: dict[int, RTCRtpCodecParameters],
) -> tuple[Session, SrtpReceiver, FakeReceiver, dict[int, nativeingest.Route | None]]:
    """A caller's protected packets into the C receiver, routed to a receiver that holds."""
    receiver = FakeReceiver(codecs, rtx={})
    nativeingest.hold(receiver, True)  # type: ignore[arg-type]
    return session(PROFILE, KEY, True), SrtpReceiver(PROFILE, KEY), receiver, {}


def routed(
    receiver: FakeReceiver, rx: SrtpReceiver, routes: dict[int, Any], ssrc: int
) -> nativeingest.StreamRoute:
    route = nativeingest.route_for(
        receiver,  # type: ignore[arg-type]
        ssrc,
        96,
        routes,
        extensions_map(),
        lambda c: c.close(),
        rx,
    )
    assert isinstance(route, nativeingest.StreamRoute) and route.assembler.hold
    routes[ssrc] = route
    return route


def delivered(receiver: FakeReceiver) -> list[bytes]:
    return [data for _, item in receiver.delivered for data, _, _ in frame_parts(item)]


def test_a_receivers_held_frames_go_before_a_new_streams_first(c_extension: ModuleType) -> None:
    """The caller's stream changed SSRC: the new one's first packet reaches Python (to be
    routed) while the old one's frames are held; they go first, as they came."""
    tx, rx, receiver, routes = held_chain({96: VP8})
    old = routed(receiver, rx, routes, SSRC)
    for seq in range(1, 4):
        packet = rtp(seq, b"\x10" + bytes([seq]), timestamp=3000 * seq, marker=1)
        assert rx.receive(tx.protect(packet)) is None  # held
    new = routed(receiver, rx, routes, 0x777)
    new.take(fields(100, 96, b"\x10\x64"), 0)  # as the fast path takes a new stream's first
    assert delivered(receiver) == [b"\x01", b"\x02", b"\x03", b"\x64"]
    assert old.assembler.take_held() == []


def test_a_held_frame_without_a_send_time_carries_its_bytes_to_the_next_sample(
    c_extension: ModuleType,
) -> None:
    tx, rx, receiver, routes = held_chain({96: VP8})
    route = routed(receiver, rx, routes, SSRC)
    sizes: list[int] = []
    estimator = receiver._RTCRtpReceiver__remote_bitrate_estimator
    add = estimator.add

    def noted(
        arrival_time_ms: int, abs_send_time: int, payload_size: int, ssrc: int
    ) -> tuple[int, list[int]] | None:
        sizes.append(payload_size)
        return add(arrival_time_ms, abs_send_time, payload_size, ssrc)

    estimator.add = noted  # type: ignore[method-assign]
    untimed = rtp(1, b"\x10" + b"x" * 99, timestamp=3000, marker=1, mid="0")
    assert rx.receive(tx.protect(untimed)) is None  # held: its 100 bytes give no sample
    nativeingest.hold(receiver, False)  # type: ignore[arg-type]  # a viewer joins
    timed = rtp(2, b"\x10" + b"y" * 9, timestamp=6000, marker=1, abs_send_time=1000)
    answer = rx.receive(tx.protect(timed))
    assert answer is not None and len(answer) == 4
    route.act(answer, 0)
    assert sizes == [110]  # as without holding: the bytes since the last sample


async def test_frames_held_when_the_last_batched_subscriber_leaves_are_its_own(
    c_extension: ModuleType,
) -> None:
    """The recorder finishes while its caller still sends: what was held is in its tail."""
    patches.install()
    tx, rx, receiver, routes = held_chain({96: VP8})
    route = routed(receiver, rx, routes, SSRC)
    track = RemoteStreamTrack(kind="video")
    receiver._RTCRtpReceiver__decoder_queue = FrameSink(track)  # type: ignore[assignment]
    setattr(track, ingest._RECEIVER, receiver)
    relay = TrackRelay("video")
    recorder = relay.subscribe(batch_window=RECORDER_BATCH_S)
    relay.set_source(track)
    await asyncio.sleep(0)
    for seq in range(1, 6):
        payload = b"\x10\x00\x00\x00\x9d\x01\x2a\x10\x00\x10\x00" if seq == 1 else b"\x10\x05"
        assert rx.receive(tx.protect(rtp(seq, payload, timestamp=3000 * seq, marker=1))) is None
    assert route.assembler.hold and relay.frames_in == 0
    recorder.finish()
    got = []
    while (frame := recorder.get_nowait()) is not None:
        got.append(frame)
    assert len(got) == 5 and relay.frames_in == 5
    await relay.stop()
