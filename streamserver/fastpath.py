"""SRTP straight from the socket callback to the receiver: no queue, no task switch per packet.

In aiortc every datagram is first tried as a STUN message (an exception for each media
packet), queued by aioice, and picked up by the DTLS transport's reader task, which wakes,
awaits through four coroutine layers, decrypts and routes it. For a forwarding server that
plumbing cost about a quarter of the CPU spent on each caller. Here, once a DTLS transport is
connected, its ICE connection hands SRTP/SRTCP datagrams (first byte 128-191, RFC 7983)
straight to an SrtpFastPath, which decrypts, parses and routes them as aiortc's reader does
and runs the receiver's handler inline. With aioice 0.13.0 the handlers never suspend (their
RTCP sends are socket writes; TURN's channel binds run in tasks of their own); should one ever
do, it and everything after it finish in a task, in arrival order. A malformed packet is
logged and dropped, never raised into the socket callback. DTLS and STUN keep aiortc's path.
These are private internals of aiortc 1.16.0 and aioice 0.13.0, covered by
tests/streamserver/test_fastpath.py; streamserver.patches.install() puts the fast path in
aioice's and aiortc's way (patches/transport.py).
"""

from __future__ import annotations

import asyncio
import logging
import struct
import types
from collections import deque
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

import aioice.ice as ice
import aiortc.clock as clock
import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket, is_rtcp

from . import native, nativeingest, nativesrtp

if TYPE_CHECKING:
    from .native import Assembled, Demux, RtpFields

logger = logging.getLogger(__name__)

FAST_PATH_ATTR = "_scenelink_fast_path"  # on aioice's Connection: the SrtpFastPath, or None
STUN_FIRST_BYTES = 4  # RFC 7983: a STUN message starts with 0-3
BACKLOG_WARN = 4096  # packets held behind a suspended handler (~20 s of one caller)

Handler = Coroutine[Any, Any, None]


@types.coroutine
def _finish(coro: Handler, yielded: Any) -> Generator[Any, None, None]:
    """Go on running ``coro`` inside a task, from the await where it first suspended."""
    while True:
        try:
            yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation included: it belongs to ``coro``
            try:
                yielded = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                yielded = coro.send(None)
            except StopIteration:
                return


class InlineRunner:
    """Runs handler coroutines at once, in order; any that suspends finishes in a task.

    While one is suspended, later ones wait their turn in a backlog, so packets are handled in
    the order they arrived, as aiortc's single reader task would; like aiortc's queue it has no
    limit (a packet is evidence), but a long one is logged.
    """

    def __init__(self) -> None:
        self._backlog: deque[Handler] | None = None  # not None while a task is draining
        self._task: asyncio.Task[None] | None = None
        self.suspended = 0  # handlers that had to finish in a task

    def run(self, coro: Handler) -> None:
        if self._backlog is not None:
            self._backlog.append(coro)
            if len(self._backlog) == BACKLOG_WARN:
                logger.warning("fastpath: %d packets wait behind a suspended handler", BACKLOG_WARN)
            return
        try:
            yielded = coro.send(None)
        except StopIteration:
            return
        except (Exception, asyncio.CancelledError):
            logger.exception("fastpath: packet handler failed")
            return
        self.suspended += 1
        self._backlog = deque()
        self._task = asyncio.ensure_future(self._drain(coro, yielded))

    async def _drain(self, coro: Handler, yielded: Any) -> None:
        backlog = self._backlog
        assert backlog is not None
        try:
            await self._guarded(_finish(coro, yielded))
            while backlog:
                await self._guarded(backlog.popleft())
        finally:
            for pending in backlog:
                pending.close()
            self._backlog = None
            self._task = None

    @staticmethod
    async def _guarded(awaitable: Any) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("fastpath: packet handler failed")


