"""The C ingress (streamserver.native._native) against the Python reference, packet by packet.

The same SRTP datagrams go to pylibsrtp + aiortc's RtpPacket.parse (what the pure-Python path
runs) and to the C SrtpReceiver; every packet must come out identical, and every datagram
the reference drops (tampered, replayed, too old, malformed, empty) must be dropped too.
"""

from __future__ import annotations

import logging
import struct
import sys
import time
from types import ModuleType
from typing import Any

import pylibsrtp
import pytest
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from streamserver import native, nativesrtp
from streamserver.fastclock import NTP_UNIX_OFFSET
from streamserver.native import _native
from streamserver.native._native import MAX_DATAGRAM, SrtpReceiver
from tests.streamserver.conftest import extensions_map, unrouted

PROFILES = {  # libsrtp profile: key + salt length
    Policy.SRTP_PROFILE_AES128_CM_SHA1_80: 30,
    Policy.SRTP_PROFILE_AEAD_AES_128_GCM: 28,
    Policy.SRTP_PROFILE_AEAD_AES_256_GCM: 44,
}
SSRC = 0x12345678


def session(profile: int, key: bytes, outbound: bool) -> Session:
    ssrc_type = Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND
    policy = Policy(key=key, ssrc_type=ssrc_type, srtp_profile=profile)
    policy.allow_repeat_tx = True
    policy.window_size = 1024  # as aiortc's
    return Session(policy)


def rtp(seq: int, payload: bytes = b"\x01\x02\x03", **fields: Any) -> bytes:
    """A plain RTP packet; ``fields`` set marker, csrc, extensions or padding."""
    packet = RtpPacket(
        payload_type=fields.get("pt", 96),
        marker=fields.get("marker", 0),
        sequence_number=seq,
        timestamp=fields.get("timestamp", 90 * seq),
        ssrc=SSRC,
        payload=payload,
    )
    packet.csrc = fields.get("csrc", [])
    packet.extensions.mid = fields.get("mid")
    packet.extensions.abs_send_time = fields.get("abs_send_time")
    packet.padding_size = fields.get("padding", 0)
    return packet.serialize(extensions_map())


def reference(rx: Session, data: bytes) -> RtpPacket | None:
    """What the pure-Python path makes of a datagram (None: dropped)."""
    try:
        return RtpPacket.parse(rx.unprotect(data), extensions_map())
    except (pylibsrtp.Error, ValueError, struct.error):
        return None


def through_c(rx: SrtpReceiver, data: bytes) -> RtpPacket | None:
    fields = unrouted(rx.receive(data))
    return None if fields is None else nativesrtp.to_packet(fields, extensions_map())


def same(a: RtpPacket | None, b: RtpPacket | None) -> bool:
    if a is None or b is None:
        return a is b
    return vars(a) == vars(b)


def datagrams(tx: Session, late: Session) -> list[bytes]:
    """A stream with every case the ingress must handle, in arrival order (``late``: a second
    sender with the same key, for a packet the first has moved past)."""
    out = [tx.protect(rtp(seq)) for seq in range(100, 110)]
    out.append(out[3])  # a duplicate
    out.append(tx.protect(rtp(110, marker=1, csrc=[1, 2, 3], mid="0", abs_send_time=12345)))
    out.append(tx.protect(rtp(111, padding=7)))
    out.append(tx.protect(rtp(112, b"")))  # empty payload: a packet, not a frame
    tampered = bytearray(tx.protect(rtp(113)))
    tampered[-1] ^= 1
    out.append(bytes(tampered))
    out.append(tx.protect(rtp(113)))  # the genuine one still gets in afterwards
    bad_padding = bytearray(rtp(114, b"\x05\x06\x00"))
    bad_padding[0] |= 0x20  # padding bit with a zero count: aiortc's parser refuses it
    out.append(tx.protect(bytes(bad_padding)))
    out += [b"", b"\x80", b"\x80\x60" + bytes(40), bytes(200)]  # junk and short datagrams
    # Far ahead, then the packet 1,100 behind it: older than the 1,024-packet replay window.
    out.append(tx.protect(rtp(1300)))
    out.append(late.protect(rtp(200)))
    # The sequence number wraps: libsrtp's rollover counter goes on, in both.
    out += [tx.protect(rtp(seq)) for seq in (20000, 40000, 60000)]
    out += [tx.protect(rtp(seq % 65536)) for seq in range(65530, 65542)]
    return out


