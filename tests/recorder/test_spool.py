"""The spool's backlog as metrics and the console see it."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from pathlib import Path

from recorder.manifest import MANIFEST_JSON
from recorder.spool import Spooler
from recorder.store import LocalFolderStore, Receipt, StoreError


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