class SrtpFastPath:
    """Decrypts, parses and routes one connected DTLS transport's SRTP, as aiortc's reader.

    With the C extension the transport has a native receiver (streamserver.nativesrtp) that
    unprotects and parses in one call, without the GIL, and each stream, once its receiver
    and codec are known, goes on to its C assembler (streamserver.nativeingest); without it
    pylibsrtp and aiortc's parser and receiver do, as aiortc's reader would. Either way a
    packet that fails is dropped.
    """

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self.dtls = dtls
        self.runner = InlineRunner()
        self.native = nativesrtp.receiver_of(dtls)
        # SSRC -> its C route, or None for a stream that stays on aiortc's path.
        self.routes: dict[int, nativeingest.Route | None] = {}
        # The connection's sockets whose datagrams are sorted in C (sort_in_c), with their Demux.
        self.demuxes: list[tuple[ice.StunProtocol, Demux]] = []

    def sort_in_c(self, connection: ice.Connection) -> None:
        """With the C extension, each of the connection's sockets sorts its datagrams in C: a
        Demux stands in its protocol's datagram_received, and a routed stream's packet then
        costs no Python frame at all (the rest goes on to aioice's path, as patched)."""
        if self.native is None or native.NATIVE is None:
            return
        for protocol in connection._protocols:
            aioices = protocol.datagram_received  # the class's, bound: what the Demux falls to
            demux = native.NATIVE.Demux(self.native, self.answered, aioices)
            protocol.datagram_received = demux  # type: ignore[method-assign]
            self.demuxes.append((protocol, demux))

    def release(self) -> None:
        """The fast path goes off: the sockets' Demuxes go, their counts join the transport's."""
        self.fold_counts()
        for protocol, _ in self.demuxes:
            vars(protocol).pop("datagram_received", None)
        self.demuxes.clear()

    def fold_counts(self) -> None:
        """Add what the Demuxes took to the transport's counters (aiortc's stats read them)."""
        dtls = self.dtls
        for _, demux in self.demuxes:
            packets, octets = demux.take_counts()
            dtls._RTCDtlsTransport__rx_packets += packets  # type: ignore[attr-defined]
            dtls._RTCDtlsTransport__rx_bytes += octets  # type: ignore[attr-defined]

    def __call__(self, data: bytes) -> None:
        dtls = self.dtls
        if dtls._state is not State.CONNECTED:
            return
        dtls._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
        native = self.native
        try:
            if is_rtcp(data):
                srtp = dtls._rx_srtp if native is None else native
                rtcp = srtp.unprotect_rtcp(data)
                if rtcp is not None:
                    self.runner.run(dtls._handle_rtcp_data(rtcp))
                return
            if native is not None:
                answer = native.receive(data)
                if answer is not None:  # else dropped, or taken by its stream's assembler
                    self.answered(answer)
                return
            arrival_time_ms = clock.current_ms()  # (C answers carry none: answered() reads it)
            packet = RtpPacket.parse(dtls._rx_srtp.unprotect(data), dtls._rtp_header_extensions_map)
            receiver = dtls._rtp_router.route_rtp(packet)
        except Exception as exc:
            _dropped(exc)
            return
        if receiver is not None:
            self.runner.run(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms))

    def answered(self, answer: RtpFields | Assembled | BaseException) -> None:
        """What the C receiver left to Python for one SRTP packet, from here or straight from
        the socket (its Demux): work for its stream's route, or the fields of a packet of a
        stream not routed (yet), or the exception that dropped it."""
        if isinstance(answer, BaseException):
            _dropped(answer)
            return
        arrival_time_ms = clock.current_ms()
        try:
            if len(answer) == 4:  # (SSRC, ...): its assembler has work for Python
                route = self.routes[answer[0]]
                if isinstance(route, nativeingest.StreamRoute):
                    route.act(answer, arrival_time_ms)
                return
            fields = answer
            route = self.routes.get(fields[4])
            if route is not None:
                if route.take(fields, arrival_time_ms):
                    return
                del self.routes[fields[4]]  # it changed codec: routed afresh below
            packet = nativesrtp.to_packet(fields, self.dtls._rtp_header_extensions_map)
            if packet.ssrc not in self.routes and self._route(packet, fields, arrival_time_ms):
                return
            receiver = self.dtls._rtp_router.route_rtp(packet)
        except Exception as exc:
            _dropped(exc)
            return
        if receiver is not None:
            self.runner.run(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_time_ms))

    def _route(self, packet: RtpPacket, fields: RtpFields, arrival_time_ms: int) -> bool:
        """A new stream's packet: decide its route (once its receiver knows the codec) and,
        if it goes to C, take the packet there; False leaves it to aiortc's path."""
        receiver = self.dtls._rtp_router.route_rtp(packet)
        if not isinstance(receiver, RTCRtpReceiver):
            return False
        if not nativeingest.decidable(receiver, packet.ssrc, packet.payload_type, self.routes):
            return False
        route = nativeingest.route_for(
            receiver,
            packet.ssrc,
            packet.payload_type,
            self.routes,
            self.dtls._rtp_header_extensions_map,
            self.runner.run,
            self.native,
        )
        self.routes[packet.ssrc] = route
        if route is None:
            return False
        route.take(fields, arrival_time_ms)
        return True


