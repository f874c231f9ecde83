"""The evidence folder of one call session: media parts, location fixes, events, and the
hash chain and signed manifest over them.

Layout: ``media-001.mkv``, ``media-002.mkv``... (bounded parts, each starting on a keyframe;
a new one for every caller connection, every ``segment_seconds`` and every resolution
change; a number is never used twice, see ``parts``), ``location.jsonl``, ``events.jsonl``
(vocabulary in ``events``), ``chain.jsonl``, ``manifest.json`` and ``manifest.jws``
(signed), ``jwks.json``. All file writes go through one worker thread, which keeps them in
order and keeps the event loop free; how they reach the disk is ``durable``'s policy. Closed
parts are handed to the spool, which uploads them to the evidence store.

When the folder cannot be written (a full disk), the part being written is closed as far as
it got, what was already written stays as it was, every write still to do is held in memory
in order (each is done exactly once, later), and the status says so (``RecordingStatus``).
About once a second the recorder tries again; once space is back it salvages the cut part
(``recovery.salvage_part``), writes what it held, records the gap and starts a new part on
the next keyframe. A folder has one recorder at a time (an exclusive lock), so two can never
fork its chain.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import shutil
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

from streamserver.frames import EncodedFrame
from streamserver.relay import Subscription

from .bundle import EVENTS_FILE, FIXES_FILE, Bundle
from .defaults import SEGMENT_SECONDS
from .durable import make_folder
from .events import (
    CallerFile,
    EvidenceEvent,
    KindTotals,
    MediaGapEnded,
    MediaLoss,
    RecordingMoved,
    iso_at,
    now_iso,
)
from .folderlock import lock_folder
from .manifest import Signer
from .mux import FrameAfterLoss, PartWriter
from .originals import KeptFile, copy_original, write_derivative
from .parts import PartNames
from .recovery import Copied, salvage_part
from .segments import Segmenter
from .spool import Spooler

logger = logging.getLogger(__name__)

BATCH_QUEUE = 256
RETRY_S = 1.0  # how often a failed recorder tries the disk again
SPACE_CHECK_S = 1.0  # how often free space is compared with the warning threshold
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class RecorderClosed(RuntimeError):
    """Something was given to a recorder after close(): a bug in the caller, never dropped
    silently."""


@dataclass(frozen=True, slots=True)
class RecordingStatus:
    """What the console and ``/api/evidence/status`` show about one session's recording."""

    state: Literal["idle", "recording", "failed"] = "idle"
    cause: str | None = None  # why it failed, in words: "disk full"
    since: float | None = None  # when it failed (Unix time)
    low_space: bool = False  # free space under the warning threshold


def describe(exc: BaseException) -> str:
    if getattr(exc, "errno", None) in _NO_SPACE:
        return "disk full"
    return str(exc) or type(exc).__name__


def _zero() -> KindTotals:
    return {"taken": 0, "dropped": 0, "written": 0, "skipped": 0, "lost": 0}


