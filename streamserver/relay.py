"""Fan-out of one caller track's encoded frames to viewers and the recorder.

Queues are bounded: a subscriber that falls behind loses its backlog and skips to the next
keyframe instead of growing memory without limit (aiortc issues 1091, 554, 925). The relay
outlives the caller's peer connection, so a reconnecting caller is a source switch that the
subscribers only notice as a wait for the next keyframe.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from . import ingest, patches
from .frames import EncodedFrame, MediaKind
from .ingest import SenderReport
from .packetize import Packetized, PacketizedCache

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 120
KEYFRAME_MIN_INTERVAL = 0.5
PAUSE_S = 1.0  # frames this far apart: the later one is where the media resumed (a gap's end)
DRAIN_S = 0.25  # at stop, time for an ended source's last frames (read in one step) to go through


GRID_LEAD_S = 0.001  # uvloop's clock counts whole milliseconds, and its timers round to them


def grid_point_after(now: float, period: float, phase: float) -> float:
    """The first point of the grid every ``period`` from ``phase`` at least GRID_LEAD_S after
    ``now``: timers due on one grid fire in the same turn of the loop, so they cost one
    wake-up. The lead matters under uvloop: a timer due in the first half of a millisecond
    fires while the loop's clock still reads that millisecond's start, before its point, and
    asked again the grid would give the same point, ever closer: a busy loop."""
    return (math.floor((now + GRID_LEAD_S - phase) / period) + 1) * period + phase


class Subscription:
    """One consumer's bounded view of a relay; ``get()`` returns None once the relay ends.

    With a ``batch_window`` (seconds) a waiting consumer is woken at most that long after a
    frame arrives rather than for each frame, so that it takes frames in batches: for the
    recorder, one hop to its writer thread per batch instead of one per frame. The wake comes
    at the next point of a grid on the loop's clock, every ``batch_window`` from
    ``batch_phase``: subscribers given the same phase (a caller's audio and video recorders)
    are woken in the same turn of the loop rather than each by its own timer (a wake-up of an
    idle process costs more than the work it does: see the README's native section), and
    different phases (other callers') spread the writes out rather than start them together.
    """

    def __init__(
        self, relay: TrackRelay, maxsize: int, batch_window: float = 0.0, batch_phase: float = 0.0
    ) -> None:
        self.kind: MediaKind = relay.kind
        self.maxsize = maxsize
        self.batch_window = batch_window
        self.batch_phase = batch_phase
        self._relay = relay
        self._buf: deque[EncodedFrame] = deque()
        self._wakeup = asyncio.Event()
        self._flush: asyncio.TimerHandle | None = None
        self._ended = False
        self.waiting_keyframe = relay.kind == "video"
        self.frames_out = 0
        self.dropped = 0
        self.lag_events = 0
        self.max_depth = 0

    @property
    def depth(self) -> int:
        return len(self._buf)

    @property
    def ended(self) -> bool:
        return self._ended

    async def get(self) -> EncodedFrame | None:
        """Next frame, waiting if needed; None when the relay stopped or this was closed."""
        while not self._buf:
            if self._ended:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        self.frames_out += 1
        return self._buf.popleft()

    def get_nowait(self) -> EncodedFrame | None:
        """A frame if one is queued (lets a consumer drain a batch), else None."""
        if not self._buf:
            return None
        self.frames_out += 1
        return self._buf.popleft()

    def close(self) -> None:
        """Stop receiving; pending frames are discarded."""
        self._relay._unsubscribe(self)
        self._buf.clear()
        self._end()

    def finish(self) -> None:
        """Stop receiving new frames; ``get()`` still returns the queued ones, then None."""
        self._relay._unsubscribe(self)
        self._end()

    def _end(self) -> None:
        """No more frames will come; what is queued is still delivered (the recorder's tail)."""
        self._ended = True
        self._wake()

    def _wake(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        self._wakeup.set()

    def _wake_later(self) -> None:
        if self._flush is None and not self._wakeup.is_set():
            loop = asyncio.get_running_loop()
            due = grid_point_after(loop.time(), self.batch_window, self.batch_phase)
            self._flush = loop.call_at(due, self._wake)

    def _restart(self) -> None:
        """The source changed: a video decoder needs a fresh keyframe from the new stream."""
        if self.kind == "video":
            self.waiting_keyframe = True

    def _offer(self, frame: EncodedFrame) -> bool:
        """Queue ``frame``; returns True when this subscriber needs a keyframe."""
        if self._ended:
            return False
        if self.waiting_keyframe:
            if not frame.keyframe:
                self.dropped += 1
                return True
            self.waiting_keyframe = False
        if len(self._buf) >= self.maxsize:
            self.lag_events += 1
            self.dropped += len(self._buf)
            self._buf.clear()
            if self.kind == "video" and not frame.keyframe:
                self.dropped += 1
                self.waiting_keyframe = True
                return True
        self._buf.append(frame)
        self.max_depth = max(self.max_depth, len(self._buf))
        if self.batch_window:
            self._wake_later()
        else:
            self._wakeup.set()
        return False

    def stats(self) -> dict[str, int]:
        return {
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "lag_events": self.lag_events,
            "depth": len(self._buf),
        }


class RelayViewerTrack(MediaStreamTrack):
    """aiortc track for a viewer: returns the caller's frames as shared RTP payloads."""

    def __init__(self, relay: TrackRelay, codec: str | None = None) -> None:
        super().__init__()
        self.kind = relay.kind
        self.codec = codec
        self._relay = relay
        self._sub: Subscription | None = None

    async def recv(self) -> Packetized:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self._sub is None:
            # Subscribe lazily so the viewer starts at a keyframe near when sending begins.
            self._sub = self._relay.subscribe()
        while True:
            frame = await self._sub.get()
            if frame is None:
                self.stop()
                raise MediaStreamError
            if self.codec is None or frame.codec == self.codec:
                return self._relay.packetized.get(frame)
            self._sub.dropped += 1  # negotiated another codec with this viewer

    def request_keyframe(self) -> None:
        """Called from RTCRtpSender._send_keyframe when the viewer sends PLI/FIR."""
        self._relay.request_keyframe()

    @property
    def subscription(self) -> Subscription | None:
        return self._sub

    def stop(self) -> None:
        super().stop()
        if self._sub is not None:
            self._sub.close()


class TrackRelay:
    """Reads EncodedFrames from the current source track and fans them out."""

    def __init__(
        self,
        kind: MediaKind,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        keyframe_min_interval: float = KEYFRAME_MIN_INTERVAL,
    ) -> None:
        self.kind: MediaKind = kind
        self.queue_size = queue_size
        self._keyframe_min_interval = keyframe_min_interval
        self._subs: list[Subscription] = []
        self._task: asyncio.Task[None] | None = None  # reads a source track with recv()
        # A receiver's track gives its frames in the packet callback (ingest.push_to): the
        # track, and the start that waits its turn as the reading task would.
        self._pushing: RemoteStreamTrack | None = None
        self._push_start: asyncio.Handle | None = None
        self._push_ended = asyncio.Event()
        # While every subscriber takes frames in batches (the recorder), the pushing source
        # holds them (ingest.hold_frames) and they are taken on the subscribers' grid.
        self._holding = False
        self._drain_timer: asyncio.TimerHandle | None = None
        self._request_source_keyframe: Callable[[], object] | None = None
        self._last_request = float("-inf")
        self._offset = 0
        self._new_source = False
        self._last_pts: int | None = None
        self._last_arrival = 0.0
        self._stopped = False
        self.codec: str | None = None
        self.frames_in = 0
        self.last_frame_at: float | None = None  # time.monotonic() of the latest frame
        self.resumed_arrival: float | None = None  # arrival of the first frame after a pause
        self.keyframe_requests = 0
        self.sources = 0
        self.source_live = False
        self._gone_out = 0
        self._gone_dropped = 0
        self._gone_lag = 0
        self._report: SenderReport | None = None
        self._report_pts = 0  # the report's RTP time in this relay's (offset) pts
        self._report_rate = 0
        self.sender_reports = 0
        self.packetized = PacketizedCache()
        self.last_keyframe: EncodedFrame | None = None  # for the resolution (quality)

    @property
    def pts_offset(self) -> int:
        """Added to the current source's pts so that pts keep increasing across reconnects."""
        return self._offset

    @property
    def last_arrival(self) -> float | None:
        """The server's wall clock (time.time()) when the latest frame arrived."""
        return self._last_arrival if self.last_frame_at is not None else None

    @property
    def sender_report(self) -> SenderReport | None:
        """The latest RTCP sender report of the current source (None after a reconnect)."""
        return self._report

    def set_sender_report(self, report: SenderReport, clock_rate: int) -> None:
        """Pair the current source's RTP clock with the caller's wall clock."""
        if report.pts is None:
            return
        self._report = report
        self._report_pts = report.pts + self._offset
        self._report_rate = clock_rate
        self.sender_reports += 1

    def capture_time(self, pts: int) -> float | None:
        """The caller's wall clock for a frame with relay ``pts``, if a report is known."""
        report = self._report
        if report is None:
            return None
        return report.ntp_time + (pts - self._report_pts) / self._report_rate

    def set_source(
        self, track: MediaStreamTrack, request_keyframe: Callable[[], object] | None = None
    ) -> None:
        """Start forwarding from ``track`` (replacing any previous source: a reconnect)."""
        if self._stopped:
            raise RuntimeError("relay stopped")
        self._leave_source()
        self.sources += 1
        self._request_source_keyframe = request_keyframe
        self._new_source = self._last_pts is not None
        if self._new_source:
            for sub in self._subs:
                sub._restart()
        self._last_request = float("-inf")
        self._report = None  # the new connection's RTP clock starts afresh
        if isinstance(track, RemoteStreamTrack) and patches.installed():  # a FrameSink feeds it
            # On the next turn of the loop, as a reading task would start: the caller's
            # subscribers (the recorder) are in place by then.
            self._pushing = track
            self._push_ended.clear()
            self._push_start = asyncio.get_running_loop().call_soon(self._start_push, track)
        else:
            self._task = asyncio.ensure_future(self._run(track))

    def _start_push(self, track: RemoteStreamTrack) -> None:
        self._push_start = None
        self.source_live = True
        ingest.push_to(track, self._push)
        self._update_hold()

    def _update_hold(self) -> None:
        """Have the pushing source hold its frames while every subscriber takes them in
        batches, or give them at once (after those it held) when any takes them live."""
        subs = self._subs
        hold = (
            self._pushing is not None
            and self.source_live
            and not self._stopped
            and bool(subs)
            and all(sub.batch_window for sub in subs)
        )
        if not hold:
            self._stop_holding()
        elif not self._holding:
            assert self._pushing is not None
            self._holding = True
            ingest.hold_frames(self._pushing, True)
            self._arm_drain()

    def _stop_holding(self) -> None:
        """The source gives each frame at once again, after those it held (which go now)."""
        if not self._holding:
            return
        self._holding = False
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if self._pushing is not None:
            ingest.hold_frames(self._pushing, False)

    def _arm_drain(self) -> None:
        sub = self._subs[0]
        loop = asyncio.get_running_loop()
        due = grid_point_after(loop.time(), sub.batch_window, sub.batch_phase)
        self._drain_timer = loop.call_at(due, self._drain_held)

    def _drain_held(self) -> None:
        """On the batched subscribers' grid: what the source held, to them now (a window
        old already: they are woken at once, not at the next point)."""
        self._drain_timer = None
        if not self._holding or self._pushing is None:
            return
        try:
            ingest.drain_frames(self._pushing)
        finally:
            if self._holding and self._subs:
                self._arm_drain()
        for sub in self._subs:
            if sub.depth:
                sub._wake()

    def _leave_source(self) -> None:
        """Stop taking frames from the current source (a reconnect replaces it, or the stop)."""
        self._stop_holding()  # what it held goes first
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._push_start is not None:
            self._push_start.cancel()
            self._push_start = None
        if self._pushing is not None:
            ingest.push_to(self._pushing, None)
            self._pushing = None
        self.source_live = False

    def subscribe(
        self, maxsize: int | None = None, batch_window: float = 0.0, batch_phase: float = 0.0
    ) -> Subscription:
        """A new consumer; video consumers start at the next keyframe, which is requested."""
        sub = Subscription(self, maxsize or self.queue_size, batch_window, batch_phase)
        if self._stopped:
            sub._end()
            return sub
        if not batch_window:  # live: what the source held goes to those before it, now
            self._stop_holding()
        self._subs.append(sub)
        self._update_hold()
        if self.kind == "video":
            self.request_keyframe()
        return sub

    def viewer_track(self, codec: str | None = None) -> RelayViewerTrack:
        """A track for a viewer's sender; aiortc's senders must take Packetized frames."""
        patches.install()
        return RelayViewerTrack(self, codec)

    def request_keyframe(self) -> bool:
        """Ask the caller for a keyframe, at most once per interval; False when skipped."""
        if self.kind != "video":
            return False
        now = time.monotonic()
        if now - self._last_request < self._keyframe_min_interval:
            return False
        if self._request_source_keyframe is None:
            return False
        self._last_request = now
        self.keyframe_requests += 1
        self._request_source_keyframe()
        return True

    @property
    def subscriber_count(self) -> int:
        return len(self._subs)

    def stats(self) -> dict[str, int]:
        out = sum(s.frames_out for s in self._subs) + self._gone_out
        dropped = sum(s.dropped for s in self._subs) + self._gone_dropped
        lagged = sum(s.lag_events for s in self._subs) + self._gone_lag
        return {
            "frames_in": self.frames_in,
            "frames_out": out,
            "dropped": dropped,
            "lag_events": lagged,
            "subscribers": len(self._subs),
            "keyframe_requests": self.keyframe_requests,
        }

    async def stop(self) -> None:
        """End the relay: subscribers get None (idempotent).

        A source that has ended (its connection closed) still holds the frames that arrived
        before the close: they are forwarded first, so the recording keeps them; a source
        that is still live is cut off after DRAIN_S.
        """
        self._stopped = True
        self._update_hold()  # what the source held goes first
        try:
            await self._drain_source()
        finally:  # cancelled too: the subscribers (the recorder) still get their end
            self._leave_source()
            for sub in list(self._subs):
                sub._end()

    async def _drain_source(self) -> None:
        if self._push_start is not None and self._pushing is not None:
            self._push_start.cancel()
            self._start_push(self._pushing)  # what the source's queue holds goes now
        if self._pushing is not None and self.source_live:
            try:
                await asyncio.wait_for(self._push_ended.wait(), DRAIN_S)
            except TimeoutError:
                pass
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), DRAIN_S)
            except TimeoutError:
                self._task.cancel()
                try:
                    await self._task
                except asyncio.CancelledError:
                    pass
            self._task = None

    def _unsubscribe(self, sub: Subscription) -> None:
        if self._holding and self._pushing is not None:  # what was held is the leaver's too
            ingest.drain_frames(self._pushing)
        if sub in self._subs:
            self._subs.remove(sub)
            self._gone_out += sub.frames_out
            self._gone_dropped += sub.dropped
            self._gone_lag += sub.lag_events
            self._update_hold()

    async def _run(self, track: MediaStreamTrack) -> None:
        self.source_live = True
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    break
                if not isinstance(frame, EncodedFrame):
                    logger.error(
                        "relay: source yields %s; is streamserver.patches.install() done?",
                        type(frame),
                    )
                    break
                self._dispatch(frame)
        finally:
            self.source_live = False

    def _push(self, frame: EncodedFrame | None) -> None:
        """A frame from the pushing source, in its packet's callback; None: the source ended."""
        if frame is None:
            self.source_live = False
            self._update_hold()
            self._push_ended.set()
            if self._pushing is not None:
                self._pushing.stop()  # ended, as recv() would have left it
            return
        try:
            self._dispatch(frame)
        except Exception:  # never into the packet path: the next frame is dispatched again
            logger.exception("relay: a frame could not be dispatched")

    def _dispatch(self, frame: EncodedFrame) -> None:
        if frame.keyframe and frame.kind == "video":
            self.last_keyframe = frame
        if self._new_source and self._last_pts is not None:
            # Keep pts increasing across a reconnect: continue after the wall-clock gap.
            gap = max(1, round((frame.arrival - self._last_arrival) * frame.clock_rate))
            self._offset = self._last_pts + gap - frame.pts
            self._new_source = False
            if self._report is not None and self._report.pts is not None:
                self._report_pts = self._report.pts + self._offset
        pts = frame.pts + self._offset
        self.frames_in += 1
        frame = frame.relayed(pts, self.capture_time(pts), self.frames_in)
        self._last_pts = frame.pts
        now = time.monotonic()
        if self.last_frame_at is None or now - self.last_frame_at > PAUSE_S:
            self.resumed_arrival = frame.arrival
        self._last_arrival = frame.arrival
        self.last_frame_at = now
        self.codec = frame.codec
        wants_key = False
        for sub in self._subs:
            wants_key = sub._offer(frame) or wants_key
        if wants_key:
            self.request_keyframe()
