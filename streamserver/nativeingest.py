"""A caller's streams assembled in C: Python sees frames, not packets.

On the C path (streamserver.native) the fast path routes each unprotected packet of a known
stream straight to that stream's streamserver.native._native.Assembler, which does what
aiortc's RTCRtpReceiver._handle_rtp_packet and our CompletingJitterBuffer do per packet
(receiver statistics, NACK bookkeeping, depayloading, reassembly) and answers only when
something is to be done: a NACK or PLI to send, frames to deliver. Python keeps the rest as
aiortc has it, now per frame: the receiver's FrameSink and timestamp mapper, its list of
active sources, RTCP sending, and the bandwidth estimator (fed one sample per frame,
streamserver.bandwidth). The assembler stands in the receiver's table of remote streams, so
aiortc's receiver reports and getStats() read its counters. Retransmissions (RTX) are
unwrapped here, counted on the RTX stream as aiortc does, and go into the same assembler.
While nobody needs a receiver's frames the instant they complete (only the recorder, which
takes them in batches), its assemblers hold them (``hold``): the C receiver keeps each
answer that is frames only, with its arrival time, and Python takes them in one go
(``drain``), in order, before anything else of the stream. A stream's frames are the same,
bit for bit and in order, held or not; they come later, never differently.
A stream is routed here only once its receiver and codec are known (H.264, VP8, Opus);
anything else stays on aiortc's path, which is also the pure-Python path's for everything.
aiortc 1.16.0 internals, covered by tests/streamserver/test_nativeingest.py.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiortc.clock as clock
from aiortc.codecs import is_rtx
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver, StreamStatistics
from aiortc.rtp import RTCP_PSFB_APP, HeaderExtensionsMap, RtcpPsfbPacket, pack_remb_fci

from . import bandwidth, native, nativesrtp
from .fastclock import NTP_UNIX_OFFSET
from .reassembly import FrameBatch, ReceivedFrame

if TYPE_CHECKING:
    from .native import Assembled, AssembledFrame, Assembler, RtpFields, SrtpReceiver

logger = logging.getLogger(__name__)

DEPAYLOADERS = {"opus": 0, "h264": 1, "vp8": 2}  # codec name -> the assembler's depayloader
ROUTES_ATTR = "_scenelink_routes"  # on RTCRtpReceiver: its StreamRoutes, for the flush
HOLD_ATTR = "_scenelink_hold"  # on RTCRtpReceiver: whether its routes hold their frames

Run = Callable[[Any], None]  # the fast path's InlineRunner.run: runs an RTCP send coroutine


def _private(receiver: RTCRtpReceiver, name: str) -> Any:
    return getattr(receiver, f"_RTCRtpReceiver__{name}")


class StreamRoute:
    """One media stream (SSRC) of a receiver, assembled in C."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        ssrc: int,
        codec: Any,
        assembler: Assembler,
        extensions_map: HeaderExtensionsMap,
        run: Run,
        srtp: SrtpReceiver | None = None,
    ) -> None:
        self.receiver = receiver
        self.srtp = srtp  # the C receiver that hands this stream's packets to the assembler
        self.ssrc = ssrc
        self.codec = codec
        self.assembler = assembler
        self.extensions_map = extensions_map
        self.run = run
        self.closed = False
        self._codecs: dict[int, Any] = _private(receiver, "codecs")
        self._active: dict[int, Any] = _private(receiver, "active_ssrc")
        self._mapper = _private(receiver, "timestamp_mapper")  # made with the receiver, kept
        self._estimator = bandwidth.of(receiver)
        self._octets_carried = 0  # of held frames that gave the estimator no sample

    def take(self, fields: RtpFields, arrival_time_ms: int) -> bool:
        """One packet of this stream, as the C receiver parsed it; False when the stream has
        changed payload type (a codec switch): the route has ended, what it held is delivered,
        and the stream is to be routed afresh from this packet."""
        if self.closed:  # ended (the receiver stopped): nothing more goes in
            return True
        marker, payload_type, seq, timestamp, _, _, profile, extension, payload, _ = fields
        if payload_type != self.codec.payloadType:
            logger.info(
                "native ingest: SSRC %d changed payload type %d -> %d: routed afresh",
                self.ssrc,
                self.codec.payloadType,
                payload_type,
            )
            self.end()
            return False
        self.add(seq, timestamp, marker, payload, arrival_time_ms, (profile, extension), True)
        return True

    def act(self, answer: Assembled, arrival_time_ms: int) -> None:
        """What the C receiver's assembler answered for one packet of this stream (after the
        answers it held, which came before it)."""
        if getattr(self.receiver, HOLD_ATTR, False):  # else nothing is kept: hold(off) drained
            drain(self.receiver)
        if not self.closed and self.receiver._enabled:
            self._act(answer[1], arrival_time_ms, (answer[2], answer[3]))

    def drain(self) -> None:
        """Deliver the answers the C receiver kept, in order, as each would have been (one
        that fails is logged; the rest still go)."""
        for answer, arrival_time_ms, octets in self.assembler.take_held():
            if self.closed:
                break
            try:  # they arrived while the receiver took them (whether it still does)
                self._act(answer[1], arrival_time_ms, (answer[2], answer[3]), octets)
            except Exception:
                logger.exception("native ingest: a held frame could not be delivered")

    def add(
        self,
        seq: int,
        timestamp: int,
        marker: int,
        payload: bytes,
        arrival_time_ms: int,
        extension: tuple[int, bytes | None],
        stats: bool,
    ) -> None:
        receiver = self.receiver
        if self.closed or not receiver._enabled:
            return
        if getattr(receiver, HOLD_ATTR, False):  # what the C receiver kept came first
            drain(receiver)
        answer = self.assembler.add(
            seq,
            timestamp,
            bool(marker),
            self.codec.payloadType,
            payload,
            time.monotonic(),
            stats,
        )
        self._act(answer, arrival_time_ms, extension)

    def _act(
        self,
        answer: tuple[bool, list[AssembledFrame] | None, list[int] | None],
        arrival_time_ms: int,
        extension: tuple[int, bytes | None],
        octets: int | None = None,
    ) -> None:
        receiver = self.receiver
        pli, frames, nack = answer
        if nack is not None:
            self.run(receiver._send_rtcp_nack(self.ssrc, nack))
        if pli:
            self.run(receiver._send_rtcp_pli(self.ssrc))
        if frames is not None:
            self._active[self.ssrc] = clock.current_datetime()
            self._deliver(frames, arrival_time_ms)
            if self._estimator is not None:
                if extension[1] is not None:
                    self._feed_estimator(arrival_time_ms, extension, octets)
                elif octets is not None:
                    self._octets_carried += octets

    def _feed_estimator(
        self, arrival_time_ms: int, extension: tuple[int, bytes | None], octets: int | None
    ) -> None:
        """One sample per frame: the completing packet's send time, the octets since the last
        sample (for a held answer, as counted when it was held; bytes of frames that gave no
        sample carry over, held or not)."""
        assert self._estimator is not None and extension[1] is not None
        try:
            abs_send_time = self.extensions_map.get(extension[0], extension[1]).abs_send_time
        except (ValueError, struct.error):  # a malformed block: no sample, frames kept
            abs_send_time = None
        if abs_send_time is None:
            if octets is not None:
                self._octets_carried += octets
            return
        if octets is None:
            octets = self.assembler.take_octets()
        octets += self._octets_carried
        self._octets_carried = 0
        remb = self._estimator.add(arrival_time_ms, abs_send_time, octets, self.ssrc)
        rtcp_ssrc = _private(self.receiver, "rtcp_ssrc")
        if remb is not None and rtcp_ssrc is not None:
            packet = RtcpPsfbPacket(
                fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(*remb)
            )
            self.run(self.receiver._send_rtcp(packet))

    def _deliver(self, frames: list[AssembledFrame], arrival_time_ms: int) -> None:
        """As aiortc's receiver: the (first) frame's timestamp mapped, then to the sink, with
        when its last packet arrived (held or not)."""
        receiver = self.receiver
        if not _private(receiver, "decoder_thread"):
            return
        item = as_jitter_frame(frames, arrival_time_ms / 1000 - NTP_UNIX_OFFSET)
        item.timestamp = self._mapper.map(item.timestamp)
        _private(receiver, "decoder_queue").put((self.codec, item))

    def end(self) -> None:
        """The stream goes on under another route: deliver what this one holds, then stop."""
        if self.closed:
            return
        queue = _private(self.receiver, "decoder_queue")
        decoding = _private(self.receiver, "decoder_thread")
        for codec, frame in self.close():
            if decoding:
                queue.put((codec, frame))

    def close(self) -> list[tuple[Any, JitterFrame]]:
        """The end of the stream: what the assembler still holds, as (codec, frame), mapped."""
        self.drain()
        self.closed = True
        if self.srtp is not None:
            self.srtp.route(self.ssrc, self.codec.payloadType, None)
        mapper = self._mapper
        out: list[tuple[Any, JitterFrame]] = []
        for payload_type, data, timestamp, after_loss in self.assembler.flush():
            codec = self._codecs.get(payload_type)
            if codec is not None:
                out.append((codec, ReceivedFrame(data, mapper.map(timestamp), after_loss)))
        return out


