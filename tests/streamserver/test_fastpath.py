"""The SRTP fast path: aioice/aiortc internals it relies on, ordering, and a real loopback."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

import aioice.ice as ice
import aioice.stun as stun
import pytest
from aioice import Candidate
from aiortc.rtcdtlstransport import RTCDtlsTransport

from bench.synthetic import Clip
from streamserver import bandwidth, fastpath, nativeingest, patches
from streamserver.patches import transport as patched


def test_patched_internals_still_exist() -> None:
    received = inspect.getsource(patched.ORIGINAL_DATAGRAM_RECEIVED)
    assert "message = stun.parse_message(data)" in received
    assert "self.receiver.data_received(data, self.local_candidate.component)" in received
    assert "self._queue.put_nowait((data, component))" in inspect.getsource(
        patched.ORIGINAL_DATA_RECEIVED
    )
    # What aiortc's reader does with SRTP, which the fast path does in its place.
    reader = inspect.getsource(RTCDtlsTransport._recv_next)
    assert "elif first_byte > 127 and first_byte < 192 and self._rx_srtp:" in reader
    assert "self.__rx_bytes += len(data)" in reader
    assert "self.__rx_packets += 1" in reader
    assert "arrival_time_ms = clock.current_ms()" in reader
    assert "data = self._rx_srtp.unprotect_rtcp(data)" in reader
    assert "await self._handle_rtcp_data(data)" in reader
    assert "data = self._rx_srtp.unprotect(data)" in reader
    rtp = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "packet = RtpPacket.parse(data, self._rtp_header_extensions_map)" in rtp
    assert "receiver = self._rtp_router.route_rtp(packet)" in rtp
    assert "await receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms)" in rtp
    # The reader task starts right after the state turns connected; the fast path waits a turn.
    start = inspect.getsource(RTCDtlsTransport.start)
    assert start.index("self._set_state(State.CONNECTED)") < start.index(
        "self._task = asyncio.ensure_future(self.__run())"
    )
    assert "self._state = state" in inspect.getsource(patched.ORIGINAL_SET_STATE)


def test_install_is_idempotent() -> None:
    patches.install()
    patches.install()
    assert ice.StunProtocol.datagram_received is patched.datagram_received
    assert ice.Connection.data_received is patched.data_received
    assert RTCDtlsTransport._set_state is patched.set_state


class Receiver:
    """Stands in for aioice's Connection behind a StunProtocol: records what reaches it."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.requests: list[stun.Message] = []

    def data_received(self, data: bytes, component: int) -> None:
        self.data.append(data)

    def request_received(self, message: stun.Message, addr: Any, protocol: Any) -> None:
        self.requests.append(message)


async def test_media_skips_the_stun_parser_and_stun_still_parses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patches.install()
    receiver = Receiver()
    protocol = ice.StunProtocol(receiver)  # type: ignore[arg-type]
    protocol.local_candidate = Candidate(
        foundation="1",
        component=1,
        transport="udp",
        priority=1,
        host="127.0.0.1",
        port=9,
        type="host",
    )
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    protocol.datagram_received(bytes(request), ("127.0.0.1", 9))
    assert [m.transaction_id for m in receiver.requests] == [request.transaction_id]

    def no_parse(data: bytes) -> stun.Message:
        raise AssertionError("media was parsed as STUN")

    monkeypatch.setattr(stun, "parse_message", no_parse)
    rtp = b"\x80\x60" + bytes(30)
    dtls = b"\x16\xfe\xfd" + bytes(30)
    protocol.datagram_received(rtp, ("127.0.0.1", 9))
    protocol.datagram_received(dtls, ("127.0.0.1", 9))
    assert receiver.data == [rtp, dtls]


async def test_runner_keeps_arrival_order_across_a_suspended_handler() -> None:
    runner = fastpath.InlineRunner()
    order: list[str] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def quick(name: str) -> None:
        order.append(name)

    async def slow() -> None:
        order.append("slow started")
        await gate
        order.append("slow done")

    runner.run(quick("a"))
    assert order == ["a"]  # ran inline, before anything else
    runner.run(slow())
    runner.run(quick("b"))
    runner.run(quick("c"))
    assert order == ["a", "slow started"]  # b and c wait behind the suspended handler
    assert runner.suspended == 1
    gate.set_result(None)
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["a", "slow started", "slow done", "b", "c"]
    runner.run(quick("d"))
    assert order[-1] == "d"  # inline again once the backlog is drained


