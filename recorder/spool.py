"""Background upload of closed evidence to the store, with backoff.

The evidence folder is the spool: segments are written and closed there first, then uploaded
by one thread; every object is checked against the store's own checksum before its receipt is
written to ``uploads.jsonl``. Nothing local is deleted before that (and, with ``keep_local``, the
default, nothing is deleted at all). ``enqueue_all`` on start-up uploads whatever is left.
Where a folder's objects go is decided once (``store-prefix``): the session's prefix if this
node claims its index first, else this node's place under it (``contributions``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import jwt

from .chain import canonical
from .contributions import IndexRecord, contribution_prefix, member_key, read_index
from .defaults import RETENTION_DAYS
from .durable import append_line, write_new
from .manifest import JWKS_FILE, MANIFEST_JSON, MANIFEST_JWS
from .store import (
    AlreadyStored,
    EvidenceStore,
    ObjectLock,
    Receipt,
    StoredVersion,
    index_key,
    retain_until,
    session_prefix,
)

logger = logging.getLogger(__name__)

RECEIPTS_FILE = "uploads.jsonl"
PREFIX_FILE = "store-prefix"


class LockRules(Protocol):
    """What the spool needs of the retention rules: the lock for a session's new objects."""

    def lock_for(self, session_id: str, started_at: datetime) -> ObjectLock: ...


@dataclass(slots=True)
class _Item:
    name: str
    data: bytes
    sha256: str


@dataclass(frozen=True, slots=True)
class ManifestFiles:
    """A folder's manifest files as read once: the payload and the exact bytes it came from,
    so what is uploaded and what is decided from it (closed, what it lists) are one version,
    whatever the recorder re-signs meanwhile."""

    payload: dict[str, Any]
    jws: bytes | None
    json: bytes | None


def read_manifest_files(folder: Path) -> ManifestFiles | None:
    """The payload of ``manifest.jws`` (unverified), else of ``manifest.json``."""
    jws = _read(folder / MANIFEST_JWS)
    readable = _read(folder / MANIFEST_JSON)
    if jws is not None:
        decoded = jwt.PyJWS().decode_complete(jws, options={"verify_signature": False})
        payload: dict[str, Any] = json.loads(decoded["payload"])
    elif readable is not None:
        payload = json.loads(readable)
    else:
        return None
    return ManifestFiles(payload, jws, readable)


def signed_manifest(folder: Path) -> dict[str, Any] | None:
    files = read_manifest_files(folder)
    return None if files is None else files.payload


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def read_receipts(folder: Path) -> dict[tuple[str, str], dict[str, Any]]:
    path = folder / RECEIPTS_FILE
    out: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a torn last line: that upload is simply redone
            out[(r["name"], r["sha256"])] = r
    return out


