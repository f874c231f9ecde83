"""Originals the caller sent and derivatives: kept byte for byte, chained, listed, uploaded,
and checked by verify and fixity."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from recorder import SessionRecorder
from recorder.catalogue import Catalogue, SearchQuery
from recorder.events import CallerFile, now_iso
from recorder.export import ExportRequest, build_package, verify_package
from recorder.fixity import check_store
from recorder.manifest import Signer
from recorder.originals import OriginalMismatch
from recorder.spool import Spooler
from recorder.store import LocalFolderStore, find_session
from recorder.verify import VerifyError, verify_bundle, verify_target


def jpeg_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(out, "JPEG")
    return out.getvalue()


def caller_file(data: bytes) -> CallerFile:
    return {
        "event": "caller_file",
        "at": now_iso(),
        "name": "",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "content_type": "image/jpeg",
        "kind": "photo",
        "origin": "gallery",
        "exif": None,
    }


async def test_original_kept_chained_uploaded_and_verified(signer: Signer, tmp_path: Path) -> None:
    data = jpeg_bytes()
    staged = tmp_path / "staged"
    staged.write_bytes(data)
    store = LocalFolderStore(tmp_path / "store")
    spool = Spooler(store, retention_days=7)
    spool.start()
    folder = tmp_path / "ev" / "sess-o"
    try:
        recorder = SessionRecorder(folder, signer=signer, spool=spool)
        recorded = await recorder.add_original(staged, "jpg", caller_file(data))
        thumb = await recorder.add_derivative(
            b"thumbnail", "thumbnail", of=recorded["name"], of_sha256=recorded["sha256"]
        )
        await recorder.close()
        assert spool.wait_idle(20)
    finally:
        spool.stop()
    assert recorded["name"] == "original-001.jpg"
    assert (folder / recorded["name"]).read_bytes() == data
    assert thumb.name == "derived-002.jpg"
    manifest = json.loads((folder / "manifest.json").read_text())
    [original] = manifest["originals"]
    assert original["sha256"] == recorded["sha256"] and original["bytes"] == len(data)
    assert original["content_type"] == "image/jpeg" and original["file_kind"] == "photo"
    [derived] = manifest["derivatives"]
    assert derived["of"] == "original-001.jpg" and derived["of_sha256"] == recorded["sha256"]
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    assert [e["name"] for e in events if e["event"] == "caller_file"] == ["original-001.jpg"]
    verify_bundle(folder, signer.jwks())
    prefix = find_session(store, "sess-o")
    assert store.get(f"{prefix}/original-001.jpg") == data
    verify_target("sess-o", store, signer.jwks())
    assert check_store(store, signer.jwks())["mismatches"] == []

    flipped = tmp_path / "flipped"
    shutil.copytree(folder, flipped)
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    (flipped / "original-001.jpg").write_bytes(bytes(changed))
    with pytest.raises(VerifyError, match="original original-001.jpg: SHA-256"):
        verify_bundle(flipped, signer.jwks())

    planted = tmp_path / "planted"
    shutil.copytree(folder, planted)
    (planted / "original-009.jpg").write_bytes(data)
    with pytest.raises(VerifyError, match="original-009.jpg: not in the signed manifest"):
        verify_bundle(planted, signer.jwks())


async def test_original_changed_after_upload_is_not_kept(signer: Signer, tmp_path: Path) -> None:
    data = jpeg_bytes()
    staged = tmp_path / "staged"
    staged.write_bytes(data + b"tampered")
    folder = tmp_path / "sess-m"
    recorder = SessionRecorder(folder, signer=signer)
    with pytest.raises(OriginalMismatch):
        await recorder.add_original(staged, "jpg", caller_file(data))
    await recorder.close()
    assert not list(folder.glob("original-*"))
    assert json.loads((folder / "manifest.json").read_text())["originals"] == []
    verify_bundle(folder, signer.jwks())


async def test_a_disclosure_package_carries_the_original(signer: Signer, tmp_path: Path) -> None:
    data = jpeg_bytes()
    staged = tmp_path / "staged"
    staged.write_bytes(data)
    store = LocalFolderStore(tmp_path / "store")
    spool = Spooler(store, retention_days=7)
    spool.start()
    try:
        recorder = SessionRecorder(tmp_path / "ev" / "sess-x", signer=signer, spool=spool)
        recorder.append_event(
            {
                "event": "session_created",
                "at": now_iso(),
                "by": "alice",
                "incident_ref": "CAD-14",
                "mode": "video",
                "token_id": "tok",
                "phone": "+447700900123",
            }
        )
        recorded = await recorder.add_original(staged, "jpg", caller_file(data))
        await recorder.close()
        assert spool.wait_idle(20)
    finally:
        spool.stop()
    entries = Catalogue(store, signer.jwks()).search(SearchQuery())
    request = ExportRequest("exp-14", "ivan", "CPS", "file", datetime.now(UTC))
    package = build_package(store, signer, request, entries, {}, tmp_path / "p.zip")
    fresh = tmp_path / "fresh"
    with zipfile.ZipFile(package) as zf:
        zf.extractall(fresh)
    assert (fresh / "sessions" / "sess-x" / recorded["name"]).read_bytes() == data
    [report] = verify_package(fresh, signer.jwks())
    assert report.session_id == "sess-x"
    (fresh / "sessions" / "sess-x" / recorded["name"]).write_bytes(data[:-1] + b"\x00")
    with pytest.raises(VerifyError, match=recorded["name"]):
        verify_package(fresh, signer.jwks())
