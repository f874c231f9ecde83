"""The C egress (native._native.SrtpSender) against aiortc's sender, datagram by datagram.

aiortc's sender serializes an RtpPacket per payload and protects it with pylibsrtp; SRTP is
deterministic for a key, SSRC and index, so the C sender's datagrams, read off a real UDP
socket, must equal those byte for byte; so must its retransmissions, plain and RTX-wrapped.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import HeaderExtensions, HeaderExtensionsMap, RtpPacket, wrap_rtx
from pylibsrtp import Policy, Session

from streamserver import nativeegress, nativesrtp, patches
from streamserver.native._native import MAX_DATAGRAM, SrtpSender
from streamserver.patches import sender as patched
from tests.streamserver.conftest import extensions_map, unrouted

KEY = bytes(range(30))
PROFILE = Policy.SRTP_PROFILE_AES128_CM_SHA1_80
SSRC = 0xDEADBEEF


def aiortc_session() -> Session:
    policy = Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=PROFILE)
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def aiortc_packet(seq: int, payload: bytes, marker: int, timestamp: int = 3000) -> RtpPacket:
    """The packet aiortc's _run_rtp builds for one payload."""
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, ssrc=SSRC)
    packet.payload = payload
    packet.marker = marker
    packet.extensions = HeaderExtensions(mid="0", abs_send_time=123456)
    return packet


def aiortc_frame(srtp: Session, seq: int, payloads: list[bytes]) -> list[bytes]:
    """aiortc's datagrams for one frame: serialized, then protected by pylibsrtp."""
    return [
        srtp.protect(
            aiortc_packet((seq + i) % 65536, p, int(i == len(payloads) - 1)).serialize(
                extensions_map()
            )
        )
        for i, p in enumerate(payloads)
    ]


@pytest.fixture
def udp() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(sending socket, receiving socket) on loopback."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # a whole test's datagrams
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    yield tx, rx
    tx.close()
    rx.close()


def c_sender(tx: socket.socket, rx: socket.socket) -> SrtpSender:
    sender = SrtpSender(PROFILE, KEY)
    sender.set_destination(tx.fileno(), "127.0.0.1", rx.getsockname()[1])
    return sender


def send(sender: SrtpSender, seq: int, payloads: list[bytes], direct: bool = True) -> Any:
    profile, extension = extensions_map().set(HeaderExtensions(mid="0", abs_send_time=123456))
    return sender.send_frame(payloads, 96, seq, 3000, SSRC, profile, extension, direct)


