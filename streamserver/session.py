"""One call session's media: the caller's peer connection, relays, viewers and recorder.

The relays belong to the session, not to a peer connection, so a caller who drops and comes
back with a fresh peer connection (aiortc has no ICE restart) keeps the same viewers; each
caller connection becomes a new recording part.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, TypedDict

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.mediastreams import MediaStreamTrack

from . import ingest, patches
from .frames import CODEC_NAMES
from .relay import DEFAULT_QUEUE_SIZE, Subscription, TrackRelay, grid_point_after

logger = logging.getLogger(__name__)

DATA_CHANNEL_LABEL = "location"
RECORDER_QUEUE_FACTOR = 16  # the evidential copy rides out stalls of half a minute and more
RECORDER_BATCH_S = 0.1  # the recorder takes frames in batches: one writer-thread hop per batch
SENDER_REPORT_EVENT_INTERVAL = 5.0  # seconds between rtcp_sr events per track
CLOCK_RATES = {"video": 90000, "audio": 48000}  # WebRTC's video clock and Opus's
GAP_AFTER_S = 2.0  # no frame on any track for longer than this, from a live caller: a gap
GAP_CHECK_S = 0.3  # how often the media watchdog looks: on the recorder's grid (3 windows)


@dataclass(frozen=True, slots=True)
class MediaGap:
    """A stretch with no media from a caller who was sending it (a stairwell, a network
    switch, a dropped connection), reported when it is detected and again when it ends.

    Times are the server's wall clock (time.time()).
    """

    started_at: float  # the last frame before the gap (or when the caller went live)
    detected_at: float
    part: int  # the caller connection (recording part) at the time of the report
    ended_at: float | None = None  # the first frame after it; None while it lasts
    resumed: bool = False  # False at the end: the media ended (or has no tracks) instead

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else round(self.ended_at - self.started_at, 3)


class RtcpSenderReport(TypedDict):
    """The evidence event that ties a track's media clock to the phone's wall clock."""

    event: Literal["rtcp_sr"]
    at: str
    kind: str
    part: int
    ssrc: int
    ntp: int
    ntp_time: float
    rtp: int
    pts: int
    clock_rate: int
    arrival: float


class MediaSink(Protocol):
    """Where a session's media goes besides its viewers: the recorder implements it.

    The sink belongs to whoever made the session (it outlives the media: the end of the call
    is recorded after the media stops), so ``MediaSession.close`` never closes it.
    """

    @property
    def frames_recorded(self) -> int: ...

    def attach(self, video: Subscription | None, audio: Subscription | None) -> None:
        """A caller connection's media from here on (a new recording part)."""

    def append_event(self, event: RtcpSenderReport) -> None: ...


def negotiated_codecs(description: RTCSessionDescription) -> dict[str, str]:
    """First (sending) codec per media kind in an SDP, e.g. {"video": "VP8", "audio": "opus"}."""
    parsed = aiortc_sdp.SessionDescription.parse(description.sdp)
    out: dict[str, str] = {}
    for media in parsed.media:
        if media.kind in ("audio", "video") and media.rtp.codecs and media.port != 0:
            name = media.rtp.codecs[0].mimeType.split("/")[1]
            out.setdefault(media.kind, CODEC_NAMES.get(name.lower(), name))
    return out


def offered_kinds(description: RTCSessionDescription) -> list[str]:
    parsed = aiortc_sdp.SessionDescription.parse(description.sdp)
    return [m.kind for m in parsed.media if m.kind in ("audio", "video")]


def codec_capabilities(kind: str, codec: str) -> list[RTCRtpCodecCapability]:
    """Our capabilities for one codec (every H.264 profile we have) plus RTX."""
    caps = RTCRtpSender.getCapabilities(kind).codecs
    mime = f"{kind}/{codec}".lower()
    chosen = [c for c in caps if c.mimeType.lower() == mime]
    return chosen + [c for c in caps if c.mimeType.lower() == f"{kind}/rtx"]