class RtxRoute:
    """A retransmission stream: counted as aiortc counts it, unwrapped into its media's route."""

    def __init__(self, media: StreamRoute, statistics: StreamStatistics) -> None:
        self.media = media
        self.statistics = statistics

    def take(self, fields: RtpFields, arrival_time_ms: int) -> bool:
        """One retransmission; False when its media's route has ended (routed afresh)."""
        media = self.media
        if media.closed:
            return False
        if not media.receiver._enabled:
            return True
        packet = nativesrtp.to_packet(fields, media.extensions_map)
        self.statistics.add(packet)
        media._active[packet.ssrc] = clock.current_datetime()
        payload = packet.payload
        if len(payload) < 2:
            return True
        original_seq = int.from_bytes(payload[:2], "big")
        extension = (fields[6], fields[7])
        media.add(
            original_seq,
            packet.timestamp,
            packet.marker,
            payload[2:],
            arrival_time_ms,
            extension,
            False,
        )
        return True


Route = StreamRoute | RtxRoute


def as_jitter_frame(frames: list[AssembledFrame], arrival: float | None = None) -> JitterFrame:
    """The assembler's frames as aiortc's receiver would hand them on: one, or a batch, with
    when they were complete (Unix seconds) where known."""
    if len(frames) == 1:
        _, data, timestamp, after_loss = frames[0]
        return ReceivedFrame(data, timestamp, after_loss, arrival)
    batch = [ReceivedFrame(data, t, after_loss, arrival) for _, data, t, after_loss in frames]
    return FrameBatch(batch, arrival)


