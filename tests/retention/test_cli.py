"""``scenelink retention run``: a dry run by default, --execute disposes and audits, twice is a
no-op; ``--now`` moves the clock for a drill."""

from __future__ import annotations

from pathlib import Path

import pytest

from recorder.spool import Spooler
from recorder.store import LocalFolderStore
from retention.book import RetentionBook
from retention.schedule import load_schedule
from signalling.audit.trail import AuditTrail, first_broken
from signalling.cli.main import main as scenelink
from tests.retention.conftest import INCIDENT, PHONE, Clock, days, start_time, write_bundle


def test_run_dry_then_execute_then_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCENELINK_DATA_DIR", str(tmp_path))
    store = LocalFolderStore(tmp_path / "evidence-store")
    start = start_time()
    book = RetentionBook(store, load_schedule(), Clock(start))
    for sid in ("s-old", "s-kept"):
        write_bundle(tmp_path / "evidence" / sid, start)
        Spooler(store, lock_for=book.lock_for).sync(tmp_path / "evidence" / sid)
    book.link("s-kept", "CR-9", "mopi_group_3", "theft", "inv1")
    later = (start + days(32)).isoformat()

    assert scenelink(["retention", "queue", "--now", (start + days(20)).isoformat()]) == 0
    assert "expiring: s-old" in capsys.readouterr().out
    assert scenelink(["retention", "run", "--now", later]) == 0
    out = capsys.readouterr().out
    assert "would dispose: s-old class unassessed" in out and "dry run" in out
    assert "s-kept" not in out and (tmp_path / "evidence" / "s-old").is_dir()

    # Disposing at a future date is a drill, and only a drill configuration allows it.
    assert scenelink(["retention", "run", "--execute", "--now", later, "--by", "rm1"]) == 2
    assert "drill" in capsys.readouterr().err
    assert (tmp_path / "evidence" / "s-old").is_dir()
    monkeypatch.setenv("SCENELINK_RETENTION_DRILL", "true")

    assert scenelink(["retention", "run", "--execute", "--now", later, "--by", "rm1"]) == 0
    assert "disposed: s-old class unassessed" in capsys.readouterr().out
    assert not (tmp_path / "evidence" / "s-old").exists()
    assert (tmp_path / "evidence" / "s-kept").is_dir()
    assert scenelink(["retention", "run", "--execute", "--now", later, "--by", "rm1"]) == 0
    assert "nothing to dispose of" in capsys.readouterr().out

    trail = AuditTrail(tmp_path / "audit" / "audit.jsonl").read()
    erasures = [r for r in trail if r["action"] == "erasure"]
    assert [(r["actor"], r["session_id"]) for r in erasures] == [("rm1", "s-old")]
    assert first_broken(trail) is None
    assert PHONE not in str(erasures) and INCIDENT not in str(erasures)
