"""Resumable uploads from the caller's page, staged outside the evidence until complete.

A page announces a file (its size and where it came from), then sends it in pieces, each
with the byte range it covers, strictly in order; after a dropped connection it asks how much
arrived and goes on from there. The server hashes the bytes as they come and checks the
type by the first bytes (``filetypes``): a file of another type, or larger than announced or
allowed, is refused at once and its staged bytes removed. Only a complete file is handed on
(to the evidence, ``files``); one left unfinished for ``idle_s`` is thrown away. Staged files
live in ``<data dir>/uploads``, never in a bundle, so nothing partial is ever evidence.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from recorder.durable import make_folder
from signalling.calls.filetypes import ACCEPTED, SNIFF_BYTES, FileType, sniff

logger = logging.getLogger(__name__)

Origin = Literal["gallery", "camera", "requested", "low_bandwidth"]


class UploadRefused(Exception):
    """Why an upload or a piece of it was refused (``status``: the HTTP status it maps to).
    ``received`` says how much the server holds, for a page that has to resume."""

    def __init__(self, status: int, message: str, received: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.received = received


@dataclass(slots=True, eq=False)
class Upload:
    id: str
    session_id: str
    filename: str
    size: int
    origin: Origin
    path: Path
    received: int = 0
    type: FileType | None = None
    touched: float = field(default_factory=time.monotonic)
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    head: bytes = b""  # the first bytes, until the type is known
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def complete(self) -> bool:
        return self.received == self.size

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()


class Uploads:
    """The staged uploads of this node (an upload resumes on the node that started it)."""

    def __init__(self, folder: Path, max_bytes: int, chunk_max: int, idle_s: float) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.chunk_max = chunk_max
        self.idle_s = idle_s
        self._uploads: dict[str, Upload] = {}

    def open(self) -> None:
        """Start empty: what a previous run staged can never be resumed (its hash is gone)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        make_folder(self.folder)

    def start(self, session_id: str, filename: str, size: int, origin: Origin) -> Upload:
        if size <= 0:
            raise UploadRefused(400, "the file is empty")
        if size > self.max_bytes:
            mib = self.max_bytes // (1024 * 1024)
            raise UploadRefused(413, f"the file is too large (at most {mib} MB)")
        upload_id = secrets.token_urlsafe(12)
        upload = Upload(upload_id, session_id, filename, size, origin, self.folder / upload_id)
        upload.path.touch(mode=0o600)
        self._uploads[upload_id] = upload
        logger.info(
            "session %s: upload %s started (%d bytes, %s)", session_id, upload_id, size, origin
        )
        return upload

    def get(self, session_id: str, upload_id: str) -> Upload:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.session_id != session_id:
            raise UploadRefused(404, "unknown upload (it may have expired: start again)")
        return upload

    async def put(self, upload: Upload, start: int, total: int, data: bytes) -> Upload:
        """Append one piece covering ``start`` .. ``start + len(data) - 1`` of ``total``."""
        async with upload.lock:
            if upload.id not in self._uploads:
                raise UploadRefused(404, "unknown upload (it may have expired: start again)")
            if total != upload.size:
                raise UploadRefused(400, f"the file is {upload.size} bytes, not {total}")
            if len(data) > self.chunk_max:
                raise UploadRefused(413, f"a piece may hold at most {self.chunk_max} bytes")
            if start != upload.received:
                raise UploadRefused(
                    409, f"expected bytes from {upload.received}", received=upload.received
                )
            if start + len(data) > upload.size:
                raise UploadRefused(400, "the piece goes past the end of the file")
            upload.touched = time.monotonic()
            if upload.type is None:
                upload.head += data[:SNIFF_BYTES]
                if len(upload.head) >= SNIFF_BYTES or start + len(data) == upload.size:
                    upload.type = sniff(upload.head)
                    if upload.type is None:
                        self.discard(upload, "not an accepted type")
                        raise UploadRefused(415, f"this file is not a photo or video ({ACCEPTED})")
            await asyncio.get_running_loop().run_in_executor(None, _append, upload, data)
            upload.received += len(data)
            return upload

    def discard(self, upload: Upload, reason: str) -> None:
        """Forget an upload and remove its staged bytes (refused, expired, or handed on)."""
        if self._uploads.pop(upload.id, None) is not None:
            logger.info("session %s: upload %s removed: %s", upload.session_id, upload.id, reason)
        upload.path.unlink(missing_ok=True)

    def expire(self) -> int:
        """Throw away uploads idle for ``idle_s``; returns how many."""
        now = time.monotonic()
        stale = [u for u in self._uploads.values() if now - u.touched > self.idle_s]
        for upload in stale:
            self.discard(upload, f"unfinished after {self.idle_s:.0f} s idle")
        return len(stale)

    def end_session(self, session_id: str) -> None:
        for upload in [u for u in self._uploads.values() if u.session_id == session_id]:
            self.discard(upload, "the session ended")


def _append(upload: Upload, data: bytes) -> None:
    with upload.path.open("ab") as f:
        f.write(data)
    upload.digest.update(data)
