"""The spool's backlog as metrics and the console see it, and the moment it says a bundle is
in the store."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from recorder.bundle import Bundle
from recorder.manifest import MANIFEST_JSON, MANIFEST_JWS, Signer
from recorder.spool import Spooler
from recorder.store import LocalFolderStore, ObjectLock, Receipt, StoreError


class _DeadStore(LocalFolderStore):
    """A store that is unreachable: each write waits until the test lets it fail."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.trying = threading.Event()
        self.fail = threading.Event()

    def create(self, key: str, data: bytes, retain_until: datetime) -> Receipt:
        self.trying.set()
        self.fail.wait(10)
        raise StoreError("store unreachable")


def test_a_session_being_tried_is_still_counted_as_backlog(tmp_path: Path) -> None:
    """During an outage the worker spends most of its time inside an attempt: the session it
    holds must not vanish from the backlog while it does (the console would say 'nothing
    waiting' in the middle of an outage)."""
    folder = tmp_path / "ev" / "sess-1"
    folder.mkdir(parents=True)
    (folder / MANIFEST_JSON).write_text(
        json.dumps({"session_id": "sess-1", "started_at": "2026-12-07T10:00:00+00:00"})
    )
    store = _DeadStore(tmp_path / "store")
    spool = Spooler(store, backoff_initial_s=0.05, backoff_max_s=0.05)
    spool.start()
    try:
        spool.enqueue(folder)
        assert store.trying.wait(10)
        during = spool.stats()
        store.fail.set()
    finally:
        spool.stop()
    assert during["queued_sessions"] == 1
    assert during["oldest_pending_s"] >= 0.0
    after = spool.stats()
    assert after["failures"] >= 1 and after["queued_sessions"] == 1


def test_a_bundle_closed_while_its_open_manifest_is_uploaded_is_announced_once(
    tmp_path: Path, signer: Signer
) -> None:
    """The recorder re-signs the manifest whenever it likes. A sync that read the open
    manifest, then uploaded the closed one (signed in between), said nothing, and every later
    sync found it uploaded: the bundle was never announced (CI: no bundle_ready webhook)."""
    bundle = Bundle(tmp_path / "ev" / "sess-2", signer)
    bundle.write_manifest("open")
    closes = iter([lambda: bundle.write_manifest("closed")])

    def lock_for(session_id: str, started_at: datetime) -> ObjectLock:
        # Asked between reading the manifest and reading what to upload: the call ends here.
        next(closes, lambda: None)()
        return ObjectLock(datetime.now(UTC) + timedelta(days=1))

    stored: list[tuple[str, str]] = []
    spool = Spooler(LocalFolderStore(tmp_path / "store"), lock_for=lock_for)
    spool.on_stored = lambda session_id, sha256: stored.append((session_id, sha256))
    spool.sync(bundle.folder)
    spool.sync(bundle.folder)  # the enqueue that follows the close
    sealed = hashlib.sha256((bundle.folder / MANIFEST_JWS).read_bytes()).hexdigest()
    assert stored == [("sess-2", sealed)]
