"""A synthetic caller: an aiortc peer that sends a pre-encoded clip without encoding.

Tests and the load generator need a caller that behaves like a phone (one codec, real-time
pacing, keyframes every second, Opus audio, a "location" data channel) while costing almost no
CPU, so the clip is encoded once with PyAV, cached on disk, and then only re-packetized.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.stream import Stream

VIDEO_CLOCK = 90000
AUDIO_CLOCK = 48000
_RECORD = struct.Struct(">IqB")


@dataclass(frozen=True, slots=True)
class ClipPacket:
    """One encoded frame of the clip; pts in clock-rate units (90 kHz video, 48 kHz audio)."""

    data: bytes
    pts: int
    keyframe: bool


@dataclass(frozen=True, slots=True)
class Clip:
    """A short pre-encoded clip that a synthetic caller loops."""

    codec: str  # "H264" or "VP8"
    width: int
    height: int
    fps: int
    video: list[ClipPacket]
    audio: list[ClipPacket]

    @property
    def duration_s(self) -> float:
        return len(self.video) / self.fps


def _write_packets(path: Path, packets: list[ClipPacket]) -> None:
    with path.open("wb") as f:
        for p in packets:
            f.write(_RECORD.pack(len(p.data), p.pts, int(p.keyframe)))
            f.write(p.data)


def _read_packets(path: Path) -> list[ClipPacket]:
    buf = path.read_bytes()
    out: list[ClipPacket] = []
    pos = 0
    while pos < len(buf):
        size, pts, key = _RECORD.unpack_from(buf, pos)
        pos += _RECORD.size
        out.append(ClipPacket(buf[pos : pos + size], pts, bool(key)))
        pos += size
    return out


FrameMaker = Callable[[int, int, int], av.VideoFrame]  # (width, height, index) -> a frame


def _make_frame(width: int, height: int, index: int) -> av.VideoFrame:
    """A moving test pattern built without numpy (vertical bars, a sliding box, chroma ramp)."""
    frame = av.VideoFrame(width, height, "yuv420p")
    y_plane, u_plane, v_plane = frame.planes
    stride = y_plane.line_size
    shift = index * 4
    bars = bytes(((x + shift) * 2) & 0xFF for x in range(stride))
    box = bytes(
        235 if (x + shift * 2) % width < 80 else ((x + shift) * 2) & 0xFF for x in range(stride)
    )
    rows = []
    for y in range(height):
        rows.append(box if (y + index) % height < 60 else bars)
    y_plane.update(b"".join(rows))
    for plane, base in ((u_plane, index * 3), (v_plane, 255 - index * 3)):
        cstride = plane.line_size
        chroma = bytes((base + x) & 0xFF for x in range(cstride))
        plane.update(chroma * (height // 2))
    frame.pts = index
    frame.time_base = fractions.Fraction(1, 30)
    return frame


def _encode_video(
    codec: str,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    bit_rate: int = 800_000,
    make_frame: FrameMaker = _make_frame,
) -> list[ClipPacket]:
    if codec == "H264":
        ctx = av.CodecContext.create("libx264", "w")
        ctx.options = {
            "profile": "baseline",
            "preset": "ultrafast",
            "tune": "zerolatency",
            "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:annexb=1:repeat-headers=1",
        }
    elif codec == "VP8":
        ctx = av.CodecContext.create("libvpx", "w")
        ctx.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        ctx.gop_size = fps
    else:
        raise ValueError(f"unsupported synthetic codec {codec}")
    assert isinstance(ctx, av.VideoCodecContext)
    ctx.width = width
    ctx.height = height
    ctx.pix_fmt = "yuv420p"
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.time_base = fractions.Fraction(1, fps)
    ctx.bit_rate = bit_rate
    ctx.gop_size = fps
    out: list[ClipPacket] = []
    frames = [make_frame(width, height, i) for i in range(int(seconds * fps))]
    for i, frame in enumerate(frames + [None]):
        for pkt in ctx.encode(frame):
            pts = pkt.pts if pkt.pts is not None else i
            out.append(ClipPacket(bytes(pkt), pts * VIDEO_CLOCK // fps, pkt.is_keyframe))
    return out


def _encode_audio(seconds: float) -> list[ClipPacket]:
    ctx = av.CodecContext.create("libopus", "w")
    assert isinstance(ctx, av.AudioCodecContext)
    ctx.sample_rate = AUDIO_CLOCK
    ctx.layout = "stereo"
    ctx.format = "s16"
    ctx.bit_rate = 32000
    ctx.time_base = fractions.Fraction(1, AUDIO_CLOCK)
    samples = 960
    out: list[ClipPacket] = []
    count = int(seconds * AUDIO_CLOCK / samples)
    for i in range(count + 1):
        frame: av.AudioFrame | None = None
        if i < count:
            frame = av.AudioFrame(format="s16", layout="stereo", samples=samples)
            tone = b"".join(
                struct.pack("<hh", v, v)
                for v in (
                    int(8000 * math.sin(2 * math.pi * 440 * (i * samples + n) / AUDIO_CLOCK))
                    for n in range(samples)
                )
            )
            frame.planes[0].update(tone)
            frame.sample_rate = AUDIO_CLOCK
            frame.pts = i * samples
            frame.time_base = fractions.Fraction(1, AUDIO_CLOCK)
        for pkt in ctx.encode(frame):
            if len(out) >= count:
                break
            out.append(ClipPacket(bytes(pkt), len(out) * samples, True))
    return out


def build_clip(
    codec: str,
    cache_dir: Path,
    *,
    seconds: float = 3.0,
    width: int = 640,
    height: int = 360,
    fps: int = 30,
    bit_rate: int = 800_000,
) -> Clip:
    """Encode (once; cached in ``cache_dir``) a clip in ``codec`` ("H264" or "VP8") plus Opus."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{codec.lower()}-{width}x{height}-{fps}-{seconds:g}"
    if bit_rate != 800_000:
        stem += f"-{bit_rate // 1000}k"
    vpath = cache_dir / f"{stem}.video"
    apath = cache_dir / f"audio-{seconds:g}.opus"
    if not vpath.exists():
        tmp = vpath.with_suffix(".tmp")
        _write_packets(tmp, _encode_video(codec, width, height, fps, seconds, bit_rate))
        tmp.replace(vpath)
    if not apath.exists():
        tmp = apath.with_suffix(".tmp")
        _write_packets(tmp, _encode_audio(seconds))
        tmp.replace(apath)
    return Clip(codec, width, height, fps, _read_packets(vpath), _read_packets(apath))


