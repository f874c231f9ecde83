"""The caller's network as the server receives it: round trip, loss, bitrate, frame rate and
resolution, sampled every few seconds from aiortc's receive statistics and the relay's frames.

``network_quality`` is the pure computation (two samples of the counters in, one record
out); ``QualityMeter`` takes the samples from a live caller connection. aiortc 1.16's
``getStats()`` gives the RTP counters per inbound stream (packets received and lost) and the
transport's byte count; it has no round trip for a receive-only connection (the caller's
RTCP reports carry ours only if we send media to it), so the meter times a STUN binding
request on the connection's nominated ICE pair, as consent checks (RFC 7675) do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiortc import RTCPeerConnection
from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from .frames import EncodedFrame, video_dimensions

logger = logging.getLogger(__name__)

SAMPLE_S = 2.0  # how often a live session's network is measured
STUN_TIMEOUT_S = 1.5  # a round trip longer than this is reported as unknown


class NetworkQuality(TypedDict):
    """The caller's connection over the last sample interval, as the console shows it."""

    rtt_ms: float | None  # round trip to the phone
    loss_pct: float | None  # RTP packets lost, of those expected (None: none expected)
    bitrate_kbps: float | None  # everything received on the connection
    fps: float | None  # video frames forwarded per second
    width: int | None  # of the latest video keyframe
    height: int | None
    measured_at: str  # ISO 8601, the server's clock


@dataclass(frozen=True, slots=True)
class Counters:
    """Running totals at one moment (``at``: time.monotonic())."""

    at: float
    packets_received: int
    packets_lost: int
    bytes_received: int
    frames: int


def counters(report: Mapping[str, Any], frames: int, at: float) -> Counters:
    """The totals in an ``RTCStatsReport`` (every inbound RTP stream, every transport)."""
    received = lost = octets = 0
    for stats in report.values():
        kind = getattr(stats, "type", None)
        if kind == "inbound-rtp":
            received += int(stats.packetsReceived)
            lost += max(0, int(stats.packetsLost))
        elif kind == "transport":
            octets += int(stats.bytesReceived)
    return Counters(at, received, lost, octets, frames)


def reported_round_trip_ms(report: Mapping[str, Any]) -> float | None:
    """The round trip the RTCP receiver reports give (remote-inbound-rtp), if any."""
    trips = [
        float(s.roundTripTime)
        for s in report.values()
        if getattr(s, "type", None) == "remote-inbound-rtp"
        and getattr(s, "roundTripTime", None) is not None
    ]
    return round(max(trips) * 1000, 1) if trips else None


def network_quality(
    before: Counters | None,
    now: Counters,
    rtt_ms: float | None,
    size: tuple[int, int] | None,
    measured_at: datetime,
) -> NetworkQuality:
    """The record for the interval from ``before`` to ``now`` (rates unknown without one)."""
    loss = bitrate = fps = None
    if before is not None and now.at > before.at:
        seconds = now.at - before.at
        received = max(0, now.packets_received - before.packets_received)
        lost = max(0, now.packets_lost - before.packets_lost)
        if received + lost:
            loss = round(100.0 * lost / (received + lost), 1)
        bitrate = round(max(0, now.bytes_received - before.bytes_received) * 8 / seconds / 1000, 1)
        fps = round(max(0, now.frames - before.frames) / seconds, 1)
    return {
        "rtt_ms": rtt_ms,
        "loss_pct": loss,
        "bitrate_kbps": bitrate,
        "fps": fps,
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "measured_at": measured_at.isoformat(),
    }


def _relative(a: float | None, b: float | None, share: float, floor: float) -> bool:
    if a is None or b is None:
        return a != b
    return abs(a - b) > max(floor, share * max(abs(a), abs(b)))


def changed_meaningfully(old: NetworkQuality | None, new: NetworkQuality) -> bool:
    """Worth showing the call handler again: not every wobble of a live connection."""
    if old is None:
        return True
    return (
        (old["width"], old["height"]) != (new["width"], new["height"])
        or _relative(old["rtt_ms"], new["rtt_ms"], 0.25, 20.0)
        or _relative(old["loss_pct"], new["loss_pct"], 0.0, 0.5)
        or _relative(old["bitrate_kbps"], new["bitrate_kbps"], 0.15, 32.0)
        or _relative(old["fps"], new["fps"], 0.0, 2.0)
    )


async def ice_round_trip_ms(pc: RTCPeerConnection) -> float | None:
    """Time one STUN binding request on the connection's nominated ICE pair (aioice 0.13's
    own consent check, pinned with the patches); None when there is none or no answer."""
    try:
        for transceiver in pc.getTransceivers():
            ice = transceiver.receiver.transport.transport
            connection = ice._connection
            break
        else:
            sctp = pc.sctp
            if sctp is None:
                return None
            ice = sctp.transport.transport
            connection = ice._connection
        pairs = list(connection._nominated.values())
        if not pairs or connection.remote_password is None:
            return None
        pair = pairs[0]
        request = connection.build_request(pair, nominate=False)
        started = time.monotonic()
        await asyncio.wait_for(
            pair.protocol.request(
                request,
                pair.remote_addr,
                integrity_key=connection.remote_password.encode("utf8"),
                retransmissions=0,
            ),
            STUN_TIMEOUT_S,
        )
        return round((time.monotonic() - started) * 1000, 1)
    except Exception:  # no answer in time, or a connection closing under us
        logger.debug("STUN round trip not measured", exc_info=True)
        return None


class QualityMeter:
    """Samples one session's caller connection (whichever is current: a reconnect starts
    the rates afresh) and the video relay's frame count and latest keyframe."""

    def __init__(
        self,
        caller: Callable[[], RTCPeerConnection | None],
        frames: Callable[[], int],
        keyframe: Callable[[], EncodedFrame | None],
    ) -> None:
        self._caller = caller
        self._frames = frames
        self._keyframe = keyframe
        self._pc: RTCPeerConnection | None = None
        self._before: Counters | None = None
        self._sized: EncodedFrame | None = None
        self._size: tuple[int, int] | None = None

    def _dimensions(self) -> tuple[int, int] | None:
        key = self._keyframe()
        if key is not None and key is not self._sized:
            self._sized = key
            try:
                self._size = video_dimensions(key.codec, key.data)
            except (ValueError, IndexError):
                pass  # keep the last size read
        return self._size

    async def sample(self) -> NetworkQuality | None:
        """The record since the last sample; None while no caller connection is up."""
        pc = self._caller()
        if pc is None or pc.connectionState != "connected":
            self._pc, self._before = None, None
            return None
        report = await pc.getStats()
        now = counters(report, self._frames(), time.monotonic())
        before = self._before if pc is self._pc else None
        self._pc, self._before = pc, now
        rtt = reported_round_trip_ms(report)
        if rtt is None:
            rtt = await ice_round_trip_ms(pc)
        return network_quality(before, now, rtt, self._dimensions(), datetime.now(UTC))