@pytest.mark.parametrize("profile", list(PROFILES))
def test_rtp_identical_to_the_python_path(profile: int) -> None:
    key = bytes(range(PROFILES[profile]))
    tx = session(profile, key, outbound=True)
    packets = datagrams(tx, session(profile, key, outbound=True))
    python_rx = session(profile, key, outbound=False)
    c_rx = SrtpReceiver(profile, key)
    results = [(reference(python_rx, d), through_c(c_rx, d)) for d in packets]
    for i, (expected, got) in enumerate(results):
        assert same(expected, got), f"datagram {i}: {expected!r} != {got!r}"
    kept = [got for _, got in results if got is not None]
    seqs = [p.sequence_number for p in kept]
    assert seqs[:10] == list(range(100, 110)) and seqs.count(103) == 1  # duplicate dropped
    assert 200 not in seqs  # behind the replay window
    assert seqs[-12:] == [s % 65536 for s in range(65530, 65542)]  # across the wrap
    assert kept[-1].payload == b"\x01\x02\x03"
    marked = kept[10]
    assert (marked.marker, marked.csrc, marked.extensions.mid) == (1, [1, 2, 3], "0")
    assert marked.extensions.abs_send_time == 12345 and kept[11].padding_size == 7
    # Replayed: the duplicate and the one behind the window. Failing authentication: the
    # tampered packet and two junk datagrams long enough to be tried. Malformed: the bad
    # padding, and the empty and one-byte datagrams.
    assert (c_rx.replayed, c_rx.auth_failed, c_rx.malformed) == (2, 3, 3)
    assert c_rx.packets == len(kept)
    assert c_rx.octets == sum(len(d) for d, (_, got) in zip(packets, results, strict=True) if got)


def test_a_forged_stream_never_gets_in() -> None:
    """Packets under another key fail authentication, in a new stream as in a known one."""
    profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    rx = SrtpReceiver(profile, bytes(30))
    forger = session(profile, bytes(range(30)), outbound=True)
    assert rx.receive(forger.protect(rtp(1))) is None
    assert rx.auth_failed == 1 and rx.packets == 0


@pytest.mark.parametrize("profile", list(PROFILES))
def test_rtcp_identical_to_the_python_path(profile: int) -> None:
    key = bytes(range(1, PROFILES[profile] + 1))
    tx = session(profile, key, outbound=True)
    python_rx = session(profile, key, outbound=False)
    c_rx = SrtpReceiver(profile, key)
    report = struct.pack("!BBHL", 0x80, 200, 6, SSRC) + bytes(20)  # a sender report
    first = tx.protect_rtcp(report)
    second = tx.protect_rtcp(report)
    tampered = bytearray(tx.protect_rtcp(report))
    tampered[10] ^= 0xFF
    for data in (first, second, first, bytes(tampered), b"\x80\xc8"):
        try:
            expected: bytes | None = python_rx.unprotect_rtcp(data)
        except pylibsrtp.Error:
            expected = None
        assert c_rx.unprotect_rtcp(data) == expected
    assert (c_rx.packets, c_rx.replayed, c_rx.auth_failed, c_rx.malformed) == (2, 1, 1, 1)


