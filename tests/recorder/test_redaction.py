"""Redacted copies: the detector finds the face in a recorded session, the copy blurs it where
the plan says and nowhere else, silences the muted audio, and the master never changes."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from recorder.catalogue import CatalogueEntry
from recorder.derivatives import LOG_FILE, Cancelled, DerivativeRequest, check_log
from recorder.export import ExportRequest, build_package, verify_package
from recorder.manifest import Signer
from recorder.redaction import (
    OUTPUT_FILE,
    Box,
    Mute,
    Plan,
    PlanError,
    Track,
    propose_faces,
    render_redaction,
)
from recorder.store import LocalFolderStore
from recorder.verify import VerifyError
from tests.recorder.facecam import face_at, face_session, parts_of

__all__ = ["face_session"]  # the fixture, used by name
REQUEST = DerivativeRequest("r-1", "face-1", "ivan", "2026-01-01T00:00:00+00:00", "disclosure")


def test_a_track_moves_linearly_between_keyframes() -> None:
    track = Track((Box(1.0, 0.1, 0.2, 0.2, 0.2), Box(3.0, 0.5, 0.2, 0.4, 0.2)))
    mid = track.at(2.0)
    assert mid is not None
    assert (mid.x, mid.y, mid.w, mid.h) == pytest.approx((0.3, 0.2, 0.3, 0.2))
    assert track.at(0.5) is None and track.at(3.5) is None
    held = Track((Box(1.0, 0.1, 0.1, 0.1, 0.1),))
    assert held.at(0.0) == held.at(9.0) == Box(1.0, 0.1, 0.1, 0.1, 0.1)


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        (Plan(0, 3, (), ()), "tracks"),
        (Plan(0, 3, (Track((Box(1, 0.8, 0.1, 0.3, 0.1),)),), ()), "tracks.0.keyframes.0"),
        (Plan(0, 3, (Track((Box(1, -0.1, 0.1, 0.1, 0.1),)),), ()), "tracks.0.keyframes.0"),
        (Plan(0, 3, (Track((Box(5, 0.1, 0.1, 0.1, 0.1),)),), ()), "tracks.0.keyframes.0.t"),
        (Plan(0, 3, (), (Mute(2, 1),)), "mutes.0"),
        (Plan(2, 1, (), (Mute(1, 2),)), "start_s"),
        (Plan(20, 30, (), (Mute(21, 22),)), "start_s"),
    ],
)
def test_a_plan_names_what_is_wrong(plan: Plan, field: str) -> None:
    with pytest.raises(PlanError) as caught:
        plan.check(media_end_s=5.0)
    assert caught.value.field == field


def test_the_detector_proposes_a_box_over_the_face(
    face_session: tuple[LocalFolderStore, CatalogueEntry],
) -> None:
    store, entry = face_session
    tracks = propose_faces(parts_of(store, entry, 0, 3), 0, 3)
    assert len(tracks) == 1, tracks
    [track] = tracks
    assert len(track.keyframes) >= 4  # a sample every 0.5 s
    for box in track.keyframes:
        x0, y0, x1, y1 = face_at(box.t)
        bx0, by0, bx1, by1 = box.pixels(640, 360)
        assert bx0 <= x0 and by0 <= y0 and bx1 >= x1 and by1 >= y1, (box, face_at(box.t))


def frames_by_time(path: Path, offset: float = 0.0) -> dict[int, np.ndarray]:
    """Decoded pictures (grey) keyed by their time in ms on the session's clock."""
    with av.open(str(path)) as container:
        return {
            round((offset + float(f.pts * f.time_base)) * 1000): f.to_ndarray(format="gray")
            for f in container.decode(video=0)
            if f.pts is not None and f.time_base is not None
        }


def detail(picture: np.ndarray) -> float:
    """How much fine detail a picture has: the variance of its Laplacian."""
    return float(cv2.Laplacian(picture.astype(np.float64), cv2.CV_64F).var())


def audio_between(path: Path, start_s: float, end_s: float) -> np.ndarray:
    """The first channel's samples from ``start_s`` to ``end_s`` of the copy."""
    with av.open(str(path), "r") as container:
        frames = list(container.decode(audio=0))
    first = frames[0]
    assert first.pts is not None and first.time_base is not None
    offset = round(float(first.pts * first.time_base) * first.sample_rate)
    samples = np.concatenate([f.to_ndarray()[0] for f in frames])
    return samples[
        round(start_s * first.sample_rate) - offset : round(end_s * first.sample_rate) - offset
    ]


