"""The evidence folder of one call session: media parts, location fixes, events.

Layout: ``media-001.mkv``, ``media-002.mkv``... (one part per caller connection),
``location.jsonl`` and ``events.jsonl``. All file writes go through one worker thread,
which keeps them in order and keeps the event loop free.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from streamserver.frames import EncodedFrame
from streamserver.relay import Subscription

from .mux import PartWriter

logger = logging.getLogger(__name__)

BATCH_QUEUE = 256


class SessionRecorder:
    """Muxes a session's encoded frames into Matroska parts, without encoding."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"recorder-{folder.name}")
        self._task: asyncio.Task[None] | None = None
        self._subs: list[Subscription] = []
        self._part_no = 0
        self._closed = False
        self.parts: list[Path] = []
        self.frames_recorded = 0
        self.frames_skipped = 0
        self.errors: list[str] = []

    @property
    def recording(self) -> bool:
        return self._task is not None and not self._task.done()

    def attach(self, video: Subscription | None, audio: Subscription | None) -> None:
        """Start a new part fed by these subscriptions (a caller connection).

        The recorder owns the subscriptions: a later attach or close() finishes them
        (queued frames are still written), which finishes the previous part.
        """
        if self._closed:
            raise RuntimeError("recorder closed")
        for sub in self._subs:
            sub.finish()
        self._subs = [s for s in (video, audio) if s is not None]
        if not self._subs:
            return
        self._part_no += 1
        path = self.folder / f"media-{self._part_no:03d}.mkv"
        writer = PartWriter(path, video is not None, audio is not None)
        previous = self._task
        self._task = asyncio.ensure_future(self._record(previous, writer, list(self._subs)))

    async def _record(
        self,
        previous: asyncio.Task[None] | None,
        writer: PartWriter,
        subs: list[Subscription],
    ) -> None:
        if previous is not None:
            await asyncio.shield(previous)
        loop = asyncio.get_running_loop()
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
                        await loop.run_in_executor(self._executor, self._write, writer, batch)
                    except Exception as exc:  # keep draining so the relay never blocks
                        failed = True
                        self.errors.append(f"{writer.path.name}: {exc!r}")
                        logger.exception("recorder: writing %s failed", writer.path)
        finally:
            for pump in pumps:
                pump.cancel()
            await loop.run_in_executor(self._executor, self._finish, writer)

    @staticmethod
    async def _pump(sub: Subscription, out: asyncio.Queue[EncodedFrame | None]) -> None:
        while (frame := await sub.get()) is not None:
            await out.put(frame)
        await out.put(None)

    def _write(self, writer: PartWriter, batch: list[EncodedFrame]) -> None:
        was_started = writer.started
        before = writer.frames_written
        skipped = writer.skipped
        for frame in batch:
            writer.write(frame)
        self.frames_recorded += writer.frames_written - before
        self.frames_skipped += writer.skipped - skipped
        if not was_started and writer.started:
            self.parts.append(writer.path)
            self._append_line(
                "events.jsonl",
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

    def _finish(self, writer: PartWriter) -> None:
        try:
            writer.close()
        except Exception as exc:
            self.errors.append(f"{writer.path.name}: close: {exc!r}")
            logger.exception("recorder: closing %s failed", writer.path)
        if writer.start_arrival is not None:
            self._append_line(
                "events.jsonl",
                {
                    "type": "recording_part_finished",
                    "part": writer.path.name,
                    "frames": writer.frames_written,
                    "first_frame_wall_clock": writer.start_arrival,
                    "last_frame_wall_clock": writer.last_arrival,
                    "time": time.time(),
                },
            )

    def _append_line(self, name: str, record: dict[str, Any]) -> None:
        with (self.folder / name).open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")
            f.flush()

    def append_fix(self, fix: dict[str, Any]) -> None:
        """Append one GPS fix to location.jsonl (written in order, off the event loop)."""
        if not self._closed:
            self._executor.submit(self._append_line, "location.jsonl", dict(fix))

    def append_event(self, event: dict[str, Any]) -> None:
        """Append one session event to events.jsonl (written in order, off the event loop)."""
        if not self._closed:
            self._executor.submit(self._append_line, "events.jsonl", dict(event))

    async def flush(self) -> None:
        """Wait until every write submitted so far is on disk."""
        if not self._closed:
            await asyncio.get_running_loop().run_in_executor(self._executor, lambda: None)

    async def close(self) -> None:
        """Finish the current part (trailer), flush the JSON files; idempotent."""
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
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
