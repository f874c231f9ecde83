"""Segmenting policy on top of PartWriter: bounded segments, each starting on a keyframe.

A segment is cut at the first video keyframe once it holds ``segment_seconds - lead`` of
media (a keyframe is requested from the caller at that point, and again every second while
none comes), or at once when a keyframe's resolution differs (phones rotate). Audio-only
sessions cut on time alone. Blocking: runs in the recorder's writer thread.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from streamserver.frames import EncodedFrame

from .mux import FrameAfterLoss, PartFactory, PartWriter

LossListener = Callable[[PartWriter, list[FrameAfterLoss]], None]

KEYFRAME_LEAD_S = 0.5
REREQUEST_S = 1.0


class Segmenter:
    def __init__(
        self,
        create: PartFactory,
        expect_video: bool,
        expect_audio: bool,
        segment_seconds: float,
        on_started: Callable[[PartWriter], None],
        on_closed: Callable[[PartWriter, str], None],
        request_keyframe: Callable[[], None] | None = None,
        on_loss: LossListener | None = None,
    ) -> None:
        self._create = create
        self.expect_video = expect_video
        self.expect_audio = expect_audio
        self.segment_seconds = segment_seconds
        self._on_started = on_started
        self._on_closed = on_closed
        self._request_keyframe = request_keyframe
        self._on_loss = on_loss
        self._requested_at = float("-inf")
        self.current = self._new_writer()
        # Per kind, over every part: frames written, and frames not (no keyframe yet).
        self.written: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    def _new_writer(self) -> PartWriter:
        return PartWriter(self._create, self.expect_video, self.expect_audio)

    def _elapsed(self, frame: EncodedFrame) -> float:
        w = self.current
        if frame.kind == "video" and w.first_video_pts is not None:
            return (frame.pts - w.first_video_pts) / frame.clock_rate
        return w.duration_s

    def _cut_reason(self, frame: EncodedFrame) -> str | None:
        w = self.current
        if not w.started:
            return None
        if not self.expect_video:
            return "duration" if self._elapsed(frame) >= self.segment_seconds else None
        if frame.kind != "video":
            return None
        due = self._elapsed(frame) >= self.segment_seconds - KEYFRAME_LEAD_S
        if frame.keyframe:
            size = w.video_size(frame)
            if size is not None and size != (w.width, w.height):
                return "resolution"
            if due:
                return "duration"
        elif due and self._request_keyframe is not None:
            now = time.monotonic()
            if now - self._requested_at >= REREQUEST_S:
                self._requested_at = now
                self._request_keyframe()
        return None

    def write(self, frame: EncodedFrame) -> None:
        reason = self._cut_reason(frame)
        if reason is not None:
            self.finish(reason)
            self.current = self._new_writer()
            self._requested_at = float("-inf")
        w = self.current
        was_started = w.started
        before, skipped = w.written.copy(), w.skipped.copy()
        try:
            w.write(frame)
        finally:
            self.written.update(w.written - before)
            self.skipped.update(w.skipped - skipped)
        if not was_started and w.started:
            self._on_started(w)

    def finish(self, reason: str) -> None:
        """Close the current segment (trailer) and report it if it was started; a close
        that fails (a full disk) raises with the writer still ``current``."""
        w = self.current
        skipped = w.skipped.copy()
        w.close()
        self.skipped.update(w.skipped - skipped)
        if w.path is not None:
            self.report_losses()
            self._on_closed(w, reason)

    def report_losses(self) -> None:
        """Report the frames after loss written to the current part since the last report (at
        the end of each batch, and before a part is reported finished)."""
        losses = self.current.take_after_loss()
        if losses and self._on_loss is not None:
            self._on_loss(self.current, losses)

    def abandon(self) -> PartWriter | None:
        """Give up the part being written after a failed write: its file is closed as far
        as it got (never reported as a finished part) and the next frames wait for a keyframe
        to start a new one. Returns the abandoned writer, if a part was cut short (also one
        whose trailer could not be written)."""
        w = self.current
        if not w.cut_short:
            return None
        self.report_losses()
        skipped = w.skipped.copy()
        try:
            w.close()
        except Exception:
            pass  # the file is closed; the trailer could not be written
        self.skipped.update(w.skipped - skipped)
        self.current = self._new_writer()
        self._requested_at = float("-inf")
        return w

    def request_keyframe(self) -> None:
        if self._request_keyframe is not None:
            self._requested_at = time.monotonic()
            self._request_keyframe()
