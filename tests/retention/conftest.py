"""A clock the tests move, small evidence bundles uploaded by the real spool, and both stores
(a local folder and a bucket with Object Lock on the moto S3 server)."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recorder.spool import Spooler
from recorder.store import EvidenceStore
from retention.book import RetentionBook
from retention.schedule import load_schedule

PHONE = "+447700900123"
INCIDENT = "CAD-4471/23"
LAT, LON = "51.501234", "-0.141567"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def at(self, when: datetime) -> Clock:
        self.now = when
        return self


def start_time() -> datetime:
    """Sessions start now (real time): the moto server enforces locks by its own clock."""
    return datetime.now(UTC).replace(microsecond=0)


def write_bundle(folder: Path, started: datetime) -> None:
    """A closed bundle folder as the recorder leaves it, small enough to upload in a blink."""
    folder.mkdir(parents=True)
    media = secrets.token_bytes(2048)
    (folder / "media-000.mkv").write_bytes(media)
    events = json.dumps({"event": "session_created", "incident_ref": INCIDENT, "phone": PHONE})
    (folder / "events.jsonl").write_text(events + "\n")
    (folder / "location.jsonl").write_text(json.dumps({"lat": LAT, "lon": LON}) + "\n")
    files = {
        name: {
            "bytes": (folder / name).stat().st_size,
            "sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
        }
        for name in ("events.jsonl", "location.jsonl")
    }
    manifest = {
        "format": "scenelink-evidence/1",
        "status": "closed",
        "session_id": folder.name,
        "incident_ref": INCIDENT,
        "started_at": started.isoformat(),
        "segments": [
            {
                "name": "media-000.mkv",
                "sha256": hashlib.sha256(media).hexdigest(),
                "bytes": len(media),
            }
        ],
        "files": files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))


@pytest.fixture
def clock() -> Clock:
    return Clock(start_time())


@pytest.fixture
def book(store: EvidenceStore, clock: Clock) -> RetentionBook:
    return RetentionBook(store, load_schedule(), clock)


Recorded = Callable[[str], str]


@pytest.fixture
def recorded(book: RetentionBook, tmp_path: Path) -> Iterator[Recorded]:
    """Record and upload a session (through the spool, with the rules' lock dates)."""
    spool_dir = tmp_path / "evidence"

    def make(session_id: str) -> str:
        write_bundle(spool_dir / session_id, book.clock())
        spool = Spooler(book.store, lock_for=book.lock_for)
        assert spool.sync(spool_dir / session_id) > 0
        return session_id

    yield make


def days(n: float) -> timedelta:
    return timedelta(days=n)