def test_the_redacted_copy_blurs_the_face_and_silences_the_muted_audio(
    face_session: tuple[LocalFolderStore, CatalogueEntry], tmp_path: Path
) -> None:
    store, entry = face_session
    masters_before = {
        s.name: hashlib.sha256(store.get(f"{entry.prefix}/{s.name}")).hexdigest()
        for s in entry.segments
    }
    parts = parts_of(store, entry, 0.0, 3.0)
    faces = propose_faces(parts, 0.0, 3.0)
    plan = Plan(0.0, 3.0, tuple(faces), (Mute(1.0, 2.0),))
    plan.check(entry.media_seconds)
    seen: list[float] = []
    log = render_redaction(REQUEST, parts, plan, tmp_path, seen.append)
    assert seen[-1] == 1.0 and seen == sorted(seen)

    copy = frames_by_time(tmp_path / OUTPUT_FILE)
    master: dict[int, np.ndarray] = {}
    for part in parts:
        path = tmp_path / f"master-{part.name}"
        path.write_bytes(part.data)
        master |= frames_by_time(path, part.offset_s)
    compared = 0
    for ms, picture in copy.items():
        original = master.get(min(master, key=lambda m: abs(m - ms)))
        assert original is not None
        x0, y0, x1, y1 = face_at(ms / 1000)
        face, face_before = picture[y0:y1, x0:x1].astype(float), original[y0:y1, x0:x1]
        assert detail(face) < detail(face_before) / 10, ms  # the features are gone
        assert np.abs(face - face_before).mean() > 10, ms
        outside = np.ones(picture.shape, bool)
        for box in plan.boxes_at(ms / 1000):
            bx0, by0, bx1, by1 = box.pixels(640, 360)
            outside[by0:by1, bx0:bx1] = False
        assert np.abs(picture[outside].astype(float) - original[outside]).mean() < 4, ms
        compared += 1
    assert compared >= 80

    muted = audio_between(tmp_path / OUTPUT_FILE, 1.05, 1.95)
    heard = audio_between(tmp_path / OUTPUT_FILE, 0.2, 0.9)
    assert len(muted) > 40000 and np.abs(muted).max() < 1e-3
    assert np.sqrt((heard**2).mean()) > 0.05

    assert log["kind"] == "redaction" and log["reason"] == "disclosure"
    assert log["hidden"] is not None and log["hidden"]["audio_muted"] == [
        {"start_s": 1.0, "end_s": 2.0}
    ]
    assert {m["name"]: m["sha256"] for m in log["masters"]} == {
        p.name: masters_before[p.name] for p in parts
    }
    assert check_log(tmp_path, masters_before) == log
    after = {
        s.name: hashlib.sha256(store.get(f"{entry.prefix}/{s.name}")).hexdigest()
        for s in entry.segments
    }
    assert after == masters_before == {s.name: s.sha256 for s in entry.segments}


def test_a_cancelled_render_leaves_nothing(
    face_session: tuple[LocalFolderStore, CatalogueEntry], tmp_path: Path
) -> None:
    store, entry = face_session
    cancel = threading.Event()
    cancel.set()
    plan = Plan(0.0, 3.0, (), (Mute(1.0, 2.0),))
    with pytest.raises(Cancelled):
        render_redaction(REQUEST, parts_of(store, entry, 0, 3), plan, tmp_path, None, cancel)
    assert list(tmp_path.iterdir()) == []


def test_the_disclosure_package_carries_and_checks_the_redaction(
    face_session: tuple[LocalFolderStore, CatalogueEntry], signer: Signer, tmp_path: Path
) -> None:
    store, entry = face_session
    made = tmp_path / "made"
    made.mkdir()
    plan = Plan(0.5, 1.5, (Track((Box(0.5, 0.3, 0.1, 0.2, 0.3),)),), (Mute(0.6, 0.9),))
    log = render_redaction(REQUEST, parts_of(store, entry, 0.5, 1.5), plan, made)
    request = ExportRequest("e-1", "ivan", "CPS", "disclosure", datetime.now(UTC))

    def package(derivative: Path, name: str) -> Path:
        out = build_package(
            store, signer, request, [entry], {}, tmp_path / f"{name}.zip", derivatives=[derivative]
        )
        with zipfile.ZipFile(out) as zf:
            zf.extractall(tmp_path / name)
        return tmp_path / name

    good = package(made, "good")
    [report] = verify_package(good, signer.jwks())
    assert any(n.startswith("redaction r-1: 1 file(s) match") for n in report.notes)
    assert f"because: {REQUEST.reason}" in (good / "continuity-statement.txt").read_text()
    assert json.loads((good / "derivatives" / "r-1" / LOG_FILE).read_bytes()) == log

    copy = good / "derivatives" / "r-1" / OUTPUT_FILE
    copy.write_bytes(copy.read_bytes()[:-1] + b"\0")
    with pytest.raises(VerifyError, match="redacted.mp4: SHA-256 does not match export.json"):
        verify_package(good, signer.jwks())

    forged = tmp_path / "forged"
    shutil.copytree(made, forged)
    wrong = json.loads((forged / LOG_FILE).read_bytes())
    wrong["masters"][0]["sha256"] = "0" * 64
    (forged / LOG_FILE).chmod(0o600)
    (forged / LOG_FILE).write_text(json.dumps(wrong))
    with pytest.raises(VerifyError, match="not in the session's signed manifest"):
        verify_package(package(forged, "forged-package"), signer.jwks())