def decidable(
    receiver: RTCRtpReceiver, ssrc: int, payload_type: int, routes: dict[int, Route | None]
) -> bool:
    """Whether a stream's route can be decided now: not before its receiver knows the codec,
    nor, for a retransmission (RTX) stream, before its media stream's route is decided (RTX
    padding may come first). Until then aiortc's path takes its packets, and the next one asks
    again."""
    codec = _private(receiver, "codecs").get(payload_type)
    if codec is None or not receiver._enabled:
        return False
    if is_rtx(codec):
        original = _private(receiver, "rtx_ssrc").get(ssrc)
        return original is not None and original in routes
    return True


def route_for(
    receiver: RTCRtpReceiver,
    ssrc: int,
    payload_type: int,
    routes: dict[int, Route | None],
    extensions_map: HeaderExtensionsMap,
    run: Run,
    srtp: SrtpReceiver | None = None,
) -> Route | None:
    """The route for a stream whose first packet this is (``decidable``), or None where it
    stays on aiortc's path for good (a codec the assembler does not know)."""
    assert native.NATIVE is not None
    codec = _private(receiver, "codecs")[payload_type]
    if is_rtx(codec):
        original = _private(receiver, "rtx_ssrc").get(ssrc)
        media = routes.get(original) if original is not None else None
        apt = codec.parameters.get("apt")
        if not isinstance(media, StreamRoute) or apt != media.codec.payloadType:
            return None
        remote: dict[int, Any] = _private(receiver, "remote_streams")
        statistics = remote.setdefault(ssrc, StreamStatistics(codec.clockRate))
        return RtxRoute(media, statistics)
    depayloader = DEPAYLOADERS.get(codec.name.lower())
    if depayloader is None:
        return None
    video = _private(receiver, "kind") == "video"
    assembler = native.NATIVE.Assembler(video, depayloader, codec.clockRate)
    route = StreamRoute(receiver, ssrc, codec, assembler, extensions_map, run)
    assembler.hold = getattr(receiver, HOLD_ATTR, False)
    if srtp is not None and srtp.route(ssrc, codec.payloadType, assembler):
        route.srtp = srtp  # from now on its packets go from the C receiver to the assembler
    _private(receiver, "remote_streams")[ssrc] = assembler  # RTCP reports and getStats
    if not hasattr(receiver, ROUTES_ATTR):
        setattr(receiver, ROUTES_ATTR, [])
    getattr(receiver, ROUTES_ATTR).append(route)
    return route


def hold(receiver: RTCRtpReceiver, on: bool) -> None:
    """Have the receiver's streams (and those routed later) keep their frames for ``drain``
    (on), or hand each over as it completes again, after those kept (off)."""
    setattr(receiver, HOLD_ATTR, on)
    for route in getattr(receiver, ROUTES_ATTR, []):
        route.assembler.hold = on
    if not on:
        drain(receiver)


def drain(receiver: RTCRtpReceiver) -> None:
    """Deliver the frames the receiver's streams kept, each stream's in order."""
    for route in getattr(receiver, ROUTES_ATTR, []):
        route.drain()


def flush(receiver: RTCRtpReceiver) -> list[tuple[Any, JitterFrame]]:
    """Everything the receiver's assemblers still hold, as (codec, mapped frame), in order."""
    flushed: list[tuple[Any, JitterFrame]] = []
    routes: list[StreamRoute] = getattr(receiver, ROUTES_ATTR, [])
    for route in routes:
        flushed.extend(route.close())
    return flushed