def _dropped(exc: BaseException) -> None:
    """A packet that failed is dropped: quietly when it was not good SRTP, loudly for a bug."""
    if isinstance(exc, (pylibsrtp.Error, ValueError, struct.error)):
        logger.debug("fastpath: SRTP packet dropped: %s", exc)
    else:
        logger.error("fastpath: SRTP packet dropped", exc_info=exc)


def take(connection: ice.Connection, data: bytes) -> bool:
    """Hand an SRTP/SRTCP datagram to the connection's fast path; False when it has none (or
    the datagram is not SRTP) and aioice's own path must take it."""
    fast_path: SrtpFastPath | None = getattr(connection, FAST_PATH_ATTR)
    if fast_path is not None and 127 < data[0] < 192:
        fast_path(data)
        return True
    return False


def on_state(dtls: RTCDtlsTransport, state: State) -> None:
    """After aiortc's state change: the fast path on for a connected transport, off otherwise.

    It goes on when aiortc's reader task would take its first packet (the next turn of the
    loop): by then the peer connection has registered the receivers the packets route to.
    """
    connection = getattr(dtls.transport, "_connection", None)
    if connection is None:
        return
    current: SrtpFastPath | None = getattr(connection, FAST_PATH_ATTR)
    if state is State.CONNECTED and dtls._rx_srtp is not None:
        asyncio.get_running_loop().call_soon(_activate, dtls, connection)
    elif current is not None and current.dtls is dtls:
        current.release()
        setattr(connection, FAST_PATH_ATTR, None)


def _activate(dtls: RTCDtlsTransport, connection: ice.Connection) -> None:
    if dtls._state is State.CONNECTED:
        current: SrtpFastPath | None = getattr(connection, FAST_PATH_ATTR)
        if current is not None:
            current.release()
        fast_path = SrtpFastPath(dtls)
        setattr(connection, FAST_PATH_ATTR, fast_path)
        _hand_over_queued(connection, fast_path)
        fast_path.sort_in_c(connection)


def _hand_over_queued(connection: ice.Connection, fast_path: SrtpFastPath) -> None:
    """SRTP that arrived during the handshake and waits in aioice's queue goes first, in order.

    The reader task has not taken anything yet; what is not SRTP stays queued for it.
    """
    queued = connection._queue
    kept = []
    while not queued.empty():
        item = queued.get_nowait()
        if item is not None and 127 < item[0][0] < 192:
            fast_path(item[0])
        else:
            kept.append(item)
    for item in kept:
        queued.put_nowait(item)


def fast_path_of(dtls: RTCDtlsTransport) -> SrtpFastPath | None:
    """The fast path a DTLS transport's connection uses now, if any (for tests and stats)."""
    connection = getattr(dtls.transport, "_connection", None)
    fast_path: SrtpFastPath | None = getattr(connection, FAST_PATH_ATTR, None)
    return fast_path if fast_path is not None and fast_path.dtls is dtls else None
