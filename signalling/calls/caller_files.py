"""Photos, videos and stills in a session: a complete upload becomes an original in the
bundle with a thumbnail beside it; a call handler's snapshot is the next live keyframe as a
JPEG derivative; the caller's page falling back to stills is recorded and shown.

Decoding (thumbnails, the snapshot) runs in a worker thread, never on the event loop, and the
snapshot takes the keyframe from its own relay subscription, so the media path is untouched.
Each arrival is published on the session's feed (``FileMessage``) for the consoles.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from typing_extensions import TypedDict

from recorder.events import CallerFile, EvidenceEvent, PhotoExif, Snapshot, StillsFallback
from recorder.originals import OriginalMismatch
from recorder.recording import SessionRecorder
from recorder.stills import keyframe_jpeg, photo_exif, thumbnail
from signalling.calls.files import SessionFile
from signalling.calls.service import SessionEnded, SessionService
from signalling.calls.sessions import utcnow
from signalling.calls.uploads import Upload, UploadRefused, Uploads
from streamserver.quality import NetworkQuality

logger = logging.getLogger(__name__)

KEYFRAME_WAIT_S = 5.0  # for the snapshot's keyframe after asking the phone for one
KEPT_REMEMBERED = 1000  # completed uploads whose answer can be given again


class StillsAdvice(TypedDict):
    """To the caller's page on the data channel: send stills instead of video, or stop."""

    type: Literal["stills"]
    on: bool
    reason: str


class NoLiveVideo(Exception):
    """A snapshot needs the caller's live video on this node."""


@dataclass(frozen=True, slots=True)
class StillsFloor:
    """Received video below ``kbps`` for ``seconds``: the page is told to send stills."""

    kbps: float
    seconds: float


