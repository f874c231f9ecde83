"""Resumable uploads: strictly in order, resumed from what arrived, refused by content or
size with nothing staged left behind, and thrown away when abandoned."""

from __future__ import annotations

import asyncio
import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from signalling.calls.filetypes import JPEG
from signalling.calls.uploads import UploadRefused, Uploads


def jpeg(size: int = 256) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((size, size), 64).convert("RGB").save(out, "JPEG")
    return out.getvalue()


def uploads(tmp_path: Path, max_bytes: int = 1 << 20, idle_s: float = 60.0) -> Uploads:
    staged = Uploads(tmp_path / "uploads", max_bytes, 4096, idle_s)
    staged.open()
    return staged


async def test_pieces_in_order_resume_after_a_lost_answer_and_hash(tmp_path: Path) -> None:
    staged = uploads(tmp_path)
    data = jpeg()
    upload = staged.start("s1", "IMG_0001.JPG", len(data), "gallery")
    await staged.put(upload, 0, len(data), data[:4096])
    # The page never saw the answer and sends the same piece again: refused, told where to go on.
    with pytest.raises(UploadRefused) as refused:
        await staged.put(upload, 0, len(data), data[:4096])
    assert refused.value.status == 409 and refused.value.received == 4096
    with pytest.raises(UploadRefused) as gap:
        await staged.put(upload, 8192, len(data), data[8192:12288])
    assert gap.value.status == 409
    assert staged.get("s1", upload.id).received == 4096  # what GET tells the page
    offset = 4096
    while offset < len(data):
        await staged.put(upload, offset, len(data), data[offset : offset + 4096])
        offset += 4096
    assert upload.complete and upload.type == JPEG
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.path.read_bytes() == data
    with pytest.raises(UploadRefused) as other_session:
        staged.get("s2", upload.id)
    assert other_session.value.status == 404


async def test_an_executable_renamed_jpg_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    staged = uploads(tmp_path)
    exe = b"MZ\x90\x00" + bytes(8000)
    upload = staged.start("s1", "photo.jpg", len(exe), "gallery")
    with pytest.raises(UploadRefused) as refused:
        await staged.put(upload, 0, len(exe), exe[:4096])
    assert refused.value.status == 415 and "JPEG, PNG, HEIC, MP4 or MOV" in str(refused.value)
    assert not upload.path.exists() and list((tmp_path / "uploads").iterdir()) == []
    with pytest.raises(UploadRefused):
        staged.get("s1", upload.id)


async def test_sizes_are_checked(tmp_path: Path) -> None:
    staged = uploads(tmp_path, max_bytes=10_000)
    with pytest.raises(UploadRefused) as large:
        staged.start("s1", "big.mov", 10_001, "gallery")
    assert large.value.status == 413 and "at most" in str(large.value)
    with pytest.raises(UploadRefused) as empty:
        staged.start("s1", "empty.jpg", 0, "gallery")
    assert empty.value.status == 400
    data = jpeg(32)
    upload = staged.start("s1", "a.jpg", len(data), "camera")
    with pytest.raises(UploadRefused) as total:
        await staged.put(upload, 0, len(data) + 1, data)
    assert total.value.status == 400
    with pytest.raises(UploadRefused) as past:
        await staged.put(upload, 0, len(data), data + b"x")
    assert past.value.status == 400 and upload.received == 0


async def test_a_truncated_upload_expires_and_its_bytes_go(tmp_path: Path) -> None:
    staged = uploads(tmp_path, idle_s=0.5)
    data = jpeg()
    upload = staged.start("s1", "a.jpg", len(data), "gallery")
    await staged.put(upload, 0, len(data), data[:4096])
    assert staged.expire() == 0 and upload.path.exists()
    await asyncio.sleep(0.6)
    assert staged.expire() == 1
    assert not upload.path.exists()
    with pytest.raises(UploadRefused) as gone:
        await staged.put(upload, 4096, len(data), data[4096:8192])
    assert gone.value.status == 404
