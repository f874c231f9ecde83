"""Clips are remuxed, never re-encoded: their packets are the master's, byte for byte, from
the keyframe at or before the range's start to its end, and the log says where it was cut."""

from __future__ import annotations

import io
from pathlib import Path

import av

from recorder.catalogue import CatalogueEntry
from recorder.clips import make_clip
from recorder.derivatives import DerivativeRequest, check_log
from recorder.store import LocalFolderStore
from tests.recorder.facecam import face_session, parts_of

__all__ = ["face_session"]  # the fixture, used by name

Packet = tuple[str, int, bool, bytes]


def packets(data: bytes | Path) -> list[Packet]:
    """(kind, pts in ms, keyframe, bytes) of every packet, in order."""
    source = str(data) if isinstance(data, Path) else io.BytesIO(data)
    with av.open(source, "r") as container:
        return [
            (p.stream.type, int(p.pts), p.is_keyframe, bytes(p))
            for p in container.demux(*container.streams)
            if p.size and p.pts is not None
        ]


def test_a_clip_holds_the_masters_packets_in_range(
    face_session: tuple[LocalFolderStore, CatalogueEntry], tmp_path: Path
) -> None:
    store, entry = face_session
    start, end = 1.5, 2.5  # from the middle of the second part into the third
    parts = parts_of(store, entry, start, end)
    assert [p.name for p in parts] == ["media-002.mkv", "media-003.mkv"]
    request = DerivativeRequest("c-1", "face-1", "ivan", "2026-01-01T00:00:00+00:00", "court")
    log = make_clip(request, parts, start, end, tmp_path)

    assert [o["name"] for o in log["outputs"]] == ["clip-002.mkv", "clip-003.mkv"]
    for part, output in zip(parts, log["outputs"], strict=True):
        master = packets(part.data)
        clip = packets(tmp_path / output["name"])
        local_start, local_end = start - part.offset_s, end - part.offset_s
        keyframes = [p[1] for p in master if p[0] == "video" and p[2]]
        cut = max(k for k in keyframes if k / 1000 <= max(0, local_start))
        expected = [p for p in master if cut <= p[1] and p[1] / 1000 < local_end]
        assert clip == expected and clip[0][2]  # starts on a keyframe
        if part.name == "media-003.mkv":
            assert 0 < len(clip) < len(master)
    assert "keyframes" in log["method"] and "not re-encoded" in log["method"]
    assert log["hidden"] is None
    assert check_log(tmp_path, {s.name: s.sha256 for s in entry.segments}) == log