async def test_runner_survives_failing_handlers_and_never_drops(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fastpath, "BACKLOG_WARN", 2)
    runner = fastpath.InlineRunner()
    done: list[int] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def fail() -> None:
        raise ValueError("bad packet")

    async def wait_then_fail() -> None:
        await gate
        raise ValueError("bad packet, later")

    async def ok(n: int) -> None:
        done.append(n)

    with caplog.at_level(logging.WARNING, logger="streamserver.fastpath"):
        runner.run(fail())
        runner.run(ok(1))
        runner.run(wait_then_fail())
        for n in (2, 3, 4):
            runner.run(ok(n))
        gate.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)
    assert done == [1, 2, 3, 4]  # a long backlog is reported, never cut
    assert sum("packet handler failed" in r.message for r in caplog.records) == 2
    assert sum("wait behind a suspended handler" in r.message for r in caplog.records) == 1


async def test_real_loopback_goes_through_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
    h264_clip: Clip,
    loopback: Callable[[Clip], Any],
    media_path: str,
) -> None:
    patches.install()
    through_reader: list[bytes] = []
    original = RTCDtlsTransport._handle_rtp_data

    async def counted(self: RTCDtlsTransport, data: bytes, arrival_time_ms: int) -> None:
        through_reader.append(data)
        await original(self, data, arrival_time_ms)

    monkeypatch.setattr(RTCDtlsTransport, "_handle_rtp_data", counted)
    async with loopback(h264_clip) as (_, server, tracks):
        frames = [await asyncio.wait_for(tracks["video"].recv(), 5) for _ in range(20)]
        assert len(frames) == 20
        dtls = server.getTransceivers()[0].receiver.transport
        fast = fastpath.fast_path_of(dtls)
        assert fast is not None and fast.runner.suspended == 0  # every handler ran inline
        assert through_reader == []  # every RTP packet took the fast path
        [transport] = [s for s in dtls._get_stats().values() if s.type == "transport"]
        assert transport.packetsReceived > 20  # counted, whichever way each packet went
        video = next(t.receiver for t in server.getTransceivers() if t.kind == "video")
        estimator = bandwidth.of(video)  # fed by packet groups, not every packet
        assert estimator is not None and 0 < estimator.fed < transport.packetsReceived
        if media_path == "native":  # unprotected, parsed and assembled into frames in C
            assert fast.native is not None and fast.native.packets > 20
            # ... straight from the socket: a Demux sorts each datagram before any Python
            assert fast.demuxes and all(
                vars(protocol)["datagram_received"] is demux for protocol, demux in fast.demuxes
            )
            assert dtls._RTCDtlsTransport__rx_packets == transport.packetsReceived  # folded
            routes = [r for r in fast.routes.values() if isinstance(r, nativeingest.StreamRoute)]
            assert video in [r.receiver for r in routes if r.assembler.packets_received > 20]
        else:
            assert fast.native is None and fast.routes == {}
        # aiortc's receiver reports read the statistics of whichever path took the packets.
        inbound = [s for s in (await video.getStats()).values() if s.type == "inbound-rtp"]
        assert inbound and inbound[0].packetsReceived > 20
        # Junk from anywhere (aioice takes datagrams from any address) is dropped quietly:
        # empty, not decryptable, and SRTP-shaped but too short.
        connection = dtls.transport._connection
        for junk in (b"", b"\x80\x60" + bytes(40), b"\x80"):
            connection.data_received(junk, 1)
            for protocol in connection._protocols:  # as the socket hands it: the Demux
                protocol.datagram_received(junk, ("127.0.0.1", 9))
        if fast.native is not None:  # (the empty one is dropped before it)
            sockets = len(connection._protocols)
            assert (fast.native.malformed, fast.native.auth_failed) == (1 + sockets, 1 + sockets)
        more = [await asyncio.wait_for(tracks["video"].recv(), 5) for _ in range(5)]
        assert [f.pts for f in more] == [frames[-1].pts + 3000 * (i + 1) for i in range(5)]
        protocols = list(connection._protocols)
    assert fastpath.fast_path_of(dtls) is None
    assert fast.demuxes == []  # closed: the sockets' own datagram_received is back
    assert all("datagram_received" not in vars(protocol) for protocol in protocols)
