"""Evidence is never overwritten and survives torn writes and a full disk."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bench.synthetic import Clip
from recorder import durable, recovery
from recorder.chain import CHAIN_FILE, HashChain, check_links, load_chain
from recorder.folderlock import RecorderBusy
from recorder.manifest import Signer
from recorder.parts import PartNames
from recorder.recording import RecordingStatus, SessionRecorder
from recorder.recovery import recover_folder
from recorder.verify import VerifyError, verify_bundle
from streamserver.relay import TrackRelay
from tests.harness import fill_disk
from tests.recorder.feed import PacedTrack, looped_frames, stream


class InlineExecutor:
    """Runs each job at once, in the caller's thread: the writer thread's jobs finish
    before ``submit`` returns (the timing in which a resumed recorder reused media-001)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("media-*")}


async def test_a_resumed_recorder_never_reuses_a_part_number(
    clips: dict[str, Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "resumed"
    first = SessionRecorder(folder, segment_seconds=1.0)
    await stream(first, clips["VP8"], 4.0, paced=False)
    await first.close()
    before = digests(folder)
    assert len(before) >= 3

    monkeypatch.setattr("recorder.recording.ThreadPoolExecutor", InlineExecutor)
    again = SessionRecorder(folder, segment_seconds=1.0)  # the folder is loaded at once
    await stream(again, clips["VP8"], 2.0, paced=False)
    await again.close()

    after = digests(folder)
    assert {name: after[name] for name in before} == before  # nothing written over
    new = sorted(set(after) - set(before))
    assert new and min(new) > max(before)


def test_part_names_skip_every_name_in_use(tmp_path: Path) -> None:
    (tmp_path / "media-001.mkv").write_bytes(b"one")
    (tmp_path / "media-003.mkv.torn").write_bytes(b"torn")
    names = PartNames(tmp_path, known=["media-002.mkv"])
    (tmp_path / "media-004.mkv").write_bytes(b"made by someone else meanwhile")
    path, file = names.create()
    file.close()
    assert path.name == "media-005.mkv"
    assert (tmp_path / "media-004.mkv").read_bytes() == b"made by someone else meanwhile"
    assert PartNames(tmp_path, known=["media-009.mkv"]).create()[0].name == "media-010.mkv"


def test_an_append_is_whole_or_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "events.jsonl"
    durable.append_line(path, b'{"a":1}\n')
    real_write = os.write

    def short_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", short_then_full)  # durable.os is os
    with pytest.raises(OSError):
        durable.append_line(path, b'{"b":2,"padding":"xxxxxxxxxxxxxxxx"}\n')
    monkeypatch.undo()
    assert path.read_bytes() == b'{"a":1}\n'
    durable.append_line(path, b'{"c":3}\n')
    assert path.read_bytes() == b'{"a":1}\n{"c":3}\n'
    assert oct(path.stat().st_mode & 0o777) == oct(durable.FILE_MODE)


def test_a_torn_chain_tail_is_kept_aside_and_the_chain_goes_on(tmp_path: Path) -> None:
    chain = HashChain(tmp_path)
    for i in range(3):
        chain.append("gap", reason=f"r{i}")
    torn = b'{"seq":3,"kind":"gap","rea'
    with (tmp_path / CHAIN_FILE).open("ab") as f:
        f.write(torn)  # a crash in the middle of a line

    reopened = HashChain(tmp_path)
    assert len(reopened.entries) == 3
    [aside] = tmp_path.glob(f"{CHAIN_FILE}.torn-*")
    assert aside.read_bytes() == torn
    reopened.append("gap", reason="after")
    entries = load_chain(tmp_path / CHAIN_FILE)
    assert len(entries) == 4
    check_links(entries)


# -- the full-disk drill ---------------------------------------------------------------


async def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_full_disk_loses_nothing_written_and_recording_resumes(
    clips: dict[str, Clip], small_disk: Path, tmp_path: Path
) -> None:
    signer = Signer.load_or_create(tmp_path / "key.pem")
    folder = small_disk / "evidence" / "s-full"
    statuses: list[RecordingStatus] = []
    rec = SessionRecorder(
        folder,
        signer=signer,
        segment_seconds=1.0,
        low_space_bytes=4 * 1024 * 1024,
        on_status=statuses.append,
    )
    rec.append_event({"event": "viewer_joined", "at": "2026-12-07T10:00:00+00:00", "by": "handler"})
    feeding = asyncio.ensure_future(stream(rec, clips["H264"], 9.0))
    await wait_for(lambda: rec.segments_closed >= 1, 10, "a first closed part")
    closed = {p.name for p in rec.parts[: rec.segments_closed]}
    written_before = {n: d for n, d in digests(folder).items() if n in closed}

    filler = fill_disk(small_disk, leave=160 * 1024)  # room for a second or so of media
    await wait_for(lambda: rec.status.state == "failed", 10, "the recording to fail")
    assert rec.status.cause == "disk full"
    assert any(s.state == "failed" and s.cause == "disk full" for s in statuses)
    rec.append_fix({"lat": 51.5, "lon": -0.1, "accuracy": 5.0})  # held, not lost
    await asyncio.sleep(1.0)

    filler.unlink()
    await wait_for(lambda: rec.status.state == "recording", 10, "the recording to resume")
    await feeding
    await rec.close()

    after = digests(folder)
    for name, digest in written_before.items():
        assert after[name] == digest  # what was written before the disk filled is untouched
    report = verify_bundle(folder, signer.jwks(), decode=True)
    assert report.status == "closed"
    manifest = json.loads((folder / "manifest.json").read_bytes())
    events = [json.loads(x) for x in (folder / "events.jsonl").read_bytes().splitlines()]
    names = [e["event"] for e in events]
    assert "disk_space_low" in names
    failed = next(e for e in events if e["event"] == "recording_failed")
    assert failed["cause"] == "disk full"
    resumed = next(e for e in events if e["event"] == "recording_resumed")
    assert resumed["frames_lost"] > 0
    assert names.index("recording_failed") < names.index("recording_resumed")
    [gap] = manifest["gaps"]
    assert gap["reason"] == "recording failed: disk full"
    assert gap["resumed_wall_clock"] is not None  # a part was written after the gap
    # The part open when the disk filled: kept whole as written (.torn, chained by hash)
    # and copied up to its last whole frame.
    [incomplete] = [s for s in manifest["segments"] if s["cut"] == "incomplete"]
    assert incomplete["cause"] == "disk full" and incomplete["frames"] > 0
    torn = incomplete["recovered_from"]
    assert hashlib.sha256((folder / torn["name"]).read_bytes()).hexdigest() == torn["sha256"]
    fixes = (folder / "location.jsonl").read_bytes().splitlines()
    assert [json.loads(f)["lat"] for f in fixes] == [51.5]
    totals = next(e for e in events if e["event"] == "recording_totals")
    assert totals["video"]["lost"] + totals["audio"]["lost"] == resumed["frames_lost"]
    for kind in ("video", "audio"):
        t = totals[kind]
        assert t["taken"] == t["written"] + t["skipped"] + t["lost"], (kind, t)
    assert oct(folder.stat().st_mode & 0o777) == oct(durable.FOLDER_MODE)
    print(
        f"disk full: {resumed['frames_lost']} frames lost while writing failed "
        f"(video {totals['video']['lost']}, audio {totals['audio']['lost']}); "
        f"{incomplete['frames']} frames kept from the cut part; nothing written before was lost"
    )


# -- salvage: never renames or writes the original, and survives a crash at any step ----


@pytest.fixture
def whole_part(clips: dict[str, Clip], tmp_path: Path) -> bytes:
    """The bytes of one properly closed part (a few seconds of H.264 and Opus)."""

    async def record() -> bytes:
        rec = SessionRecorder(tmp_path / "source", segment_seconds=60.0)
        await stream(rec, clips["H264"], 3.0, paced=False)
        await rec.close()
        return (tmp_path / "source" / "media-001.mkv").read_bytes()

    return asyncio.run(record())


def cut_folder(tmp_path: Path, data: bytes, name: str = "cut") -> Path:
    folder = tmp_path / "evidence" / name
    folder.mkdir(parents=True)
    (folder / "media-001.mkv").write_bytes(data)
    return folder


def test_a_part_cut_inside_its_header_is_kept_as_it_is(
    whole_part: bytes, tmp_path: Path, signer: Signer
) -> None:
    folder = cut_folder(tmp_path, whole_part[:300])
    result = recover_folder(folder, signer)
    assert result is not None and result.segments == []
    assert (folder / "media-001.mkv").read_bytes() == whole_part[:300]
    manifest = json.loads((folder / "manifest.json").read_bytes())
    assert [t["name"] for t in manifest["torn_parts"]] == ["media-001.mkv"]
    names = [json.loads(x)["event"] for x in (folder / "events.jsonl").read_bytes().splitlines()]
    assert "recording_part_unrecoverable" in names
    verify_bundle(folder, signer.jwks(), decode=True)


def test_a_cut_part_is_salvaged_without_touching_it_whatever_step_a_crash_stopped(
    whole_part: bytes, tmp_path: Path, signer: Signer
) -> None:
    cut = whole_part[: len(whole_part) * 2 // 3]
    plain = cut_folder(tmp_path, cut, "plain")
    # A crash after the whole frames were copied and linked, before they were chained;
    # and one in the middle of the copy (a temporary file of ours left behind).
    linked = cut_folder(tmp_path, cut, "linked")
    copied = recovery._copy_whole_frames(linked / "media-001.mkv", linked / "media-001-whole.mkv")
    assert copied.packets["video"] > 0
    halfway = cut_folder(tmp_path, cut, "halfway")
    (halfway / "media-001-whole.mkv.tmp").write_bytes(b"half a copy")

    for folder in (plain, linked, halfway):
        result = recover_folder(folder, signer)
        assert result is not None and result.segments == ["media-001-whole.mkv"]
        assert (folder / "media-001.mkv").read_bytes() == cut  # the original, untouched
        assert not list(folder.glob("*.tmp"))
        manifest = json.loads((folder / "manifest.json").read_bytes())
        [segment] = manifest["segments"]
        assert segment["recovered_from"]["sha256"] == hashlib.sha256(cut).hexdigest()
        assert segment["frames"] == copied.total
        verify_bundle(folder, signer.jwks(), decode=True)
        assert recover_folder(folder, signer) is None  # done: nothing to do again
        assert len(load_chain(folder / CHAIN_FILE)) == manifest["chain_length"]


def test_an_unchained_media_file_fails_verification(
    whole_part: bytes, tmp_path: Path, signer: Signer
) -> None:
    folder = cut_folder(tmp_path, whole_part[: len(whole_part) // 2])
    recover_folder(folder, signer)
    (folder / "media-002-whole.mkv").write_bytes(whole_part)
    with pytest.raises(VerifyError, match="media-002-whole.mkv: not in the signed manifest"):
        verify_bundle(folder, signer.jwks(), decode=False)


async def test_one_recorder_per_folder(tmp_path: Path) -> None:
    first = SessionRecorder(tmp_path / "s")
    with pytest.raises(RecorderBusy):
        SessionRecorder(tmp_path / "s")
    await first.close()
    second = SessionRecorder(tmp_path / "s")
    await second.close()


async def test_a_write_whose_chaining_failed_is_not_done_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signer: Signer
) -> None:
    folder = tmp_path / "twice"
    real_append = HashChain.append
    failures = iter([OSError(errno.ENOSPC, "No space left on device")])

    def append_once_failing(chain: HashChain, kind: str, **fields: Any) -> dict[str, Any]:
        for failure in failures:
            raise failure
        return real_append(chain, kind, **fields)

    monkeypatch.setattr(HashChain, "append", append_once_failing)
    rec = SessionRecorder(folder, signer=signer)
    rec.append_event({"event": "viewer_joined", "at": "2026-12-07T10:00:00+00:00", "by": "a"})
    await rec.flush()
    assert rec.status.state == "failed"
    await rec.close()  # tries again: the chain entry is written, the line is not repeated
    lines = (folder / "events.jsonl").read_bytes().splitlines()
    assert [json.loads(x)["event"] for x in lines] == [
        "viewer_joined",
        "recording_failed",
        "recording_resumed",
    ]
    verify_bundle(folder, signer.jwks(), decode=False)


async def test_closing_on_a_full_disk_keeps_trying_until_it_is_written(
    clips: dict[str, Clip], small_disk: Path, signer: Signer
) -> None:
    folder = small_disk / "evidence" / "s-close"
    rec = SessionRecorder(folder, signer=signer, segment_seconds=1.0)
    feeding = asyncio.ensure_future(stream(rec, clips["VP8"], 4.0))
    await wait_for(lambda: rec.segments_closed >= 1, 10, "a first closed part")
    filler = fill_disk(small_disk, leave=0)
    await wait_for(lambda: rec.status.state == "failed", 10, "the recording to fail")
    await feeding
    rec.append_fix({"lat": 51.5, "lon": -0.1, "accuracy": 5.0})
    await rec.close()  # returns; what is held is not thrown away
    assert rec.status.state == "failed"
    filler.unlink()

    def closed() -> bool:
        manifest = folder / "manifest.json"
        return manifest.exists() and json.loads(manifest.read_bytes())["status"] == "closed"

    await wait_for(closed, 10, "the held writes and the closed manifest")
    verify_bundle(folder, signer.jwks(), decode=True)
    events = [json.loads(x) for x in (folder / "events.jsonl").read_bytes().splitlines()]
    totals = next(e for e in events if e["event"] == "recording_totals")
    for kind in ("video", "audio"):
        t = totals[kind]
        assert t["taken"] == t["written"] + t["skipped"] + t["lost"], (kind, t)
    assert (folder / "location.jsonl").read_bytes().count(b"\n") == 1


async def test_a_frame_damaged_in_transit_is_kept_and_reported_not_fatal(
    clips: dict[str, Clip], tmp_path: Path, signer: Signer
) -> None:
    """The gap wait passes a holed frame on as far as it arrived: the evidence keeps it as it
    came, and verification says so instead of failing the whole part."""
    clip = clips["VP8"]
    video, audio = looped_frames(clip, time.time() - 10, clip.duration_s)
    damaged = next(i for i, f in enumerate(video) if i > 5 and not f.keyframe)
    video[damaged] = replace(video[damaged], data=video[damaged].data[:3] + b"\xff" * 40)
    folder = tmp_path / "damaged"
    rec = SessionRecorder(folder, signer=signer)
    vrelay, arelay = TrackRelay("video", queue_size=4000), TrackRelay("audio", queue_size=4000)
    rec.attach(vrelay.subscribe(), arelay.subscribe())
    vrelay.set_source(PacedTrack("video", video))
    arelay.set_source(PacedTrack("audio", audio))
    await wait_for(lambda: vrelay.frames_in == len(video), 10, "every frame relayed")
    await vrelay.stop()
    await arelay.stop()
    await rec.close()
    report = verify_bundle(folder, signer.jwks(), decode=True)
    assert any("do not decode" in note for note in report.notes), report.notes