def clip_of_frames(
    codec: str, make_frame: FrameMaker, width: int, height: int, fps: int, seconds: float
) -> Clip:
    """A clip of given pictures (a test's own, e.g. one with a face), encoded as a phone
    would (keyframe every second) with the usual Opus tone; not cached."""
    video = _encode_video(codec, width, height, fps, seconds, make_frame=make_frame)
    return Clip(codec, width, height, fps, video, _encode_audio(seconds))


class PacketTrack(MediaStreamTrack):
    """Returns the clip's packets as av.Packet in real time, looping with increasing pts."""

    def __init__(
        self,
        kind: str,
        packets: list[ClipPacket],
        clock_rate: int,
        period_ticks: int,
        loop: bool = True,
    ) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._clock_rate = clock_rate
        self._period = period_ticks
        self._repeat = loop
        self._index = 0
        self._start: float | None = None
        self.sent = 0
        self.keyframe_requests = 0
        self.on_sent: Callable[[int, float], None] | None = None
        """Called with (clip index, time.time()) as each packet leaves for the sender."""

    def request_keyframe(self) -> None:
        """Reached through RTCRtpSender._send_keyframe (PLI/FIR) once ingest is installed.

        A pre-encoded clip cannot make a keyframe on demand; counting lets tests check
        that viewers' PLIs reach the caller.
        """
        self.keyframe_requests += 1

    async def recv(self) -> av.Packet[Stream]:
        if self.readyState != "live":
            raise MediaStreamError
        n = len(self._packets)
        if not self._repeat and self._index >= n:
            self.stop()
            raise MediaStreamError
        lap, i = divmod(self._index, n)
        src = self._packets[i]
        pts = src.pts + lap * self._period
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + pts / self._clock_rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self._index += 1
        self.sent += 1
        if self.on_sent is not None:
            self.on_sent(i, time.time())
        packet = av.Packet(src.data)
        packet.pts = pts
        packet.dts = pts
        packet.time_base = fractions.Fraction(1, self._clock_rate)
        return packet


def _prefer(sender_kind: str, mime: str) -> list[RTCRtpCodecCapability]:
    caps = RTCRtpSender.getCapabilities(sender_kind)
    chosen = [c for c in caps.codecs if c.mimeType.lower() == mime.lower()]
    return chosen + [c for c in caps.codecs if c.mimeType.lower() == f"{sender_kind}/rtx"]


class SyntheticCaller:
    """An aiortc client peer connection that streams a Clip like a phone browser would."""

    def __init__(
        self,
        clip: Clip | None,
        *,
        loop: bool = True,
        rtc_config: RTCConfiguration | None = None,
    ) -> None:
        self.clip = clip
        self.pc = RTCPeerConnection(rtc_config)
        self.channel: RTCDataChannel = self.pc.createDataChannel("location")
        self.received: list[str] = []
        self.channel.on("message", self._on_message)
        self.video: PacketTrack | None = None
        self.audio: PacketTrack | None = None
        if clip is not None:
            period = len(clip.video) * VIDEO_CLOCK // clip.fps
            self.video = PacketTrack("video", clip.video, VIDEO_CLOCK, period, loop)
            audio_period = len(clip.audio) * 960
            self.audio = PacketTrack("audio", clip.audio, AUDIO_CLOCK, audio_period, loop)
            vt = self.pc.addTransceiver(self.video, direction="sendonly")
            vt.setCodecPreferences(_prefer("video", f"video/{clip.codec}"))
            self.pc.addTransceiver(self.audio, direction="sendonly")

    def _on_message(self, message: object) -> None:
        if isinstance(message, str):
            self.received.append(message)

    async def offer(self) -> RTCSessionDescription:
        """Create the offer (ICE gathered, as aiortc does not trickle)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription

    async def accept(self, answer: RTCSessionDescription) -> None:
        await self.pc.setRemoteDescription(answer)

    async def close(self) -> None:
        await self.pc.close()