def test_frames_identical_to_aiortc_across_the_sequence_wrap(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    tx, rx = udp
    sender, reference = c_sender(tx, rx), aiortc_session()
    frames = [
        (65530, [b"a" * 1200, b"b" * 1200, b"c" * 7]),  # wraps within the next frame
        (65533, [bytes([i]) * 500 for i in range(100)]),  # more than one sendmmsg batch
        (97, [b"single"]),
    ]
    for seq, payloads in frames:
        expected = aiortc_frame(reference, seq, payloads)
        wire, leftovers = send(sender, seq, payloads)
        got = [rx.recv(2048) for _ in payloads]
        assert got == expected and leftovers == []
        assert wire == sum(map(len, expected))
    assert sender.packets == 104 and sender.send_errors == 0
    assert sender.octets == sum(len(p) for _, payloads in frames for p in payloads)


def test_retransmissions_identical_to_aiortc(udp: tuple[socket.socket, socket.socket]) -> None:
    tx, rx = udp
    sender, reference = c_sender(tx, rx), aiortc_session()
    send(sender, 65535, [b"x" * 900, b"y" * 10])
    first, _ = aiortc_frame(reference, 65535, [b"x" * 900, b"y" * 10])
    assert sender.retransmit(65535) == first  # the same datagram again
    rtx = wrap_rtx(aiortc_packet(0, b"y" * 10, 1), payload_type=97, sequence_number=5, ssrc=77)
    assert sender.retransmit(0, (97, 5, 77)) == reference.protect(rtx.serialize(extensions_map()))
    assert sender.retransmit(1) is None  # never sent
    send(sender, 127, [b"z"])  # the same history slot as 65535, newer
    assert sender.retransmit(65535) is None


def test_queued_frames_leave_their_datagrams_to_the_event_loop(
    udp: tuple[socket.socket, socket.socket],
) -> None:
    tx, rx = udp
    sender, reference = c_sender(tx, rx), aiortc_session()
    wire, leftovers = send(sender, 10, [b"q" * 100, b"r" * 100], direct=False)
    assert leftovers == aiortc_frame(reference, 10, [b"q" * 100, b"r" * 100])
    assert wire == sum(map(len, leftovers))


def test_a_full_socket_leaves_the_rest_to_the_event_loop_in_order() -> None:
    """UDP on loopback never blocks (a full receiver drops), so a TCP connection that nobody
    reads stands in for a full socket: sendmmsg sends on it until EAGAIN."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        tx = socket.create_connection(server.getsockname())
        peer, _ = server.accept()
    with tx, peer:
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        tx.setblocking(False)
        sender, reference = SrtpSender(PROFILE, KEY), aiortc_session()
        sender.set_destination(tx.fileno(), "127.0.0.1", 9)  # ignored by a connected stream
        payloads = [bytes([i % 256]) * 1200 for i in range(2000)]  # far more than it takes
        wire, leftovers = send(sender, 20, payloads)
        expected = aiortc_frame(reference, 20, payloads)
        assert wire == sum(map(len, expected)) and sender.send_errors == 0
        unsent = len(leftovers)
        assert 0 < unsent < len(expected) and leftovers == expected[-unsent:]
        peer.settimeout(0.5)
        stream = b""
        try:
            while chunk := peer.recv(1 << 16):
                stream += chunk
        except TimeoutError:
            pass
        # (a stream may take the last datagram sent only in part: UDP never does)
        sent = b"".join(expected[:-unsent])
        assert sent.startswith(stream) and len(stream) > len(sent) - len(expected[0])


def test_send_errors_are_counted_not_raised() -> None:
    fd = os.open(os.devnull, os.O_RDONLY)  # not a socket: every send fails (ENOTSOCK)
    sender = SrtpSender(PROFILE, KEY)
    sender.set_destination(fd, "::1", 9)
    try:
        wire, leftovers = send(sender, 1, [b"a", b"b", b"c"])
    finally:
        os.close(fd)
    # Protected, then lost on the way out, as asyncio's sendto would lose them (and log).
    assert (wire, leftovers, sender.send_errors, sender.packets) == (0, [], 3, 3)


def test_error_paths() -> None:
    sender = SrtpSender(PROFILE, KEY)
    with pytest.raises(RuntimeError, match="no destination"):
        send(sender, 1, [b"a"])
    with pytest.raises(ValueError, match="not an IP address"):
        sender.set_destination(3, "localhost", 9)
    with pytest.raises(ValueError, match="bad socket or port"):
        sender.set_destination(3, "127.0.0.1", 70000)
    sender.set_destination(3, "127.0.0.1", 9)
    with pytest.raises(TypeError, match="payloads must be bytes"):
        send(sender, 1, ["text"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="sequence"):
        send(sender, 1, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="larger than a UDP datagram"):
        send(sender, 1, [bytes(MAX_DATAGRAM)])
    with pytest.raises(ValueError, match="32-bit words"):
        sender.send_frame([b"a"], 96, 1, 0, SSRC, 0xBEDE, b"abc", True)
    with pytest.raises(RuntimeError, match="already"):
        sender.__init__(PROFILE, KEY)  # type: ignore[misc]
    with pytest.raises(ValueError, match="30-byte"):
        SrtpSender(PROFILE, bytes(3))
    assert sender.packets == 0  # nothing was built by a refused call
    blank = SrtpSender.__new__(SrtpSender)
    with pytest.raises(RuntimeError, match="not initialised"):
        blank.retransmit(1)


class FakeTransport:
    def __init__(self, sock: socket.socket | None) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


class FakePair:
    def __init__(self, sock: socket.socket | None) -> None:
        self.protocol = type("Protocol", (), {"transport": FakeTransport(sock)})()
        self.remote_addr = ("127.0.0.1", 9)


class FakeDtls:
    def __init__(self, pair: FakePair | None, sender: SrtpSender | None) -> None:
        connection = type("Connection", (), {"_nominated": {1: pair} if pair else {}})()
        self.transport = type("Ice", (), {"_connection": connection})()
        setattr(self, nativesrtp.SENDER_ATTR, sender)


def test_route_is_c_only_for_a_plain_udp_pair(udp: tuple[socket.socket, socket.socket]) -> None:
    tx, _ = udp
    sender = SrtpSender(PROFILE, KEY)
    direct: Any = FakeDtls(FakePair(tx), sender)
    route = nativeegress.route(direct)
    assert route is not None and route[0] is sender
    assert nativeegress.route(direct) == route  # the destination is set once per pair
    relayed: Any = FakeDtls(FakePair(None), sender)  # aioice's TurnTransport has no socket
    assert nativeegress.route(relayed) is None
    unconnected: Any = FakeDtls(None, sender)
    assert nativeegress.route(unconnected) is None
    without_c: Any = FakeDtls(FakePair(tx), None)
    assert nativeegress.route(without_c) is None


def test_sender_patches_are_installed() -> None:
    patches.install()
    assert RTCRtpSender._run_rtp is patched.run_rtp
    assert RTCRtpSender._retransmit is patched.retransmit


async def test_a_nack_is_answered_on_both_paths(
    media_path: str,
    vp8_clip: Any,
    loopback: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller's video sender answers a NACK with the packet, RTX-wrapped (aiortc offers
    RTX), which the server's receiver decrypts; on the C path from the C history."""
    patches.install()
    sent: list[int] = []
    send_frame = nativeegress.send_frame

    def recording(*args: Any) -> int:
        sent.append(args[4])  # the frame's first sequence number
        return send_frame(*args)

    monkeypatch.setattr(nativeegress, "send_frame", recording)
    async with loopback(vp8_clip) as (caller, server, tracks):
        for _ in range(5):
            await asyncio.wait_for(tracks["video"].recv(), 5)
        video = next(t for t in caller.pc.getTransceivers() if t.kind == "video").sender
        dtls = video.transport
        history = video._RTCRtpSender__rtp_history
        if media_path == "native":
            assert nativesrtp.sender_of(dtls) is not None and history == {}  # C sent them all
            seq = sent[-1]
        else:
            assert sent == [] and history
            seq = max(history.values(), key=lambda p: p.timestamp).sequence_number
        datagrams: list[bytes] = []

        async def capture(data: bytes) -> None:
            datagrams.append(data)

        monkeypatch.setattr(dtls.transport, "_send", capture)
        await video._retransmit(seq)
        monkeypatch.undo()
        assert len(datagrams) == 1
        server_dtls = server.getTransceivers()[0].receiver.transport
        rx = nativesrtp.receiver_of(server_dtls)
        if rx is None:
            packet = RtpPacket.parse(server_dtls._rx_srtp.unprotect(datagrams[0]))
        else:
            fields = unrouted(rx.receive(datagrams[0]))
            assert fields is not None
            packet = nativesrtp.to_packet(fields, HeaderExtensionsMap())
        assert packet.ssrc == video._rtx_ssrc and packet.payload[:2] == seq.to_bytes(2, "big")


class QueuedTransport:
    """An event loop transport that still holds datagrams: C must not send ahead of them."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Any]] = []

    def get_write_buffer_size(self) -> int:
        return 1

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append((data, addr))


def test_send_frame_queues_behind_the_event_loop_and_keeps_aiortc_counters() -> None:
    from types import SimpleNamespace

    from aiortc.rtcdtlstransport import State

    pair = SimpleNamespace(remote_addr=("127.0.0.1", 9))
    dtls = SimpleNamespace(
        _state=State.CONNECTED,
        transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair})),
        _RTCDtlsTransport__tx_bytes=0,
        _RTCDtlsTransport__tx_packets=0,
    )
    sender: Any = SimpleNamespace(
        transport=dtls,
        _ssrc=SSRC,
        _RTCRtpSender__mid="0",
        _RTCRtpSender__rtp_header_extensions_map=extensions_map(),
        _RTCRtpSender__ntp_timestamp=0,
        _RTCRtpSender__rtp_timestamp=0,
        _RTCRtpSender__octet_count=0,
        _RTCRtpSender__packet_count=0,
    )
    c = SrtpSender(PROFILE, KEY)
    c.set_destination(3, "127.0.0.1", 9)  # never used: the loop's transport sends
    loop_transport = QueuedTransport()
    frame: Any = SimpleNamespace(payloads=[b"a" * 10, b"b" * 20])
    assert nativeegress.send_frame(sender, (c, loop_transport), 96, frame, 65535, 3000) == 1
    decrypt = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=PROFILE))
    packets = [
        RtpPacket.parse(decrypt.unprotect(d), extensions_map()) for d, _ in loop_transport.sent
    ]
    assert [(p.sequence_number, p.marker, p.payload) for p in packets] == [
        (65535, 0, b"a" * 10),
        (0, 1, b"b" * 20),
    ]
    assert {addr for _, addr in loop_transport.sent} == {("127.0.0.1", 9)}
    assert packets[0].extensions.mid == "0" and packets[0].extensions.abs_send_time is not None
    assert (sender._RTCRtpSender__packet_count, sender._RTCRtpSender__octet_count) == (2, 30)
    assert sender._RTCRtpSender__rtp_timestamp == 3000
    assert dtls._RTCDtlsTransport__tx_packets == 2
    assert dtls._RTCDtlsTransport__tx_bytes == sum(len(d) for d, _ in loop_transport.sent)
    dtls._state = State.CLOSED
    with pytest.raises(ConnectionError):
        nativeegress.send_frame(sender, (c, loop_transport), 96, frame, 1, 3000)
