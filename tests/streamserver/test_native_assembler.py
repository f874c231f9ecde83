"""The C Assembler against the Python receive path it replaces (issue 17).

The reference is what aiortc's RTCRtpReceiver does with one packet after its codec lookup,
with SceneLink's CompletingJitterBuffer: StreamStatistics.add, NackGenerator.add, depayload,
then the buffer's add. Both are fed the same seeded streams of real H.264, VP8 and Opus
payloads, impaired (loss, reordering, duplicates, retransmissions within and after the gap
wait, wraps, restarts, overflow, stale replays, padding, malformed payloads), on the same
clock moved by hand, and must give the same answer to every packet and the same statistics
(jitter aside: it follows the wall clock).
"""

from __future__ import annotations

import gc
import random
import tracemalloc
from dataclasses import dataclass
from typing import Any

import pytest
from aiortc.codecs import depayload
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import VpxPayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

from streamserver.reassembly import CompletingJitterBuffer, ReceivedFrame, is_stale
from tests.streamserver.conftest import Clock

try:
    from streamserver.native._native import Assembler
except ImportError:  # not built: the Python path is all there is
    pytest.skip("the C extension streamserver.native._native is not built", allow_module_level=True)

Frame = tuple[int, bytes, int, bool]  # payload type, data, RTP timestamp, after loss
Result = tuple[bool, list[Frame] | None, list[int] | None]
Packet = tuple[int, int, bool, int, bytes]  # seq, timestamp, marker, payload type, payload

PAYLOAD_TYPE = {"H264": 102, "VP8": 96, "opus": 111}
CODECS = {
    "H264": RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102),
    "VP8": RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
    "opus": RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, payloadType=111),
}
DEPAYLOADER = {"H264": 1, "VP8": 2, "opus": 0}
MALFORMED = {  # payloads aiortc's depayloaders refuse (ValueError)
    "H264": [b"\x65", b"\x19\x00", b"\x1f\xff", b"\x18\x00", b"\x18\x00\x05\x67\x42"],
    "VP8": [b"\x90", b"\x90\x80", b"\x90\x80\x81", b"\x90\x40", b"\x90\x20"],
    "opus": [],
}


class RecordingBuffer(CompletingJitterBuffer):
    """CompletingJitterBuffer noting each frame it lets out with its first packet's type."""

    def __init__(self, capacity: int, is_video: bool) -> None:
        super().__init__(capacity, is_video=is_video)
        self.log: list[Frame] = []
        self.stale_dropped = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq, origin = packet.sequence_number, self._origin
        if origin is not None and is_stale(packet.timestamp, self._released):
            self.stale_dropped += uint16_add(origin, -seq) < uint16_add(seq, -origin)
        return super().add(packet)

    def _release(self, run: list[RtpPacket], frames: list[ReceivedFrame]) -> None:
        before = len(frames)
        super()._release(run, frames)
        if len(frames) > before:
            frame = frames[-1]
            self.log.append((run[0].payload_type, frame.data, frame.timestamp, frame.after_loss))


class Reference:
    """aiortc's receive handler from the codec lookup on, with SceneLink's buffer."""

    def __init__(self, kind: str) -> None:
        self.codec = CODECS[kind]
        video = kind != "opus"
        self.stats = StreamStatistics(self.codec.clockRate)
        self.nack = NackGenerator() if video else None
        self.buffer = RecordingBuffer(512 if video else 16, is_video=video)
        self.refused = 0

    def add(self, packet: Packet, stats: bool) -> Result:
        seq, timestamp, marker, payload_type, payload = packet
        rtp = RtpPacket(
            payload_type=payload_type,
            marker=int(marker),
            sequence_number=seq,
            timestamp=timestamp,
            payload=payload,
        )
        if stats:
            self.stats.add(rtp)
        nack = None
        if self.nack is not None and self.nack.add(rtp):
            nack = sorted(self.nack.missing)
        try:
            rtp._data = depayload(self.codec, payload) if payload else b""  # type: ignore[attr-defined]
        except ValueError:
            self.refused += 1
            return False, None, nack
        pli, frame = self.buffer.add(rtp)
        frames, self.buffer.log = self.buffer.log, []
        returned = [] if frame is None else getattr(frame, "_frames", [frame])
        assert [(f.data, f.timestamp) for f in returned] == [(d, t) for _, d, t, _ in frames]
        return pli, frames or None, nack

    def flush(self) -> list[Frame]:
        flushed = self.buffer.flush()
        self.buffer.log = []
        return [(pt, f.data, f.timestamp, f.after_loss) for pt, f in flushed]  # type: ignore[attr-defined]