class SessionRecorder:
    """Muxes a session's encoded frames into Matroska parts, without encoding."""

    def __init__(
        self,
        folder: Path,
        *,
        signer: Signer | None = None,
        spool: Spooler | None = None,
        segment_seconds: float = SEGMENT_SECONDS,
        low_space_bytes: int = 0,
        on_status: Callable[[RecordingStatus], None] | None = None,
        node_id: str | None = None,
        tag_parts: bool = False,
    ) -> None:
        self.folder = folder
        # In a cluster: the node whose contribution this is (named in its manifest), and
        # whether its parts carry the node id (a session continued from another node).
        self.node_id = node_id
        self.tag_parts = tag_parts and node_id is not None
        make_folder(folder)
        self._lock_fd = lock_folder(folder)
        self.signer = signer
        self.spool = spool
        self.segment_seconds = segment_seconds
        self.low_space_bytes = low_space_bytes
        self.on_status = on_status
        self._loop: asyncio.AbstractEventLoop | None = _running_loop()
        self._task: asyncio.Task[None] | None = None
        self._subs: list[Subscription] = []
        self._closed = False
        self.parts: list[Path] = []
        self.segments_closed = 0
        self.totals: dict[str, KindTotals] = {"video": _zero(), "audio": _zero()}
        self.errors: list[str] = []
        # Writer-thread state: set up by _load, the writer's first job.
        self._bundle: Bundle | None = None
        self._names: PartNames | None = None
        self._backlog: deque[Callable[[], object]] = deque()  # writes waiting for the disk
        self._resuming = False  # the steps that end a failure are in the backlog
        self._failed_at: float | None = None
        self._lost_since_failure = 0
        self._retried_at = float("-inf")
        self._space_checked_at = float("-inf")
        self._segmenter: Segmenter | None = None
        self._load_error: Exception | None = None
        self._rescue: asyncio.Task[None] | None = None
        self.status = RecordingStatus()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"recorder-{folder.name}")
        self._executor.submit(self._load)  # first job: everything else waits for it

    def _load(self) -> None:
        try:
            self._bundle = Bundle(self.folder, self.signer, self.node_id)
            self._names = PartNames(
                self.folder,
                (e["name"] for e in self._bundle.chain.entries if "name" in e),
                self.node_id if self.tag_parts else None,
            )
        except Exception as exc:  # e.g. no room to set a torn line aside
            logger.exception("recorder %s: cannot open the folder", self.folder.name)
            self._load_error = exc
            self._mark_failed(describe(exc))

    @property
    def bundle(self) -> Bundle:
        if self._bundle is None:  # a write that needs it is held and tried again
            self._load()
        if self._bundle is None:
            assert self._load_error is not None
            raise self._load_error
        return self._bundle

    @property
    def closed(self) -> bool:
        """close() was called: nothing more can be added."""
        return self._closed

    @property
    def recording(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def frames_recorded(self) -> int:
        return sum(t["written"] for t in self.totals.values())

    # -- media -------------------------------------------------------------------------

    def attach(
        self,
        video: Subscription | None,
        audio: Subscription | None,
        request_keyframe: Callable[[], object] | None = None,
    ) -> None:
        """Start a new part fed by these subscriptions (a caller connection).

        The recorder owns the subscriptions: a later attach or close() finishes them
        (queued frames are still written), which finishes the previous part.
        ``request_keyframe`` (default: the video relay's) is called shortly before a part
        boundary so that the next part can start on a fresh keyframe.
        """
        if self._closed:
            raise RecorderClosed(self.folder.name)
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

    def _make_segmenter(
        self, expect_video: bool, expect_audio: bool, ask: Callable[[], None]
    ) -> Segmenter:
        self._segmenter = Segmenter(
            self._create_part,
            expect_video,
            expect_audio,
            self.segment_seconds,
            self._segment_started,
            self._segment_closed,
            ask,
            self._frames_after_loss,
        )
        if self.status.state == "idle":
            self._set_status(replace(self.status, state="recording"))
        return self._segmenter

    def _create_part(self) -> tuple[Path, BinaryIO]:
        self.bundle  # noqa: B018  # loads the folder's names if that failed before
        assert self._names is not None
        return self._names.create()

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
        # The batch last handed to the writer. It is not awaited: a write that is done by the
        # next batch (the usual case) costs the event loop no wake-up from the writer thread.
        # Each batch is handed over before anything is awaited (a cancellation cannot leave it
        # behind); the writer has one thread, so batches are written in order; and the batch
        # before is then waited for if it is still being written, so no more than one is ever
        # queued behind another.
        writing: Future[None] | None = None
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
                if batch:
                    before = writing
                    writing = self._executor.submit(self._write, segmenter, batch)
                    await _written(before)
        finally:
            for pump in pumps:
                pump.cancel()
            try:
                await _written(writing)
            finally:
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
        totals = self.totals[sub.kind]
        totals["taken"] += sub.frames_out
        totals["dropped"] += sub.dropped
        await out.put(None)

    def _overrun(self, sub: Subscription, resumed_at: EncodedFrame | None) -> None:
        """Media the recorder never got is on the record as such, never silently missing."""
        logger.error("recorder %s: fell behind, %s frames dropped", self.folder.name, sub.kind)
        # Straight to the writer: this may come while close() drains, before the manifest
        # (the pumps end before close() hands over to the writer for the last time).
        self._executor.submit(
            self._write_event,
            {
                "event": "recording_overrun",
                "at": now_iso(),
                "kind": sub.kind,
                "frames_dropped_total": sub.dropped,
                "resumed_at_pts": resumed_at.pts if resumed_at else None,
                "resumed_at_arrival": resumed_at.arrival if resumed_at else None,
            },
        )

    def _write(self, segmenter: Segmenter, batch: list[EncodedFrame]) -> None:
        self._watch_space()
        if self._failed_at is not None:
            self._retry()
        written, skipped = segmenter.written.copy(), segmenter.skipped.copy()
        try:
            for index, frame in enumerate(batch):
                if self._failed_at is not None:  # no media is written while writes fail
                    self._abandon(segmenter)
                    self._lose(batch[index:])
                    return
                try:
                    segmenter.write(frame)
                except Exception as exc:  # a full disk, most likely: keep what is written
                    self._fail(exc)
                    self._abandon(segmenter)
                    self._lose(batch[index:])  # the frame that failed is lost too
                    return
            if self._failed_at is not None:
                self._abandon(segmenter)
        finally:
            segmenter.report_losses()
            self._count(segmenter, written, skipped)

    def _count(self, segmenter: Segmenter, written: Counter[str], skipped: Counter[str]) -> None:
        for kind, n in (segmenter.written - written).items():
            self.totals[kind]["written"] += n
        for kind, n in (segmenter.skipped - skipped).items():
            self.totals[kind]["skipped"] += n

    def _lose(self, frames: list[EncodedFrame]) -> None:
        for frame in frames:
            self.totals[frame.kind]["lost"] += 1
        self._lost_since_failure += len(frames)

    def _segment_started(self, writer: PartWriter) -> None:
        assert writer.path is not None
        self.parts.append(writer.path)
        self._write_event(
            {
                "event": "recording_part_started",
                "at": now_iso(),
                "part": writer.path.name,
                "first_frame_wall_clock": writer.start_arrival,
                "video_codec": writer.video_codec,
                "width": writer.width,
                "height": writer.height,
            }
        )

    def _frames_after_loss(self, writer: PartWriter, losses: list[FrameAfterLoss]) -> None:
        """Frames that hold what arrived, not all the phone sent: on the record as such, one
        event per kind and batch (loss comes in bursts)."""
        assert writer.path is not None
        for kind in ("video", "audio"):
            frames = [loss for loss in losses if loss.kind == kind]
            if frames:
                event: MediaLoss = {
                    "event": "media_loss",
                    "at": now_iso(),
                    "part": writer.path.name,
                    "kind": kind,
                    "frames": [loss.index for loss in frames],
                    "time_s": [loss.time_s for loss in frames],
                }
                self._write_event(event)

    def _segment_closed(self, writer: PartWriter, reason: str) -> None:
        assert writer.path is not None
        path = writer.path
        self._write_event(
            {
                "event": "recording_part_finished",
                "at": now_iso(),
                "part": path.name,
                "frames": writer.frames_written,
                "first_frame_wall_clock": writer.start_arrival,
                "last_frame_wall_clock": writer.last_arrival,
                "reason": reason,
            }
        )
        self._durably(
            lambda: self.bundle.add_segment(
                path,
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
        )
        self.segments_closed += 1
        self._publish("open")

    def _finish(self, segmenter: Segmenter) -> None:
        written, skipped = segmenter.written.copy(), segmenter.skipped.copy()
        try:
            if self._failed_at is not None:
                self._abandon(segmenter)
                return
            try:
                segmenter.finish("reconnect" if not self._closed else "end")
            except Exception as exc:
                self._fail(exc)
                self._abandon(segmenter)
        finally:
            self._count(segmenter, written, skipped)

    # -- failure and recovery (writer thread) --------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """A write failed: stop writing media, keep what the part holds, hold the rest."""
        cause = describe(exc)
        logger.error(
            "RECORDING FAILED for session %s: %s; media is lost until it can write again",
            self.folder.name,
            exc,
        )
        self.errors.append(f"{self.folder.name}: {exc!r}")
        if self._failed_at is None:
            self._mark_failed(cause)
            part = self._segmenter.current.path if self._segmenter else None
            self._hold(
                self._event_writer(
                    {
                        "event": "recording_failed",
                        "at": now_iso(),
                        "cause": cause,
                        "part": part.name if part else None,
                    }
                )
            )

    def _abandon(self, segmenter: Segmenter) -> None:
        """Close the part still open as far as it got, and hold its salvage."""
        writer = segmenter.abandon()
        if writer is not None and writer.path is not None:
            cause = self.status.cause or "write failed"
            self._hold(lambda: self._salvage(writer, cause))

    def _salvage(self, writer: PartWriter, cause: str) -> None:
        assert writer.path is not None
        copied = salvage_part(self.bundle, writer.path, writer.start_arrival, "incomplete", cause)
        self._settle_totals(writer, copied)

    def _settle_totals(self, writer: PartWriter, copied: Copied) -> None:
        """Frames the muxer took but that never reached the disk are lost, not written."""
        for kind in ("video", "audio"):
            missing = max(0, writer.written[kind] - copied.packets[kind])
            self.totals[kind]["written"] -= missing
            self.totals[kind]["lost"] += missing
            self._lost_since_failure += missing

    def _mark_failed(self, cause: str) -> None:
        if self._failed_at is None:
            self._failed_at = time.time()
            self._lost_since_failure = 0
            self._retried_at = time.monotonic()
            self._set_status(replace(self.status, state="failed", cause=cause, since=time.time()))

    def _retry(self, force: bool = False) -> None:
        """Try the held writes again; when they are all done, record the resumption (the
        event and the gap, as held writes too) and let the next keyframe start a new part."""
        now = time.monotonic()
        if not force and now - self._retried_at < RETRY_S:
            return
        self._retried_at = now
        failed_at = self._failed_at
        assert failed_at is not None
        if not force and 0 < self.low_space_bytes > shutil.disk_usage(self.folder).free:
            return  # not before there is room again: it would only fail again at once
        try:
            self._drain_backlog()
            if not self._resuming:
                self._resuming = True
                cause = self.status.cause or "write failed"
                self._backlog.extend(
                    [
                        self._event_writer(
                            {
                                "event": "recording_resumed",
                                "at": now_iso(),
                                "cause": cause,
                                "failed_at": iso_at(failed_at) or "",
                                "frames_lost": self._lost_since_failure,
                            }
                        ),
                        lambda: self.bundle.chain_pending(),
                        lambda: self.bundle.chain.append(
                            "gap",
                            reason=f"recording failed: {cause}",
                            last_frame_wall_clock=failed_at,
                            detected_at=failed_at,
                            at=time.time(),
                        ),
                    ]
                )
                self._drain_backlog()
        except Exception as exc:
            logger.warning("recorder %s: still cannot write: %s", self.folder.name, exc)
            return
        logger.warning("recorder %s: writing again after: %s", self.folder.name, self.status.cause)
        self._failed_at = None
        self._resuming = False
        self._set_status(replace(self.status, state="recording", cause=None, since=None))
        if self._segmenter is not None:
            self._segmenter.request_keyframe()
        self._publish("open")

    def _drain_backlog(self) -> None:
        """Each held write exactly once, in order; stops at the first that fails again."""
        while self._backlog:
            self._backlog[0]()
            self._backlog.popleft()

    def _hold(self, write: Callable[[], object]) -> None:
        self._backlog.append(write)

    def _durably(self, write: Callable[[], object]) -> None:
        """Do one write in order; when it fails, hold it (and all after it) until the disk
        takes writes again, and stop writing media meanwhile."""
        if self._failed_at is not None:
            self._retry()
        if self._backlog or self._failed_at is not None:
            self._hold(write)
            return
        try:
            write()
        except Exception as exc:
            self._hold(write)
            if not isinstance(exc, OSError):
                logger.exception("recorder %s: a write failed", self.folder.name)
            self._fail(exc)

    def _watch_space(self) -> None:
        """A warning before writes fail, and an event each time free space crosses it."""
        now = time.monotonic()
        if self.low_space_bytes <= 0 or now - self._space_checked_at < SPACE_CHECK_S:
            return
        self._space_checked_at = now
        free = shutil.disk_usage(self.folder).free
        low = free < self.low_space_bytes
        if low == self.status.low_space:
            return
        if low:
            logger.warning(
                "evidence disk nearly full: %d bytes free (warning below %d); session %s",
                free,
                self.low_space_bytes,
                self.folder.name,
            )
        self._set_status(replace(self.status, low_space=low))
        self._write_event(
            {
                "event": "disk_space_low" if low else "disk_space_recovered",
                "at": now_iso(),
                "free_bytes": free,
                "threshold_bytes": self.low_space_bytes,
            }
        )

    def _set_status(self, status: RecordingStatus) -> None:
        self.status = status
        loop, callback = self._loop, self.on_status
        if callback is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, status)

    # -- records -------------------------------------------------------------------------

    def _publish(self, status: str) -> None:
        if self._backlog or self._failed_at is not None:
            return  # the manifest waits until everything before it is written
        try:
            self.bundle.write_manifest(status)
        except Exception as exc:
            self.errors.append(f"manifest: {exc!r}")
            logger.exception("recorder: manifest of %s failed", self.folder)
            return
        if self.spool is not None:
            self.spool.enqueue(self.folder)

    def _event_writer(self, event: EvidenceEvent) -> Callable[[], None]:
        return lambda: self.bundle.append_line(EVENTS_FILE, event)

    def _write_event(self, event: EvidenceEvent) -> None:
        """Two steps, each done once: the line, then its chain entry."""
        self._durably(self._event_writer(event))
        self._durably(lambda: self.bundle.chain_pending())

    def _write_fix(self, fix: Mapping[str, Any]) -> None:
        self._durably(lambda: self.bundle.append_line(FIXES_FILE, fix))

    def record_move(
        self, from_node: str | None, reason: str, last_seen_wall_clock: float | None
    ) -> None:
        """This node continues the session another node recorded (``Evidence.continue_
        recording``): the event that opens this node's contribution, with the gap the move
        left since the previous owner's last known media."""
        self._check_open()
        gap = None if last_seen_wall_clock is None else time.time() - last_seen_wall_clock
        event: RecordingMoved = {
            "event": "recording_moved",
            "at": now_iso(),
            "node_id": self.node_id or "",
            "from_node": from_node,
            "reason": reason,
            "last_seen_wall_clock": last_seen_wall_clock,
            "gap_s": None if gap is None else round(gap, 3),
        }
        self._executor.submit(self._write_event, event)

    def _check_open(self) -> None:
        if self._closed:
            raise RecorderClosed(self.folder.name)

    def append_fix(self, fix: Mapping[str, Any]) -> None:
        """Append one GPS fix to location.jsonl (written in order, off the event loop)."""
        self._check_open()
        self._executor.submit(self._write_fix, dict(fix))

    def append_event(self, event: EvidenceEvent) -> None:
        """Append one session event to events.jsonl and the chain (in order, off the loop).

        Events carrying ``incident_ref``, ``token_id``, ``user_agent``, ``device``,
        ``browser`` or ``consent_version`` also fill those fields of the manifest.
        """
        self._check_open()
        self._executor.submit(self._write_event, event)

    def record_gap(
        self, event: MediaGapEnded, started: float, ended: float, detected: float
    ) -> None:
        """A gap in the caller's media (wall clocks ``started`` to ``ended``, noticed at
        ``detected``): the event, then a chained ``gap`` entry, which puts it in the
        manifest's ``gaps``."""
        self._check_open()
        self._executor.submit(self._write_gap, event, started, ended, detected)

    def _write_gap(
        self, event: MediaGapEnded, started: float, ended: float, detected: float
    ) -> None:
        self._write_event(event)
        entry = {
            "reason": "no media from the caller" if event["resumed"] else "media ended",
            "last_frame_wall_clock": started,
            "ended_wall_clock": ended,
            "seconds": event["seconds"],
            "part": event["part"],
            "detected_at": detected,
        }
        self._durably(lambda: self.bundle.chain.append("gap", **entry, at=time.time()))

    async def add_original(self, source: Path, ext: str, event: CallerFile) -> CallerFile:
        """Keep ``source`` byte for byte as an original (it must hash to ``event["sha256"]``),
        chain it, then record ``event`` naming it; returns the event as recorded. Raises
        (``OSError``, ``OriginalMismatch``) with nothing kept if it cannot be stored."""
        self._check_open()

        def write() -> CallerFile:
            self._refuse_while_failed()
            path = copy_original(self.folder, source, ext, event["sha256"])
            try:
                self.bundle.add_kept(
                    "original",
                    path,
                    event["sha256"],
                    content_type=event["content_type"],
                    file_kind=event["kind"],
                    origin=event["origin"],
                )
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            recorded: CallerFile = {**event, "name": path.name}
            self._write_event(recorded)
            self._publish("open")
            return recorded

        return await asyncio.wrap_future(self._executor.submit(write))

    async def add_derivative(self, data: bytes, role: str, **master: Any) -> KeptFile:
        """Keep a JPEG made from a master (an original or a part: ``of``, its name, and
        ``of_sha256``, with anything else that pins it down) as a separate derivative,
        chained; returns its name and hash."""
        self._check_open()

        def write() -> KeptFile:
            self._refuse_while_failed()
            path = write_derivative(self.folder, data)
            digest = hashlib.sha256(data).hexdigest()
            self.bundle.add_kept("derivative", path, digest, role=role, **master)
            self._publish("open")
            return KeptFile(path.name, digest)

        return await asyncio.wrap_future(self._executor.submit(write))

    def _refuse_while_failed(self) -> None:
        """Writes held for a failed disk come first: a new file now would jump the queue."""
        if self._backlog or self._failed_at is not None:
            raise OSError(errno.ENOSPC, f"recording failed: {self.status.cause}")

    def part_sha256(self, name: str) -> str | None:
        """The hash of a closed, chained part (None while it is still being written)."""
        if self._bundle is None:
            return None
        found = [e for e in self._bundle.chain.segments() if e["name"] == name]
        return str(found[-1]["sha256"]) if found else None

    @property
    def current_part(self) -> str | None:
        """The part being written now, if any."""
        writer = self._segmenter.current if self._segmenter is not None else None
        path = writer.path if writer is not None else None
        return path.name if path is not None else None

    async def flush(self) -> None:
        """Wait until every write submitted so far is done (or held, if the disk refuses)."""
        if not self._closed:
            await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)

    async def close(self) -> None:
        """Finish the current part, chain everything, sign the final manifest; idempotent.

        If the disk still refuses writes, the held ones go on being tried in the background
        (the status stays "failed") and the folder is released once they are written.
        """
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
        if await loop.run_in_executor(self._executor, self._close):
            await self._release()
            return
        logger.error(
            "EVIDENCE NOT COMPLETE YET for session %s: %d writes held (%s); retrying",
            self.folder.name,
            len(self._backlog),
            self.status.cause,
        )
        self._rescue = asyncio.ensure_future(self._keep_trying())

    async def _keep_trying(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(RETRY_S)
            if await loop.run_in_executor(self._executor, self._close_again):
                break
        logger.warning("recorder %s: held writes done after close", self.folder.name)
        await self._release()

    async def _release(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        os.close(self._lock_fd)

    def _close(self) -> bool:
        """Writer thread: the last records and the closed manifest; False while held."""
        if self._task is not None:  # media was attached at some point
            # A continuity figure for the bundle: what reached the recorder against what it wrote.
            self._write_event(
                {
                    "event": "recording_totals",
                    "at": now_iso(),
                    "video": self.totals["video"],
                    "audio": self.totals["audio"],
                }
            )
        return self._close_again()

    def _close_again(self) -> bool:
        if self._failed_at is not None:
            self._retry(force=True)
        if self._backlog or self._failed_at is not None:
            return False
        self._publish("closed")
        return True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _written(writing: Future[None] | None) -> None:
    """A batch handed to the writer has been written, waiting only while it still is (its
    state costs no wake-up to check, awaiting a future that is done would one); its failure
    raises here. A cancelled wait leaves the write to go on: it is evidence."""
    if writing is None:
        return
    if not writing.done():
        await asyncio.shield(asyncio.wrap_future(writing))
    writing.result()
