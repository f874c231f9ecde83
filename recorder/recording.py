"""The evidence folder of one call session: media segments, location fixes, events, and the
hash chain and signed manifest over them.

Layout: ``media-001.mkv``, ``media-002.mkv``... (bounded segments, each starting on a
keyframe; a new one for every caller connection, every ``segment_seconds`` and every
resolution change), ``location.jsonl``, ``events.jsonl``, ``chain.jsonl``, ``manifest.json``
and ``manifest.jws`` (signed), ``jwks.json``. All file writes go through one worker thread,
which keeps them in order and keeps the event loop free. Closed segments are handed to the
spool, which uploads them to the evidence store.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamserver.frames import EncodedFrame
from streamserver.relay import Subscription

from .bundle import EVENTS_FILE, FIXES_FILE, Bundle
from .manifest import Signer
from .mux import PartWriter
from .segments import Segmenter

if TYPE_CHECKING:
    from .spool import Spooler

logger = logging.getLogger(__name__)

BATCH_QUEUE = 256
DEFAULT_SEGMENT_SECONDS = 10.0
_PART = re.compile(r"media-(\d+)\.mkv$")


class SessionRecorder:
    """Muxes a session's encoded frames into Matroska segments, without encoding."""

    def __init__(
        self,
        folder: Path,
        *,
        signer: Signer | None = None,
        spool: Spooler | None = None,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    ) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.signer = signer
        self.spool = spool
        self.segment_seconds = segment_seconds
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"recorder-{folder.name}")
        self._bundle: Bundle | None = None
        self._executor.submit(self._load)  # first job: everything else waits for it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._subs: list[Subscription] = []
        self._last_number = 0
        self._closed = False
        self.parts: list[Path] = []
        self.segments_closed = 0
        # Per kind: frames taken from the relay, dropped by it (the recorder fell behind, or
        # before the first keyframe), written, and skipped by the muxer (no keyframe yet).
        self.totals: dict[str, dict[str, int]] = {
            kind: dict.fromkeys(("taken", "dropped", "written", "skipped"), 0)
            for kind in ("video", "audio")
        }
        self.errors: list[str] = []

    def _load(self) -> None:
        self._bundle = Bundle(self.folder, self.signer)
        used = [int(m.group(1)) for p in self.folder.iterdir() if (m := _PART.match(p.name))]
        self._last_number = max(used, default=0)

    @property
    def bundle(self) -> Bundle:
        assert self._bundle is not None, "used before the writer thread loaded the folder"
        return self._bundle

    @property
    def recording(self) -> bool:
        return self._task is not None and not self._task.done()

    def attach(
        self,
        video: Subscription | None,
        audio: Subscription | None,
        request_keyframe: Callable[[], object] | None = None,
    ) -> None:
        """Start a new segment fed by these subscriptions (a caller connection).

        The recorder owns the subscriptions: a later attach or close() finishes them
        (queued frames are still written), which finishes the previous segment.
        ``request_keyframe`` (default: the video relay's) is called shortly before a segment
        boundary so that the next segment can start on a fresh keyframe.
        """
        if self._closed:
            raise RuntimeError("recorder closed")
        for sub in self._subs:
            sub.finish()
        self._subs = [s for s in (video, audio) if s is not None]
        if not self._subs:
            return
        if request_keyframe is None and video is not None:
            request_keyframe = video._relay.request_keyframe
        loop = asyncio.get_running_loop()
        self._loop = loop
        wanted = request_keyframe

        def ask() -> None:  # from the writer thread
            if wanted is not None and not loop.is_closed():
                loop.call_soon_threadsafe(wanted)

        previous = self._task
        self._task = asyncio.ensure_future(
            self._record(previous, video is not None, audio is not None, ask, list(self._subs))
        )

    def _new_path(self) -> Path:
        return self.folder / f"media-{self._last_number + 1:03d}.mkv"

    def _make_segmenter(
        self, expect_video: bool, expect_audio: bool, ask: Callable[[], None]
    ) -> Segmenter:
        return Segmenter(
            self._new_path,
            expect_video,
            expect_audio,
            self.segment_seconds,
            self._segment_started,
            self._segment_closed,
            ask,
        )

    async def _record(
        self,
        previous: asyncio.Task[None] | None,
        expect_video: bool,
        expect_audio: bool,
        ask: Callable[[], None],
        subs: list[Subscription],
    ) -> None:
        if previous is not None:
            await asyncio.shield(previous)
        loop = asyncio.get_running_loop()
        segmenter = await loop.run_in_executor(
            self._executor, self._make_segmenter, expect_video, expect_audio, ask
        )
        merged: asyncio.Queue[EncodedFrame | None] = asyncio.Queue(BATCH_QUEUE)
        pumps = [asyncio.ensure_future(self._pump(sub, merged)) for sub in subs]
        ended = 0
        failed = False
        try:
            while ended < len(subs):
                batch: list[EncodedFrame] = []
                item = await merged.get()
                while True:
                    if item is None:
                        ended += 1
                    else:
                        batch.append(item)
                    if merged.empty():
                        break
                    item = merged.get_nowait()
                if batch and not failed:
                    try:
                        await loop.run_in_executor(self._executor, self._write, segmenter, batch)
                    except Exception as exc:  # keep draining so the relay never blocks
                        failed = True
                        self.errors.append(f"{segmenter.current.path.name}: {exc!r}")
                        logger.exception("recorder: writing %s failed", segmenter.current.path)
        finally:
            for pump in pumps:
                pump.cancel()
            await loop.run_in_executor(self._executor, self._finish, segmenter)

    async def _pump(self, sub: Subscription, out: asyncio.Queue[EncodedFrame | None]) -> None:
        overruns = 0  # the subscription is the recorder's own, from its first frame
        while True:
            frame = await sub.get()
            if sub.lag_events != overruns:  # we fell so far behind that the relay dropped
                overruns = sub.lag_events
                self._overrun(sub, frame)
            if frame is None:
                break
            await out.put(frame)
        self.totals[sub.kind]["taken"] += sub.frames_out
        self.totals[sub.kind]["dropped"] += sub.dropped
        await out.put(None)

    def _overrun(self, sub: Subscription, resumed_at: EncodedFrame | None) -> None:
        """Media the recorder never got is on the record as such, never silently missing."""
        logger.error("recorder %s: fell behind, %s frames dropped", self.folder.name, sub.kind)
        # Straight to the writer: this may come while close() drains, before the manifest.
        self._executor.submit(
            self._append,
            EVENTS_FILE,
            {
                "type": "recording_overrun",
                "kind": sub.kind,
                "frames_dropped_total": sub.dropped,
                "resumed_at_pts": resumed_at.pts if resumed_at else None,
                "resumed_at_arrival": resumed_at.arrival if resumed_at else None,
            },
        )

    @property
    def frames_recorded(self) -> int:
        return sum(t["written"] for t in self.totals.values())

    def _write(self, segmenter: Segmenter, batch: list[EncodedFrame]) -> None:
        for frame in batch:
            before = segmenter.frames_written
            segmenter.write(frame)
            outcome = "written" if segmenter.frames_written > before else "skipped"
            self.totals[frame.kind][outcome] += 1

    def _segment_started(self, writer: PartWriter) -> None:
        self._last_number += 1
        self.parts.append(writer.path)
        self.bundle.append_line(
            EVENTS_FILE,
            {
                "type": "recording_part_started",
                "part": writer.path.name,
                "first_frame_wall_clock": writer.start_arrival,
                "video_codec": writer.video_codec,
                "width": writer.width,
                "height": writer.height,
                "time": time.time(),
            },
        )

    def _segment_closed(self, writer: PartWriter, reason: str) -> None:
        bundle = self.bundle
        bundle.append_line(
            EVENTS_FILE,
            {
                "type": "recording_part_finished",
                "part": writer.path.name,
                "frames": writer.frames_written,
                "first_frame_wall_clock": writer.start_arrival,
                "last_frame_wall_clock": writer.last_arrival,
                "reason": reason,
                "time": time.time(),
            },
        )
        bundle.add_segment(
            writer.path,
            frames=writer.frames_written,
            duration_s=round(writer.duration_s, 3),
            first_frame_wall_clock=writer.start_arrival,
            last_frame_wall_clock=writer.last_arrival,
            video_codec=writer.video_codec,
            audio_codec="opus" if writer.expect_audio else None,
            width=writer.width,
            height=writer.height,
            cut=reason,
            recovered=False,
        )
        self.segments_closed += 1
        self._publish("open")

    def _publish(self, status: str) -> None:
        try:
            self.bundle.write_manifest(status)
        except Exception as exc:
            self.errors.append(f"manifest: {exc!r}")
            logger.exception("recorder: manifest of %s failed", self.folder)
        if self.spool is not None:
            self.spool.enqueue(self.folder)

    def _finish(self, segmenter: Segmenter) -> None:
        try:
            segmenter.finish("reconnect" if not self._closed else "end")
        except Exception as exc:
            self.errors.append(f"{segmenter.current.path.name}: close: {exc!r}")
            logger.exception("recorder: closing %s failed", segmenter.current.path)

    def append_fix(self, fix: dict[str, Any]) -> None:
        """Append one GPS fix to location.jsonl (written in order, off the event loop)."""
        if not self._closed:
            self._executor.submit(self._append, FIXES_FILE, dict(fix))

    def append_event(self, event: dict[str, Any]) -> None:
        """Append one session event to events.jsonl and the chain (in order, off the loop).

        Events carrying ``incident_ref``, ``token_id``, ``user_agent``, ``device``,
        ``browser`` or ``consent_version`` also fill those fields of the manifest.
        """
        if not self._closed:
            self._executor.submit(self._append, EVENTS_FILE, dict(event))

    def _append(self, name: str, record: dict[str, Any]) -> None:
        try:
            self.bundle.append_line(name, record)
        except Exception as exc:
            self.errors.append(f"{name}: {exc!r}")
            logger.exception("recorder: writing %s failed", name)

    async def flush(self) -> None:
        """Wait until every write submitted so far is on disk."""
        if not self._closed:
            await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)

    async def close(self) -> None:
        """Finish the current segment, chain everything, sign the final manifest; idempotent."""
        if self._closed:
            return
        self._closed = True
        for sub in self._subs:
            sub.finish()
        self._subs = []
        if self._task is not None:
            try:
                await self._task
            except Exception:
                logger.exception("recorder: recording task failed")
        loop = asyncio.get_running_loop()
        if self._task is not None:  # media was attached at some point
            # A continuity figure for the bundle: what reached the recorder against what it wrote.
            totals = {"type": "recording_totals", **self.totals, "time": time.time()}
            await loop.run_in_executor(self._executor, self._append, EVENTS_FILE, totals)
        await loop.run_in_executor(self._executor, self._publish, "closed")
        await loop.run_in_executor(None, self._executor.shutdown, True)