def h264_frame(rng: random.Random, key: bool) -> list[bytes]:
    """Real H.264 RTP payloads (single NAL, STAP-A, FU-A) from aiortc's packetizer."""
    if key:
        nals = [b"\x67" + rng.randbytes(12), b"\x68" + rng.randbytes(4)]
        nals.append(b"\x65" + rng.randbytes(rng.randrange(1000, 4000)))
    else:
        nals = [b"\x41" + rng.randbytes(rng.randrange(20, 2800))]
        if rng.random() < 0.2:  # a second slice: small ones go together in a STAP-A
            nals.append(b"\x41" + rng.randbytes(rng.randrange(20, 200)))
    return H264Encoder._packetize(nals)


def vp8_frame(rng: random.Random, picture_id: int, key: bool) -> list[bytes]:
    """VP8 RTP payloads as aiortc's packetizer lays them out (a long PictureID)."""
    data = rng.randbytes(rng.randrange(3000, 6000) if key else rng.randrange(50, 2500))
    chunks = [data[i : i + 1200] for i in range(0, len(data), 1200)]
    return [
        bytes(
            VpxPayloadDescriptor(partition_start=int(i == 0), partition_id=0, picture_id=picture_id)
        )
        + chunk
        for i, chunk in enumerate(chunks)
    ]


@dataclass
class Seen:
    """What the streams exercised, summed over seeds: each must have happened."""

    packets: int = 0
    pli: int = 0
    nacks: int = 0
    batches: int = 0
    refused: int = 0
    flushed: int = 0
    stale_dropped: int = 0
    after_loss: int = 0
    whole: int = 0


