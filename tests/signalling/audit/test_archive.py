"""The audit trail's write-once copy in the evidence store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from recorder.store import EvidenceStore, S3ObjectLockStore
from signalling.audit.archive import AuditArchiver, read_archive
from signalling.audit.trail import AuditTrail, first_broken


async def test_runs_of_records_are_archived_once_and_join_into_one_chain(
    store: EvidenceStore, tmp_path: Path
) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl")
    archiver = AuditArchiver(trail, store, "node-a", retention_days=30)
    await trail.record("alice", "session_created", "s1", "10.0.0.1")
    await trail.record("alice", "consultation.live_view", "s1", "10.0.0.1")
    assert archiver.sync() == 2
    assert archiver.sync() == 0
    await trail.record("sam", "consultation.audit_search", None, "10.0.0.2")
    assert archiver.sync() == 1
    assert len(store.list("audit/node-a/")) == 2

    archived = read_archive(store, "node-a")
    assert archived == trail.read()
    assert first_broken(archived) is None

    # A fresh archiver (a restart) carries on from what the store holds.
    await trail.record("sam", "sign_in", None, "10.0.0.2")
    assert AuditArchiver(trail, store, "node-a", retention_days=30).sync() == 1
    assert [r["seq"] for r in read_archive(store, "node-a")] == [0, 1, 2, 3]


async def test_an_edited_local_trail_is_not_archived_and_the_archive_keeps_the_truth(
    store: EvidenceStore, tmp_path: Path
) -> None:
    trail = AuditTrail(tmp_path / "audit.jsonl")
    archiver = AuditArchiver(trail, store, "node-b", retention_days=30)
    await trail.record("alice", "consultation.playback", "s1", "10.0.0.1")
    archiver.sync()
    lines = trail.path.read_text().splitlines()
    edited = json.loads(lines[0]) | {"actor": "someone-else"}
    trail.path.write_text(json.dumps(edited) + "\n")
    await AuditTrail(trail.path).record("bob", "consultation.playback", "s1", "10.0.0.3")
    assert first_broken(trail.read()) == 0
    assert archiver.sync() == 0  # nothing is archived over a broken chain
    assert read_archive(store, "node-b")[0]["actor"] == "alice"


async def test_archived_runs_are_locked_in_s3(s3_server: str, tmp_path: Path) -> None:
    s3 = S3ObjectLockStore("audit-lock", endpoint_url=s3_server)
    s3.ensure_bucket()
    trail = AuditTrail(tmp_path / "audit.jsonl")
    await trail.record("alice", "session_created", "s1", "10.0.0.1")
    AuditArchiver(trail, s3, "node-c", retention_days=30).sync()
    [key] = s3.list("audit/node-c/")
    version = s3.client.head_object(Bucket="audit-lock", Key=key)["VersionId"]
    with pytest.raises(ClientError):
        s3.client.delete_object(Bucket="audit-lock", Key=key, VersionId=version)