def test_bounded_buffer_and_error_paths() -> None:
    profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    rx = SrtpReceiver(profile, bytes(30))
    assert rx.receive(b"\x80" + bytes(MAX_DATAGRAM)) is None  # longer than any UDP payload
    assert rx.malformed == 1
    with pytest.raises(TypeError):
        rx.receive("not bytes")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="already"):
        rx.__init__(profile, bytes(30))  # type: ignore[misc]
    with pytest.raises(ValueError, match="30-byte"):
        SrtpReceiver(profile, bytes(16))
    with pytest.raises(ValueError, match="unsupported SRTP profile"):
        SrtpReceiver(999, bytes(30))
    blank = SrtpReceiver.__new__(SrtpReceiver)
    with pytest.raises(RuntimeError, match="not initialised"):
        blank.unprotect_rtcp(bytes(40))


def test_no_extensions_selects_python(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(native.ENV, "1")
    assert native.load() is None
    monkeypatch.setenv(native.ENV, "0")
    loaded = native.load()
    assert isinstance(loaded, ModuleType) and loaded.SrtpReceiver is SrtpReceiver

    monkeypatch.setitem(sys.modules, "streamserver.native._native", None)  # its import now fails
    with caplog.at_level(logging.WARNING, logger=native.__name__):
        assert native.load() is None
    assert [r.message.rsplit(": ", 1)[0] for r in caplog.records] == [
        "streamserver: C extension unavailable, using the Python path"
    ]


class FakeDtls:
    """What attach() reads of an RTCDtlsTransport whose SRTP aiortc set up."""

    def __init__(self, role: str, profile: Any) -> None:
        self._rx_srtp = object()
        self._role = role
        self._srtp_profiles = [profile]
        self._ssl = self
        self._profile = profile

    def get_selected_srtp_profile(self) -> bytes:
        return bytes(self._profile.openssl_profile)

    def export_keying_material(self, label: bytes, length: int) -> bytes:
        assert label == b"EXTRACTOR-dtls_srtp"
        return bytes(range(length))


@pytest.mark.parametrize("role", ["server", "client"])
def test_attach_keys_the_receiver_as_aiortc_keys_its_own(
    role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiortc.rtcdtlstransport import SRTP_AES128_CM_SHA1_80 as profile

    monkeypatch.setattr(native, "NATIVE", _native)  # whatever SCENELINK_NO_EXTENSIONS says
    dtls: Any = FakeDtls(role, profile)
    nativesrtp.attach(dtls)
    receiver = nativesrtp.receiver_of(dtls)
    assert receiver is not None
    material = bytes(range(60))
    own = profile.get_key_and_salt(material, 0 if role == "server" else 1)
    peer = session(profile.libsrtp_profile, own, outbound=True)
    assert through_c(receiver, peer.protect(rtp(7))) is not None


def test_attach_falls_back_to_pylibsrtp(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aiortc.rtcdtlstransport import SRTP_AES128_CM_SHA1_80 as profile

    dtls: Any = FakeDtls("server", profile)
    monkeypatch.setattr(native, "NATIVE", None)
    nativesrtp.attach(dtls)
    assert nativesrtp.receiver_of(dtls) is None

    class Refusing:
        @staticmethod
        def SrtpReceiver(profile: int, key: bytes) -> SrtpReceiver:  # noqa: N802
            raise ValueError("unsupported SRTP profile")

    monkeypatch.setattr(native, "NATIVE", Refusing)
    with caplog.at_level(logging.WARNING, logger=nativesrtp.__name__):
        nativesrtp.attach(dtls)
    assert nativesrtp.receiver_of(dtls) is None
    assert "using pylibsrtp" in caplog.text
    dtls._srtp_profiles = []  # no profile matches what the handshake selected
    monkeypatch.setattr(native, "NATIVE", native.load())
    nativesrtp.attach(dtls)
    assert nativesrtp.receiver_of(dtls) is None


def test_a_holding_assembler_keeps_frames_only_answers_for_python_to_take() -> None:
    key = bytes(range(30))
    profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    tx = session(profile, key, outbound=True)
    rx = SrtpReceiver(profile, key)
    video = _native.Assembler(True, 2, 90000)
    assert rx.route(SSRC, 96, video) is True
    video.hold = True
    before = time.time_ns() // 1_000_000 + NTP_UNIX_OFFSET * 1000
    assert rx.receive(tx.protect(rtp(1, b"\x10\x00\x00\x9d\x01\x2a", timestamp=0))) is None
    assert rx.receive(tx.protect(rtp(2, b"\x00\x01", timestamp=0, marker=1))) is None  # kept
    assert rx.receive(tx.protect(rtp(3, b"\x10\x02", timestamp=3000, marker=1))) is None
    # 5 comes before 4: a NACK to send is not kept (Python must act now) and brings no frame.
    nacked = rx.receive(tx.protect(rtp(5, b"\x10\x03", timestamp=9000, marker=1)))
    assert nacked is not None and len(nacked) == 4
    assert nacked[1] == (False, None, [4])
    held = video.take_held()
    after = time.time_ns() // 1_000_000 + NTP_UNIX_OFFSET * 1000
    assert [answer[1][1] for answer, _, _ in held] == [
        [(96, b"\x00\x00\x9d\x01\x2a\x01", 0, False)],
        [(96, b"\x02", 3000, False)],
    ]
    assert all(before <= arrival <= after for _, arrival, _ in held)
    assert [octets for _, _, octets in held] == [6 + 2, 2]  # as take_octets() then
    assert video.take_held() == [] and video.take_octets() == 2  # packet 5's
    video.hold = False
    assert rx.receive(tx.protect(rtp(4, b"\x10\x04", timestamp=6000, marker=1))) is not None
    with pytest.raises(TypeError):
        video.hold = 1  # type: ignore[assignment]


def test_patched_setup_srtp_attaches() -> None:
    from streamserver import patches
    from streamserver.patches import transport

    patches.install()
    assert RTCDtlsTransport._setup_srtp is transport.setup_srtp


def test_a_routed_stream_goes_to_its_assembler_and_answers_only_when_there_is_work() -> None:
    key = bytes(range(30))
    profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    tx = session(profile, key, outbound=True)
    rx = SrtpReceiver(profile, key)
    assembler = _native.Assembler(False, 0, 48000)  # audio: each packet is a frame
    video = _native.Assembler(True, 2, 90000)
    assert rx.route(SSRC, 96, assembler) is True
    with pytest.raises(TypeError, match="Assembler or None"):
        rx.route(SSRC, 96, "not an assembler")  # type: ignore[arg-type]
    answer = rx.receive(tx.protect(rtp(1, b"opus", abs_send_time=0x123456)))
    assert answer is not None and len(answer) == 4
    ssrc, (pli, frames, nack), ext_profile, ext = answer
    assert (ssrc, pli, frames, nack) == (SSRC, False, [(96, b"opus", 90, False)], None)
    assert extensions_map().get(ext_profile, ext or b"").abs_send_time == 0x123456
    assert assembler.packets_received == 1
    # Another payload type on the routed SSRC, or another SSRC: the fields, as unrouted.
    other = rx.receive(tx.protect(rtp(2, b"x", pt=111)))
    assert other is not None and len(other) == 10 and other[1] == 111
    assert assembler.packets_received == 1
    # A video stream answers None while a frame is incomplete, then the frame.
    assert rx.route(SSRC, 96, video) is True  # replaces the route
    assert rx.receive(tx.protect(rtp(3, b"\x10\x00\x00\x9d\x01\x2a", timestamp=9000))) is None
    done = rx.receive(tx.protect(rtp(4, b"\x00\x01", timestamp=9000, marker=1)))
    assert done is not None and len(done) == 4 and done[1][1] is not None
    assert rx.route(SSRC, 96, None) is True  # unrouted: fields again
    unrouted = rx.receive(tx.protect(rtp(5, timestamp=12000)))
    assert unrouted is not None and len(unrouted) == 10
    # The table holds a few streams; when it is full the caller keeps the stream itself.
    assert all(rx.route(n, 96, _native.Assembler(False, 0, 48000)) for n in range(8))
    assert rx.route(99, 96, assembler) is False
    assert rx.receive(b"\x80") is None and rx.malformed == 1  # dropped, counted, never raised