def feed(seed: int, kind: str, clock: Clock, seen: Seen) -> None:
    """One seeded, impaired stream through both; every answer must be the same."""
    rng = random.Random(seed)
    video = kind != "opus"
    c = Assembler(video, DEPAYLOADER[kind])
    ref = Reference(kind)
    pt = PAYLOAD_TYPE[kind]
    seq = rng.choice([rng.randrange(65536), 65536 - rng.randrange(1, 400)])  # may wrap soon
    ts = rng.choice([rng.randrange(1 << 32), (1 << 32) - rng.randrange(1, 300_000)])
    step = 3000 if video else 960
    octets = 0
    history: list[Packet] = []
    whole: set[bytes] = set()  # every frame sent, as it depayloads when all of it arrives
    resend: list[tuple[float, Packet]] = []  # lost packets the sender repeats (NACK)
    late: list[Packet] = []  # reordered: arrive after the next frame's

    def send(packet: Packet, stats: bool = True) -> None:
        nonlocal octets
        start = ref.buffer._expected is None
        got = c.add(*packet, clock.now, stats)
        want = ref.add(packet, stats)
        assert got == want, (seed, kind, packet[:4], clock.now)
        octets += len(packet[4]) if stats else 0
        seen.packets += 1
        seen.pli += got[0]
        seen.nacks += got[2] is not None
        seen.batches += got[1] is not None and len(got[1]) > 1
        for frame in got[1] or []:
            seen.after_loss += frame[3]
            seen.whole += not frame[3]
            # Never silently short: a frame not after loss is one sent, whole. (Before any run
            # was taken out, packets lost ahead of the first to arrive cannot be known.)
            assert start or frame[3] or frame[1] in whole, (seed, kind, packet[:4])
        s = ref.stats
        assert (c.packets_received, c.base_seq, c.max_seq, c.cycles) == (
            s.packets_received,
            s.base_seq,
            s.max_seq,
            s.cycles,
        )
        if s.base_seq is not None:
            assert (c.packets_expected, c.packets_lost) == (s.packets_expected, s.packets_lost)

    def stream(frames: int) -> None:
        nonlocal seq, ts
        for number in range(frames):
            clock.now += step / CODECS[kind].clockRate
            if rng.random() < 0.06:
                clock.now += rng.uniform(0.1, 0.6)  # a stall: gaps may be given up
            for when, packet in [r for r in resend if r[0] <= clock.now]:
                resend.remove((when, packet))
                send(packet, stats=rng.random() < 0.2)  # mostly unwrapped from RTX
            for packet in late:
                send(packet)
            late.clear()
            restarted = True
            if rng.random() < 0.02:  # the sender starts afresh behind: aiortc resets
                seq = (seq - rng.randrange(100, 32000)) & 0xFFFF
            elif rng.random() < 0.002:  # or far ahead (NACK tracks all in between: rare)
                seq = (seq + rng.randrange(3000, 0x8000)) & 0xFFFF
            else:
                restarted = False
            if restarted:  # its clock anywhere, or a little behind (its frames look stale)
                ts = rng.choice([rng.randrange(1 << 32), ts - rng.randrange(1, 1 << 24)])
                ts &= 0xFFFFFFFF
            origin = ref.buffer._origin
            if rng.random() < 0.012:  # a burst lost beyond the buffer (> 512 packets)
                seq = (seq + rng.randrange(513, 1200)) & 0xFFFF
            elif origin is not None and rng.random() < 0.01:  # just beyond: a partial removal
                seq = (origin + 512 + rng.randrange(0, 8)) & 0xFFFF
            if kind == "H264":
                payloads = h264_frame(rng, number % 30 == 0)
            elif kind == "VP8":
                payloads = vp8_frame(rng, (seed + number) & 0x7FFF, number % 30 == 0)
            else:
                payloads = [rng.randbytes(rng.randrange(20, 160))]
            if MALFORMED[kind] and rng.random() < 0.05:
                payloads[rng.randrange(len(payloads))] = rng.choice(MALFORMED[kind])
            else:
                whole.add(b"".join(depayload(CODECS[kind], p) for p in payloads))
            packets: list[Packet] = []
            frame_pt = pt if rng.random() < 0.9 else pt + 1  # a second payload type
            for i, payload in enumerate(payloads):
                marker = i == len(payloads) - 1 if video else rng.random() < 0.1
                if video and rng.random() < 0.03:
                    marker = False  # a sender that omits the marker
                packets.append((seq, ts, marker, frame_pt if i else pt, payload))
                seq = (seq + 1) & 0xFFFF
            if rng.random() < 0.05:  # padding only, after the frame
                packets.append((seq, ts, False, pt, b""))
                seq = (seq + 1) & 0xFFFF
            for packet in packets:
                history.append(packet)
                roll = rng.random()
                if roll < 0.06:  # lost; usually resent, within or after the gap wait
                    if rng.random() < 0.8:
                        resend.append((clock.now + rng.choice([0.05, 0.2, 0.4, 0.9]), packet))
                    continue
                if roll < 0.10:
                    late.append(packet)
                    continue
                send(packet)
                if roll > 0.97:
                    send(packet)  # duplicated
            if len(history) > 150 and rng.random() < 0.04:  # a stale repeat far behind
                send(history[-rng.randrange(110, min(len(history), 400))])
            origin = ref.buffer._origin
            if origin is not None and rng.random() < 0.02:  # a stray new packet, about
                behind = rng.choice([99, 100, 101])  # MAX_MISORDER behind: reset or not
                send(((origin - behind) & 0xFFFF, rng.randrange(1 << 32), True, pt, payloads[0]))
            if ref.stats.base_seq is not None and rng.random() < 0.1:
                assert c.fraction_lost == ref.stats.fraction_lost  # both move the prior counts
            ts = (ts + step * rng.choice([1, 1, 1, 2])) & 0xFFFFFFFF
        if rng.random() < 0.5:  # the stream ends behind a gap: a frame is left held
            send(((seq + 1) & 0xFFFF, ts, True, pt, payloads[0]))
            seq = (seq + 2) & 0xFFFF

    stream(rng.randrange(25, 60))
    flushed = c.flush()
    assert flushed == ref.flush()
    assert all(lost or data in whole for _, data, _, lost in flushed), (seed, kind)
    seen.flushed += len(flushed)
    stream(rng.randrange(2, 6))  # the buffer goes on after a flush
    assert c.flush() == ref.flush()
    assert c.flush() == [] == ref.flush()
    assert c.take_octets() == octets
    assert c.take_octets() == 0
    assert c.jitter >= 0
    seen.refused += ref.refused
    seen.stale_dropped += ref.buffer.stale_dropped


@pytest.mark.parametrize("kind", list(CODECS))
def test_identical_to_the_python_receive_path(kind: str, clock: Clock) -> None:
    seen = Seen()
    for seed in range(300 if kind == "opus" else 100):  # audio is cheap, and holds less
        feed(seed, kind, clock, seen)
    # The streams reached every path: otherwise agreeing would prove little.
    assert seen.packets > 8_000
    assert min(seen.batches, seen.flushed, seen.stale_dropped, seen.after_loss) > 40, seen
    assert seen.whole > seen.after_loss, seen
    if kind != "opus":  # audio is not NACKed, and Opus has no payload header to refuse
        assert min(seen.pli, seen.nacks, seen.refused) > 200, seen


def test_take_octets_counts_payload_bytes_with_stats_only() -> None:
    c = Assembler(False, 0)
    assert c.take_octets() == 0
    c.add(1, 960, False, 111, b"abcd", 0.0)
    c.add(2, 1920, False, 111, b"ef", 0.0, True)
    c.add(3, 2880, False, 111, b"ghijk", 0.0, False)  # unwrapped from RTX: not counted
    assert c.take_octets() == 6
    assert c.take_octets() == 0
    assert c.packets_received == 2