class CallerFiles:
    def __init__(
        self,
        service: SessionService,
        uploads: Uploads,
        stills_interval_s: float,
        floor: StillsFloor,
    ) -> None:
        self.service = service
        self.uploads = uploads
        self.stills_interval_s = stills_interval_s
        self.floor = floor
        self._thin_since: dict[str, float] = {}  # session -> when its bitrate fell below
        self._advised: set[str] = set()  # sessions whose page was told to send stills
        self._sending: set[asyncio.Task[None]] = set()
        self._kept: OrderedDict[str, tuple[str, SessionFile]] = OrderedDict()
        service.quality_listeners.append(self.on_quality)
        service.listeners.append(self.on_event)

    def on_event(self, session_id: str, event: EvidenceEvent) -> None:
        """A session that ends takes its unfinished uploads (staged bytes) with it."""
        if event["event"] == "ended":
            self.uploads.end_session(session_id)
            self._thin_since.pop(session_id, None)
            self._advised.discard(session_id)

    def on_quality(self, session_id: str, quality: NetworkQuality) -> None:
        """Each sample of a live caller's network: below the floor for long enough, the page
        is told to send stills; above it again, to stop (it records both)."""
        kbps = quality["bitrate_kbps"]
        now = time.monotonic()
        if kbps is not None and kbps < self.floor.kbps:
            since = self._thin_since.setdefault(session_id, now)
            if now - since >= self.floor.seconds and session_id not in self._advised:
                self._advised.add(session_id)
                reason = f"video below {self.floor.kbps:g} kbit/s for {self.floor.seconds:g} s"
                self._tell(session_id, {"type": "stills", "on": True, "reason": reason})
        else:
            self._thin_since.pop(session_id, None)
            if session_id in self._advised:
                self._advised.discard(session_id)
                self._tell(session_id, {"type": "stills", "on": False, "reason": "video recovered"})

    def _tell(self, session_id: str, message: StillsAdvice) -> None:
        media = self.service.live_media(session_id)
        if media is not None and not media.closed:
            logger.info("session %s: page told stills %s", session_id, message["on"])
            task = asyncio.ensure_future(media.send_to_caller(json.dumps(message)))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    def kept(self, session_id: str, upload_id: str) -> SessionFile | None:
        """The file a completed upload became (its last answer may never have arrived)."""
        found = self._kept.get(upload_id)
        return found[1] if found is not None and found[0] == session_id else None

    async def put(self, upload: Upload, start: int, total: int, data: bytes) -> SessionFile | None:
        """One piece of an upload; the file's record once it is complete and kept."""
        await self.uploads.put(upload, start, total, data)
        return await self._keep(upload) if upload.complete else None

    async def _keep(self, upload: Upload) -> SessionFile:
        """The complete upload as an original in the bundle (or refused: nothing kept)."""
        assert upload.type is not None
        try:
            recorder = await self.service.live_recorder(upload.session_id)
            loop = asyncio.get_running_loop()
            exif: PhotoExif | None = None
            if upload.type.kind == "photo":
                exif = await loop.run_in_executor(None, photo_exif, upload.path)
            event: CallerFile = {
                "event": "caller_file",
                "at": utcnow().isoformat(),
                "name": "",
                "sha256": upload.sha256,
                "size": upload.size,
                "content_type": upload.type.content_type,
                "kind": "still" if upload.origin == "low_bandwidth" else upload.type.kind,
                "origin": upload.origin,
                "exif": exif,
            }
            recorded = await recorder.add_original(upload.path, upload.type.ext, event)
        except SessionEnded:
            raise UploadRefused(410, "the session has ended") from None
        except (OSError, OriginalMismatch) as exc:
            logger.error("session %s: upload %s not kept: %s", upload.session_id, upload.id, exc)
            raise UploadRefused(507, "the file could not be stored: please try again") from None
        finally:
            self.uploads.discard(upload, "complete" if upload.complete else "refused")
        logger.info(
            "session %s: %s %s kept (%d bytes, %s)",
            upload.session_id,
            recorded["kind"],
            recorded["name"],
            recorded["size"],
            recorded["origin"],
        )
        thumb = await self._thumbnail(recorder, recorded)
        file: SessionFile = {
            "name": recorded["name"],
            "sha256": recorded["sha256"],
            "size": recorded["size"],
            "content_type": recorded["content_type"],
            "kind": recorded["kind"],
            "origin": recorded["origin"],
            "at": recorded["at"],
            "by": None,
            "thumbnail": thumb,
        }
        self._kept[upload.id] = (upload.session_id, file)
        while len(self._kept) > KEPT_REMEMBERED:
            self._kept.popitem(last=False)
        await self.service.store.publish(upload.session_id, {"type": "file", "file": file})
        return file

    async def _thumbnail(self, recorder: SessionRecorder, original: CallerFile) -> str | None:
        """A view derivative carrying the original's hash (None if it cannot be decoded)."""
        path = recorder.folder / original["name"]
        loop = asyncio.get_running_loop()
        data = await loop.run_in_executor(None, thumbnail, path, original["content_type"])
        if data is None:
            return None
        try:
            kept = await recorder.add_derivative(
                data, "thumbnail", of=original["name"], of_sha256=original["sha256"]
            )
        except OSError as exc:
            logger.warning("thumbnail of %s not kept: %s", original["name"], exc)
            return None
        return kept.name

    async def snapshot(self, session_id: str, by: str) -> SessionFile:
        """The next keyframe of the live video as a JPEG derivative linked to its frame."""
        recorder = await self.service.live_recorder(session_id)
        media = self.service.live_media(session_id)
        if media is None or media.closed or media.video_relay.last_arrival is None:
            raise NoLiveVideo("no live video from the caller")
        relay = media.video_relay
        sub = relay.subscribe(maxsize=2)  # starts at the next keyframe, as a viewer's would
        try:
            relay.request_keyframe()
            frame = await asyncio.wait_for(sub.get(), KEYFRAME_WAIT_S)
        except TimeoutError:
            raise NoLiveVideo("no keyframe from the caller in time") from None
        finally:
            sub.close()
        if frame is None:
            raise NoLiveVideo("the caller's video ended")
        part = recorder.current_part
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(None, keyframe_jpeg, frame.codec, frame.data)
        except ValueError as exc:
            raise NoLiveVideo(f"the picture could not be decoded: {exc}") from None
        frame_sha256 = hashlib.sha256(frame.data).hexdigest()
        part_sha256 = recorder.part_sha256(part) if part else None
        kept = await recorder.add_derivative(
            data,
            "snapshot",
            of=part,
            of_sha256=part_sha256,
            frame_pts=frame.pts,
            frame_sha256=frame_sha256,
        )
        event: Snapshot = {
            "event": "snapshot",
            "at": utcnow().isoformat(),
            "by": by,
            "name": kept.name,
            "sha256": kept.sha256,
            "part": part,
            "part_sha256": part_sha256,
            "frame_pts": frame.pts,
            "frame_sha256": frame_sha256,
        }
        recorder.append_event(event)
        file: SessionFile = {
            "name": kept.name,
            "sha256": kept.sha256,
            "size": len(data),
            "content_type": "image/jpeg",
            "kind": "snapshot",
            "origin": "handler",
            "at": event["at"],
            "by": by,
            "thumbnail": kept.name,
        }
        await self.service.store.publish(session_id, {"type": "file", "file": file})
        return file

    async def stills(self, session_id: str, on: bool, reason: str) -> None:
        """The page falls back to stills (or goes back to video): recorded and shown."""
        recorder = await self.service.live_recorder(session_id)
        event: StillsFallback = {
            "event": "stills_fallback",
            "at": utcnow().isoformat(),
            "on": on,
            "reason": reason,
        }
        recorder.append_event(event)
        logger.info(
            "session %s: stills fallback %s (%s)", session_id, "on" if on else "off", reason
        )
        await self.service.store.publish(
            session_id,
            {"type": "stills", "on": on, "reason": reason, "interval_s": self.stills_interval_s},
        )

    def folder(self, session_id: str) -> Path:
        return self.service.evidence.settings.evidence_dir / session_id
