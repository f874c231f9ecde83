"""Evidence bundles: segments, chain, signed manifest, stores, spool, verify, fixity."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from bench.synthetic import Clip
from recorder import SessionRecorder
from recorder.fixity import check_store
from recorder.manifest import Signer
from recorder.recovery import recover_all
from recorder.spool import Spooler
from recorder.store import LocalFolderStore, S3ObjectLockStore, find_session
from recorder.verify import VerifyError, verify_bundle, verify_target
from signalling.cli.main import main as scenelink
from tests.recorder.conftest import TcpProxy
from tests.recorder.crash_child import kill_mid_part
from tests.recorder.feed import record_session, session_created, stream


def s3_store(url: str, bucket: str) -> S3ObjectLockStore:
    store = S3ObjectLockStore(bucket, endpoint_url=url)
    store.ensure_bucket()
    return store


async def test_segments_bounded_keyframe_aligned_and_bundle_verifies(
    clips: dict[str, Clip], signer: Signer, tmp_path: Path
) -> None:
    folder = tmp_path / "sess-a"
    await record_session(folder, clips["H264"], signer, None, connections=2, paced=True)
    report = verify_bundle(folder, signer.jwks())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "closed"
    assert manifest["incident_ref"] == "INC-1/24" and manifest["token_id"] == "tok-1"
    assert manifest["caller"]["consent_version"] == "v3"
    assert manifest["codecs"] == ["H264", "opus"]
    # 3 s clip, 1 s keyframes, 1 s segments: several segments per connection.
    assert report.segments >= 4
    for seg in manifest["segments"]:
        assert seg["duration_s"] <= 1.6
    assert sum(s["duration_s"] for s in manifest["segments"]) == pytest.approx(6, abs=0.5)
    assert scenelink(["verify", str(folder), "--jwks", str(_jwks(tmp_path, signer))]) == 0


def _jwks(tmp_path: Path, signer: Signer) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(signer.jwks()))
    return path


async def test_verify_names_altered_removed_swapped_segment(
    clips: dict[str, Clip], signer: Signer, tmp_path: Path
) -> None:
    original = tmp_path / "orig"
    await record_session(original, clips["VP8"], signer, None)
    names = [s["name"] for s in json.loads((original / "manifest.json").read_text())["segments"]]
    assert len(names) >= 3

    def case(label: str) -> Path:
        copy = tmp_path / label
        shutil.copytree(original, copy)
        return copy

    flipped = case("flip")
    data = bytearray((flipped / names[1]).read_bytes())
    data[len(data) // 2] ^= 0x01
    (flipped / names[1]).write_bytes(bytes(data))
    with pytest.raises(VerifyError, match=f"segment {names[1]}: SHA-256"):
        verify_bundle(flipped, signer.jwks())

    removed = case("removed")
    (removed / names[2]).unlink()
    with pytest.raises(VerifyError, match=f"segment {names[2]}: missing"):
        verify_bundle(removed, signer.jwks())

    swapped = case("swapped")
    a, b = swapped / names[0], swapped / names[1]
    a_bytes = a.read_bytes()
    a.write_bytes(b.read_bytes())
    b.write_bytes(a_bytes)
    with pytest.raises(VerifyError, match=f"segment {names[0]}: SHA-256"):
        verify_bundle(swapped, signer.jwks())

    event_edit = case("event")
    text = (event_edit / "events.jsonl").read_text().replace("handler", "nobody!")
    (event_edit / "events.jsonl").write_text(text)
    with pytest.raises(VerifyError, match="events.jsonl"):
        verify_bundle(event_edit, signer.jwks())

    other = Signer.load_or_create(tmp_path / "other.pem")
    with pytest.raises(VerifyError, match="signature"):
        verify_bundle(original, other.jwks())
    jwks = str(_jwks(tmp_path, signer))
    assert scenelink(["verify", str(flipped), "--jwks", jwks]) == 1


async def test_local_store_spool_and_fixity(
    clips: dict[str, Clip], signer: Signer, tmp_path: Path
) -> None:
    store = LocalFolderStore(tmp_path / "store")
    spool = Spooler(store, retention_days=7)
    spool.start()
    try:
        await record_session(tmp_path / "ev" / "sess-l", clips["VP8"], signer, spool)
        assert spool.wait_idle(20)
    finally:
        spool.stop()
    prefix = find_session(store, "sess-l")
    assert prefix.startswith(datetime.now(UTC).strftime("%Y/%m/%d/INC-1-24/sess-l"))
    verify_target("sess-l", store, signer.jwks())
    assert check_store(store, signer.jwks())["mismatches"] == []


async def test_store_outage_mid_session_then_everything_stored_and_verifies(
    clips: dict[str, Clip], signer: Signer, s3_server: str, tmp_path: Path
) -> None:
    """The store is unreachable for 30 s in the middle of a streaming session."""
    outage_s = 30.0
    port = int(s3_server.rsplit(":", 1)[1])
    proxy = TcpProxy(port)
    store = s3_store(f"http://127.0.0.1:{proxy.port}", "evidence-outage")
    spool = Spooler(store, backoff_initial_s=0.2, backoff_max_s=1.0)
    spool.start()
    folder = tmp_path / "ev" / "sess-out"
    rec = SessionRecorder(folder, signer=signer, spool=spool, segment_seconds=1.0)
    rec.append_event(session_created("INC-9", "t9"))
    try:
        import asyncio

        streaming = asyncio.ensure_future(stream(rec, clips["H264"], outage_s + 4.0))
        await asyncio.sleep(2.0)
        proxy.down()
        down_at = time.monotonic()
        await asyncio.sleep(outage_s)
        backlog = spool.stats()
        proxy.up()
        await streaming
        await rec.close()
        assert spool.wait_idle(30)
    finally:
        spool.stop()
        proxy.down()
    assert time.monotonic() - down_at >= outage_s
    assert backlog["failures"] > 0 and backlog["queued_sessions"] >= 1
    assert rec.segments_closed >= outage_s + 2
    direct = s3_store(s3_server, "evidence-outage")
    report = verify_target("sess-out", direct, signer.jwks())
    assert report.segments == rec.segments_closed
    assert report.status == "closed"
    assert check_store(direct, signer.jwks())["mismatches"] == []


async def test_locked_version_cannot_be_deleted_and_tampering_is_found(
    clips: dict[str, Clip], signer: Signer, s3_server: str, tmp_path: Path
) -> None:
    store = s3_store(s3_server, "evidence-lock")
    spool = Spooler(store, retention_days=31)
    spool.start()
    try:
        await record_session(tmp_path / "ev" / "sess-k", clips["VP8"], signer, spool)
        assert spool.wait_idle(20)
    finally:
        spool.stop()
    prefix = find_session(store, "sess-k")
    key = f"{prefix}/media-002.mkv"
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    head = client.head_object(Bucket="evidence-lock", Key=key)
    assert head["ObjectLockMode"] == "GOVERNANCE"
    assert head["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=30)
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket="evidence-lock", Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert client.head_object(Bucket="evidence-lock", Key=key, VersionId=head["VersionId"])

    # Overwriting makes a new (latest) version; verify and fixity both name the segment.
    data = bytearray(store.get(key))
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket="evidence-lock", Key=key, Body=bytes(data))
    with pytest.raises(VerifyError, match="segment media-002.mkv: SHA-256"):
        verify_target("sess-k", store, signer.jwks())
    found = check_store(store, signer.jwks())["mismatches"]
    assert [m["key"] for m in found] == [key]


async def test_sigkill_mid_session_recovers_and_records_gap(
    clips: dict[str, Clip],
    rec_clip_dir: Path,
    signer: Signer,
    s3_server: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    evidence = tmp_path / "evidence"
    folder = evidence / "sess-kill"
    key = tmp_path_factory.getbasetemp() / "kill-key.pem"
    sent = tmp_path / "sent.log"
    await kill_mid_part(folder, rec_clip_dir, key, sent, closed=2)  # in the third 2 s part
    closed_before = (folder / "chain.jsonl").read_text().count('"kind":"segment"')
    last_sent = float(sent.read_text().split()[-1])

    # "Restart": recovery, then the spool uploads what is left.
    server_signer = Signer.load_or_create(key)
    [result] = recover_all(evidence, server_signer)
    assert len(result.segments) == 1
    store = s3_store(s3_server, "evidence-kill")
    spool = Spooler(store)
    spool.start()
    try:
        assert spool.enqueue_all(evidence) == 1
        assert spool.wait_idle(20)
    finally:
        spool.stop()
    report = verify_target("sess-kill", store, server_signer.jwks())
    assert report.segments == closed_before + 1 and report.status == "interrupted"
    manifest = json.loads((folder / "manifest.json").read_text())
    recovered = manifest["segments"][-1]
    assert recovered["recovered"] and recovered["name"] == result.segments[0]
    [gap] = manifest["gaps"]
    assert gap["last_frame_wall_clock"] == recovered["last_frame_wall_clock"]
    # The recovered part's end comes from container timestamps (milliseconds) and may hold an
    # audio frame after the last video frame logged: it can run a few ms past last_sent.
    behind = last_sent - recovered["last_frame_wall_clock"]
    assert behind > -0.05, "recovered media ends after anything the recorder was given"
    lost = max(0.0, behind)
    print(f"media lost on SIGKILL: {lost:.2f} s")
    (tmp_path.parent / "sigkill-media-lost.txt").write_text(f"{lost:.3f}\n")
    assert lost < 2.0


def test_local_store_never_shortens_a_lock_when_a_growing_file_is_stored_again(
    tmp_path: Path,
) -> None:
    store = LocalFolderStore(tmp_path / "store")
    now = datetime.now(UTC)
    store.put(
        "s/events.jsonl", b"a\n", hashlib.sha256(b"a\n").hexdigest(), now + timedelta(days=90)
    )
    store.put(
        "s/events.jsonl", b"a\nb\n", hashlib.sha256(b"a\nb\n").hexdigest(), now + timedelta(days=1)
    )
    [version] = store.versions("s/events.jsonl")
    assert version.retain_until is not None
    assert version.retain_until >= now + timedelta(days=89)