def test_h264_frames_come_out_as_annex_b_with_the_first_packets_type() -> None:
    c = Assembler(True, 1)
    assert c.add(65535, 0, False, 102, b"\x7c\x85\xaa", 0.0) == (False, None, None)  # FU-A
    pli, frames, nack = c.add(0, 0, True, 103, b"\x7c\x45\xbb", 0.0)
    assert (pli, frames, nack) == (
        False,
        [(102, b"\x00\x00\x00\x01\x65\xaa\xbb", 0, False)],
        None,
    )
    assert c.add(2, 3000, True, 102, b"\x41\x01", 0.0) == (False, None, [1])  # 1 is missing
    assert c.add(3, 3000, False, 102, b"\x19\x00", 0.0) == (False, None, None)  # refused
    assert (c.base_seq, c.max_seq, c.cycles, c.packets_expected) == (65535, 3, 65536, 5)


def test_flush_empties_the_buffer() -> None:
    c = Assembler(True, 2)
    c.add(10, 0, False, 96, b"\x10ab", 0.0)
    c.add(12, 0, True, 96, b"\x00cd", 0.0)  # 11 lost: held
    assert c.flush() == [(96, b"abcd", 0, True)]  # after loss: 11 never came
    assert c.flush() == []
    assert c.add(13, 3000, True, 96, b"\x10e", 0.0)[1] == [(96, b"e", 3000, False)]
    assert Assembler(False, 0).flush() == []


def test_statistics_before_any_packet() -> None:
    c = Assembler(True, 1)
    assert (c.packets_received, c.base_seq, c.max_seq, c.cycles, c.jitter) == (0, None, None, 0, 0)
    assert (c.packets_expected, c.packets_lost, c.fraction_lost) == (0, 0, 0)


def test_loss_statistics_clamp_as_aiortc_does() -> None:
    """Seven thousand packets, each 0x7000 numbers on: 2**23 lost, beyond the 24-bit field."""
    c = Assembler(False, 0)
    stats = StreamStatistics(48000)
    for n in range(7000):
        seq = n * 0x7000 & 0xFFFF
        c.add(seq, 0, False, 111, b"x", 0.0)
        stats.add(RtpPacket(sequence_number=seq, payload=b"x"))
    assert stats.packets_lost == (1 << 23) - 1 < stats.packets_expected - stats.packets_received
    assert (c.cycles, c.packets_expected, c.packets_lost) == (
        stats.cycles,
        stats.packets_expected,
        stats.packets_lost,
    )
    assert c.fraction_lost == stats.fraction_lost > 0


def test_bad_arguments_raise() -> None:
    c = Assembler(True, 1)
    good: list[Any] = [1, 0, False, 102, b"\x41\x00", 0.0]
    for i, bad in enumerate(["1", 0.5, "no", None, "payload", "now"]):
        args = [*good]
        args[i] = bad
        with pytest.raises(TypeError):
            c.add(*args)
    for i, bad in [(0, 65536), (0, -1), (1, 1 << 32), (3, 128), (0, 1 << 70)]:
        args = [*good]
        args[i] = bad
        with pytest.raises(ValueError):
            c.add(*args)
    with pytest.raises(TypeError):
        c.add(*good[:5])
    with pytest.raises(TypeError):
        c.add(*good, True, 1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Assembler("video", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Assembler(True, 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Assembler(True, 3)
    with pytest.raises(RuntimeError):
        c.__init__(True, 1)  # type: ignore[misc]
    bare = Assembler.__new__(Assembler)
    with pytest.raises(RuntimeError):
        bare.add(*good)
    assert c.packets_received == 0  # nothing was counted


def test_no_memory_is_kept_beyond_the_buffer() -> None:
    """Packets are freed as their frames leave, gaps' notes as the buffer moves past them, and
    everything with the Assembler (all PyMem allocations: tracemalloc sees them)."""
    rng = random.Random(3)
    payloads = [b"\x41" + rng.randbytes(rng.randrange(10, 1200)) for _ in range(64)]

    def run(c: Assembler, start: int) -> None:
        for n in range(start, start + 1500):  # ends on a complete frame, its gaps given up
            if n % 50 != 7:  # lost for good
                ts = (n // 3 * 3000) & 0xFFFFFFFF
                c.add(n & 0xFFFF, ts, n % 3 == 2, 102, payloads[n % 64], n / 100)

    gc.collect()
    tracemalloc.start()
    try:
        c = Assembler(True, 1)
        run(c, 0)
        first = tracemalloc.get_traced_memory()[0]
        for start in range(1500, 15000, 1500):
            run(c, start)
        assert tracemalloc.get_traced_memory()[0] - first < 2048
        held = tracemalloc.get_traced_memory()[0]
        del c
        assert tracemalloc.get_traced_memory()[0] < held
    finally:
        tracemalloc.stop()