async def _discard(pc: RTCPeerConnection) -> None:
    """Close a connection whose offer failed. aiortc's close can fail on one it never
    finished setting up; that must not hide why the offer failed."""
    try:
        await pc.close()
    except Exception:
        logger.debug("closing a half-set-up peer connection failed", exc_info=True)


class MediaSession:
    """Caller ingest, fan-out to viewers and the evidential recording of one call."""

    def __init__(
        self,
        session_id: str,
        rtc_config: RTCConfiguration | None,
        recorder: MediaSink,
        on_message: Callable[[str], None],
        on_state: Callable[[str], None],
        queue_size: int = DEFAULT_QUEUE_SIZE,
        on_gap: Callable[[MediaGap], None] | None = None,
    ) -> None:
        patches.install()
        self.session_id = session_id
        self.recorder = recorder
        self._rtc_config = rtc_config
        self._on_message = on_message
        self._on_state = on_state
        self.video_relay = TrackRelay("video", queue_size)
        self.audio_relay = TrackRelay("audio", queue_size)
        self._caller: RTCPeerConnection | None = None
        self._channel: RTCDataChannel | None = None
        self._viewers: dict[RTCPeerConnection, str | None] = {}  # pc -> its grant
        self._codec: str | None = None
        self._closed = False
        self._lock = asyncio.Lock()
        self.state = "new"
        self.caller_connections = 0
        self.sender_reports: dict[str, ingest.SenderReport] = {}
        self._report_logged: dict[str, float] = {}
        self._on_gap = on_gap
        self._media_expected = False  # the current caller connection has media tracks
        self._live_since: float | None = None  # monotonic: when that connection went live
        self.gap: MediaGap | None = None  # the gap going on now
        self.gaps = 0
        self._watchdog: asyncio.Task[None] | None = None
        # The session's phase on the grid its recorder's batches and its watchdog share (one
        # wake-up for all three); other sessions' phases differ, so their writes spread out.
        self._batch_phase = random.uniform(0.0, RECORDER_BATCH_S)

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    @property
    def codec(self) -> str | None:
        """The caller's video codec ("H264"/"VP8"), once a caller has been answered."""
        return self._codec

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def caller_connection(self) -> RTCPeerConnection | None:
        """The caller's current peer connection (its receive statistics: quality)."""
        return self._caller

    @property
    def stats(self) -> dict[str, Any]:
        video = self.video_relay.stats()
        audio = self.audio_relay.stats()
        return {
            "frames_in": video["frames_in"] + audio["frames_in"],
            "frames_out": video["frames_out"] + audio["frames_out"],
            "dropped": video["dropped"] + audio["dropped"],
            "lag_events": video["lag_events"] + audio["lag_events"],
            "recorded_frames": self.recorder.frames_recorded,
            "viewers": len(self._viewers),
            "caller_connections": self.caller_connections,
            "video": video,
            "audio": audio,
        }

    def _set_state(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        try:
            self._on_state(state)
        except Exception:
            logger.exception("session %s: on_state callback failed", self.session_id)

    async def accept_caller(self, offer: RTCSessionDescription) -> RTCSessionDescription:
        """Answer the caller's offer; a second call is a reconnect and replaces the first PC."""
        async with self._lock:
            if self._closed:
                raise RuntimeError("session closed")
            # The new connection is set up before the previous one is closed: an offer
            # that aiortc refuses leaves a live caller as it was.
            pc = RTCPeerConnection(self._rtc_config)
            self._wire_caller(pc)
            try:
                await pc.setRemoteDescription(offer)
                await pc.setLocalDescription(await pc.createAnswer())
            except Exception:
                await _discard(pc)
                raise
            previous, self._caller, self._channel = self._caller, pc, None
            if previous is not None:
                await previous.close()
            self.caller_connections += 1
            self._set_state("connecting")
            answer = pc.localDescription
            self._codec = negotiated_codecs(answer).get("video", self._codec)
            self._attach_sources(pc)
            if self._watchdog is None:
                self._watchdog = asyncio.ensure_future(self._watch_media())
            return answer

    def _wire_caller(self, pc: RTCPeerConnection) -> None:
        @pc.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            if channel.label != DATA_CHANNEL_LABEL:
                return
            self._channel = channel

            @channel.on("message")
            def on_message(message: object) -> None:
                if not isinstance(message, str):  # the page speaks JSON text only
                    channel.send(json.dumps({"type": "error", "error": "binary data refused"}))
                    return
                try:
                    self._on_message(message)
                except Exception:
                    logger.exception("session %s: on_message failed", self.session_id)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is not self._caller or self._closed:
                return  # a replaced caller connection: its end is not news
            state = pc.connectionState
            if state == "connected":
                self._live_since = time.monotonic()
                if self.gap is not None and not self._media_expected:
                    self._end_gap(time.time(), resumed=False)  # nothing to wait for
                if self.gap is None:
                    self._set_state("live")  # during a gap: when the media flows again
            elif state in ("disconnected", "failed", "closed"):
                self._set_state("reconnecting")
                if state == "failed":
                    await pc.close()

    def _attach_sources(self, pc: RTCPeerConnection) -> None:
        """Point the relays at this connection's tracks and start a new recording part."""
        tracks: dict[str, MediaStreamTrack] = {}
        for transceiver in pc.getTransceivers():
            track = transceiver.receiver.track
            if track is None or transceiver.kind in tracks:
                continue
            tracks[transceiver.kind] = track
            relay = self.video_relay if transceiver.kind == "video" else self.audio_relay
            relay.set_source(track, ingest.KeyframeRequester(transceiver.receiver))
            ingest.on_sender_report(transceiver.receiver, self._report_listener(pc, relay))
        self._report_logged.clear()
        self._media_expected = bool(tracks)
        self._live_since = None
        size = self.video_relay.queue_size * RECORDER_QUEUE_FACTOR
        video, audio = self.video_relay, self.audio_relay
        phase = self._batch_phase
        self.recorder.attach(
            video.subscribe(size, RECORDER_BATCH_S, phase) if "video" in tracks else None,
            audio.subscribe(size, RECORDER_BATCH_S, phase) if "audio" in tracks else None,
        )

    async def _watch_media(self) -> None:
        """Notice a gap in the caller's media while the connection may still look fine
        (ICE consent takes some 30 s to fail), and its end."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            now = loop.time()
            await asyncio.sleep(grid_point_after(now, GAP_CHECK_S, self._batch_phase) - now)
            try:
                self._check_media()
            except Exception:
                logger.exception("session %s: media check failed", self.session_id)

    def _check_media(self) -> None:
        relays = (self.video_relay, self.audio_relay)
        if self.gap is not None:
            resumed = [
                r.resumed_arrival
                for r in relays
                if r.resumed_arrival is not None and r.resumed_arrival > self.gap.started_at
            ]
            if resumed:
                self._end_gap(min(resumed), resumed=True)
                caller = self._caller
                if caller is not None and caller.connectionState == "connected":
                    self._set_state("live")
            return
        if not self._media_expected or self._live_since is None:
            return  # no media to wait for, or not live yet (connecting is its own state)
        now = time.monotonic()
        last = max((r.last_frame_at for r in relays if r.last_frame_at is not None), default=None)
        reference = self._live_since if last is None else max(last, self._live_since)
        if now - reference <= GAP_AFTER_S:
            return
        arrivals = [a for r in relays if (a := r.last_arrival) is not None]
        started = max(arrivals) if last is not None and last >= self._live_since else None
        wall = time.time()
        self.gap = MediaGap(
            started_at=started if started is not None else wall - (now - reference),
            detected_at=wall,
            part=self.caller_connections,
        )
        self.gaps += 1
        logger.info("session %s: no media for %.1f s", self.session_id, now - reference)
        self._set_state("reconnecting")
        self._report_gap(self.gap)

    def _end_gap(self, ended_at: float, resumed: bool) -> None:
        gap, self.gap = self.gap, None
        if gap is None:
            return
        ended = MediaGap(
            gap.started_at, gap.detected_at, self.caller_connections, ended_at, resumed
        )
        logger.info("session %s: media gap of %.1f s ended", self.session_id, ended.seconds)
        self._report_gap(ended)

    def _report_gap(self, gap: MediaGap) -> None:
        if self._on_gap is None:
            return
        try:
            self._on_gap(gap)
        except Exception:
            logger.exception("session %s: on_gap callback failed", self.session_id)

    def _report_listener(
        self, pc: RTCPeerConnection, relay: TrackRelay
    ) -> ingest.SenderReportListener:
        kind = relay.kind

        def listener(report: ingest.SenderReport) -> None:
            if pc is not self._caller or self._closed or report.pts is None:
                return
            relay.set_sender_report(report, CLOCK_RATES[kind])
            self.sender_reports[kind] = report
            now = time.monotonic()
            if now - self._report_logged.get(kind, -1e9) < SENDER_REPORT_EVENT_INTERVAL:
                return
            self._report_logged[kind] = now
            self.recorder.append_event(
                {
                    "event": "rtcp_sr",
                    "at": datetime.now(UTC).isoformat(),
                    "kind": kind,
                    "part": self.caller_connections,
                    "ssrc": report.ssrc,
                    "ntp": report.ntp,
                    "ntp_time": report.ntp_time,
                    "rtp": report.rtp,
                    "pts": report.pts + relay.pts_offset,
                    "clock_rate": CLOCK_RATES[kind],
                    "arrival": report.arrival,
                }
            )

        return listener

    async def add_viewer(
        self, offer: RTCSessionDescription, grant: str | None = None
    ) -> RTCSessionDescription:
        """Answer a console's recvonly offer with pass-through tracks in the caller's codec.

        ``grant`` names what this viewer watches under (e.g. a share with an officer), so
        that ending it can cut off exactly its viewers (``close_viewers``).

        Before the caller is answered the codec is unknown: the viewer then gets its own
        first choice, and frames in another codec are dropped for it (it should re-offer).
        """
        if self._closed:
            raise RuntimeError("session closed")
        pc = RTCPeerConnection(self._rtc_config)
        self._viewers[pc] = grant
        viewer_tracks: dict[str, Any] = {}
        try:
            for kind in offered_kinds(offer):
                if kind in viewer_tracks:
                    continue
                relay = self.video_relay if kind == "video" else self.audio_relay
                track = relay.viewer_track()
                transceiver = pc.addTransceiver(track, direction="sendonly")
                if kind == "video" and self._codec is not None:
                    transceiver.setCodecPreferences(codec_capabilities("video", self._codec))
                viewer_tracks[kind] = track
            self._wire_viewer(pc)
            await pc.setRemoteDescription(offer)
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception:
            self._viewers.pop(pc, None)
            await _discard(pc)
            raise
        answer = pc.localDescription
        for kind, codec in negotiated_codecs(answer).items():
            if kind in viewer_tracks:
                viewer_tracks[kind].codec = codec
        return answer

    def _wire_viewer(self, pc: RTCPeerConnection) -> None:
        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                self._viewers.pop(pc, None)
                await pc.close()

    async def close_viewers(self, grant: str) -> int:
        """Hang up every viewer watching under ``grant``; returns how many there were."""
        ended = [pc for pc, g in self._viewers.items() if g == grant]
        for pc in ended:
            self._viewers.pop(pc, None)
        await asyncio.gather(*(pc.close() for pc in ended), return_exceptions=True)
        return len(ended)

    async def send_to_caller(self, message: str) -> None:
        """Send text (chat, acknowledgements) over the caller's data channel, if open."""
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(message)

    async def close(self) -> None:
        """Hang up caller and viewer connections and stop the relays, which ends the current
        recording part (idempotent). The sink stays open for its owner to close."""
        async with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._watchdog is not None:
                self._watchdog.cancel()
                self._watchdog = None
            self._end_gap(time.time(), resumed=False)  # the media ended during it
            caller, self._caller, self._channel = self._caller, None, None
            viewers = list(self._viewers)
            self._viewers.clear()
            await asyncio.gather(
                *(pc.close() for pc in ([caller] if caller else []) + viewers),
                return_exceptions=True,
            )
            await self.video_relay.stop()
            await self.audio_relay.stop()
            self._set_state("disconnected")