class Spooler:
    def __init__(
        self,
        store: EvidenceStore,
        *,
        retention_days: int = RETENTION_DAYS,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        keep_local: bool = True,
        lock_for: Callable[[str, datetime], ObjectLock] | None = None,
        node_id: str | None = None,
    ) -> None:
        self.store = store
        # This node in a cluster: where its contribution to a session another node began
        # goes (``contributions``). None: a single node, whose folders are whole sessions.
        self.node_id = node_id
        self.retention_days = retention_days
        # The retention rules' lock for a session's new objects (session id, start); without
        # rules, ``retention_days`` from now.
        self.lock_for = lock_for
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.keep_local = keep_local
        self._queue: OrderedDict[Path, float] = OrderedDict()
        self._pending: dict[Path, tuple[int, int]] = {}
        # The folder the worker is syncing now (and since when it has waited): taken off the
        # queue while it is tried, but still not in the store, so still counted as backlog.
        self._current: tuple[Path, float] | None = None
        self._busy = False
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.uploaded_objects = 0
        self.uploaded_bytes = 0
        self.failures = 0
        self.last_error: str | None = None
        # Told (from the spool's thread) when a closed, signed bundle has reached the store:
        # the session id and the SHA-256 of its manifest.jws (the server's event webhook).
        self.on_stored: Callable[[str, str], None] | None = None

    # -- control -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="evidence-spool", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def enqueue(self, folder: Path) -> None:
        """Sync this session folder with the store soon (thread-safe, cheap)."""
        with self._cond:
            self._queue.setdefault(folder, time.time())
            self._cond.notify_all()

    def enqueue_all(self, evidence_dir: Path) -> int:
        """Start-up: queue every session folder that has anything not yet uploaded."""
        count = 0
        if evidence_dir.is_dir():
            for folder in sorted(p for p in evidence_dir.iterdir() if p.is_dir()):
                if (folder / MANIFEST_JSON).exists() or (folder / MANIFEST_JWS).exists():
                    self.enqueue(folder)
                    count += 1
        return count

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or uploading; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def stats(self) -> dict[str, Any]:
        """The backlog for metrics and the console."""
        with self._cond:
            queued = dict(self._queue)
            if self._current is not None:
                queued.setdefault(*self._current)
            pending = dict(self._pending)
        oldest = min(queued.values(), default=None)
        return {
            "queued_sessions": len(queued),
            "pending_objects": sum(n for n, _ in pending.values()),
            "pending_bytes": sum(b for _, b in pending.values()),
            "oldest_pending_s": round(time.time() - oldest, 1) if oldest else 0.0,
            "uploaded_objects": self.uploaded_objects,
            "uploaded_bytes": self.uploaded_bytes,
            "failures": self.failures,
            "last_error": self.last_error,
        }

    # -- worker --------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = self.backoff_initial_s
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait(1.0)
                if self._stop.is_set():
                    return
                folder, since = self._queue.popitem(last=False)
                self._current = (folder, since)
                self._busy = True
            try:
                self.sync(folder)
            except Exception as exc:
                self.failures += 1
                self.last_error = f"{folder.name}: {exc}"
                logger.warning(
                    "spool: upload of %s failed (retry in %.1fs): %s", folder.name, backoff, exc
                )
                with self._cond:
                    self._queue[folder] = min(since, self._queue.get(folder, since))
                    self._queue.move_to_end(folder, last=False)
                    self._current = None
                    self._busy = False
                    self._cond.notify_all()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.backoff_max_s)
                continue
            backoff = self.backoff_initial_s
            with self._cond:
                self._current = None
                self._busy = False
                self._cond.notify_all()

    def _items(
        self, folder: Path, files: ManifestFiles, done: dict[tuple[str, str], Any]
    ) -> list[_Item]:
        items: list[_Item] = []
        manifest = files.payload
        kept = manifest.get("originals", []) + manifest.get("derivatives", [])
        for seg in manifest.get("segments", []) + manifest.get("torn_parts", []) + kept:
            if (seg["name"], seg["sha256"]) in done:
                continue
            data = (folder / seg["name"]).read_bytes() if (folder / seg["name"]).exists() else b""
            items.append(_Item(seg["name"], data, seg["sha256"]))
        for name, info in manifest.get("files", {}).items():
            with (folder / name).open("rb") as f:
                data = f.read(int(info["bytes"]))
            items.append(_Item(name, data, info["sha256"]))
        keys = _read(folder / JWKS_FILE)
        # manifest.json is the readable copy: uploaded only when it says what the signed one says.
        readable = files.json if files.json and json.loads(files.json) == manifest else None
        for name, data in ((JWKS_FILE, keys), (MANIFEST_JWS, files.jws), (MANIFEST_JSON, readable)):
            if data is not None:
                items.append(_Item(name, data, hashlib.sha256(data).hexdigest()))
        return items

    @staticmethod
    def _started(manifest: dict[str, Any]) -> datetime:
        started = manifest.get("started_at")
        return datetime.fromisoformat(started) if started else datetime.now(UTC)

    def _prefix(self, folder: Path, manifest: dict[str, Any], lock: ObjectLock) -> str:
        """Where this folder's objects go, decided once (kept in ``store-prefix``): the
        session's prefix if this node claims the session's index first, else its own place
        under the prefix another node claimed, announced by a member record (both in
        ``contributions``); never a second index."""
        path = folder / PREFIX_FILE
        if path.exists():
            return path.read_text().strip()
        when = self._started(manifest)
        own = session_prefix(when, manifest.get("incident_ref"), folder.name)
        claim = IndexRecord(folder.name, own, self.node_id)
        receipt = self._create(index_key(folder.name), claim.encode(), lock)
        if receipt is not None:
            self._receipt(folder, "index", receipt)
            prefix = own
        else:
            found = read_index(self.store, folder.name)
            mine = found.node_id == self.node_id or self.node_id is None
            prefix = contribution_prefix(found.prefix, None if mine else self.node_id)
            if not mine:
                assert self.node_id is not None
                member = IndexRecord(folder.name, prefix, self.node_id)
                self._create(member_key(folder.name, self.node_id), member.encode(), lock)
        write_new(path, (prefix + "\n").encode())
        return prefix

    def _create(self, key: str, data: bytes, lock: ObjectLock) -> Receipt | None:
        """A write-once object under the session's lock; None if it was there already."""
        try:
            receipt = self.store.create(key, data, lock.retain_until)
        except AlreadyStored:
            return None
        if lock.legal_hold:
            self.store.set_legal_hold(
                StoredVersion(receipt.key, receipt.version_id, None, False), True
            )
        return receipt

    def _receipt(self, folder: Path, name: str, receipt: Receipt) -> None:
        record = {
            "name": name,
            "key": receipt.key,
            "sha256": receipt.sha256,
            "bytes": receipt.size,
            "version_id": receipt.version_id,
            "retain_until": receipt.retain_until,
            "store": self.store.name,
            "verified_at": datetime.now(UTC).isoformat(),
        }
        append_line(folder / RECEIPTS_FILE, canonical(record) + b"\n")
        self.uploaded_objects += 1
        self.uploaded_bytes += receipt.size

    def sync(self, folder: Path) -> int:
        """Upload what this folder's manifest lists and the store lacks; returns the count."""
        files = read_manifest_files(folder)
        if files is None:
            return 0
        manifest = files.payload
        receipts = read_receipts(folder)
        lock = self._lock(folder, manifest)
        locked_at = time.monotonic()
        prefix = self._prefix(folder, manifest, lock)
        todo = [
            i for i in self._items(folder, files, receipts) if (i.name, i.sha256) not in receipts
        ]
        with self._cond:
            self._pending[folder] = (len(todo), sum(len(i.data) for i in todo))
        uploaded: list[Receipt] = []
        for item in todo:
            if hashlib.sha256(item.data).hexdigest() != item.sha256:
                raise RuntimeError(f"{item.name}: local copy does not match the manifest")
            receipt = self.store.put(
                f"{prefix}/{item.name}", item.data, item.sha256, lock.retain_until, lock.legal_hold
            )
            self._receipt(folder, item.name, receipt)
            uploaded.append(receipt)
            with self._cond:
                n, b = self._pending[folder]
                self._pending[folder] = (n - 1, b - receipt.size)
        with self._cond:
            self._pending.pop(folder, None)
        if uploaded and self.lock_for is not None:
            self._settle_locks(folder, manifest, lock, time.monotonic() - locked_at, uploaded)
        closed = manifest.get("status") == "closed"
        sealed = [i for i in todo if i.name == MANIFEST_JWS]
        if closed and sealed and self.on_stored is not None:
            self.on_stored(folder.name, sealed[0].sha256)
        if not self.keep_local and closed:
            self._prune(folder, manifest, prefix)
        return len(uploaded)

    def _lock(self, folder: Path, manifest: dict[str, Any]) -> ObjectLock:
        if self.lock_for is None:
            return ObjectLock(retain_until(self.retention_days))
        return self.lock_for(folder.name, self._started(manifest))

    def _settle_locks(
        self,
        folder: Path,
        manifest: dict[str, Any],
        lock: ObjectLock,
        elapsed_s: float,
        uploaded: list[Receipt],
    ) -> None:
        """A hold placed or released, or a longer retention decided, while these uploads ran:
        the decision's own pass over the store may have listed the bundle before they landed,
        so bring them into line. (A date that only moved on with the clock, as an indefinite
        one does, is left for the next retention run.)"""
        now = self._lock(folder, manifest)
        later = now.retain_until - lock.retain_until > timedelta(seconds=elapsed_s + 1)
        if not later and now.legal_hold == lock.legal_hold:
            return
        for receipt in uploaded:
            version = StoredVersion(receipt.key, receipt.version_id, None, lock.legal_hold)
            if later:
                self.store.set_retain_until(version, now.retain_until)
            if now.legal_hold != lock.legal_hold:
                self.store.set_legal_hold(version, now.legal_hold)

    def _prune(self, folder: Path, manifest: dict[str, Any], prefix: str) -> None:
        receipts = read_receipts(folder)
        for seg in manifest.get("segments", []):
            path = folder / seg["name"]
            if not path.exists() or (seg["name"], seg["sha256"]) not in receipts:
                continue
            if self.store.verify(f"{prefix}/{seg['name']}", seg["sha256"], int(seg["bytes"])):
                path.unlink()
