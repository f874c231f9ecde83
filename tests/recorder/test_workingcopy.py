"""The working copy: a two-part session remuxed into one file whose packets are the master's,
bit for bit, at the master's times on the session's clock; made once; the bundle unchanged."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import av
import pytest

from bench.synthetic import Clip
from recorder.catalogue import Catalogue
from recorder.manifest import Signer
from recorder.spool import Spooler
from recorder.store import LocalFolderStore
from recorder.verify import verify_bundle
from recorder.workingcopy import (
    MP4,
    WEBM,
    CopyFormat,
    CopyMismatch,
    WorkingCopies,
    compare,
    remux,
)
from signalling.cli.main import main as scenelink
from tests.recorder.feed import record_reconnected

GAP_S = 3.0


@pytest.fixture
def store(tmp_path: Path) -> LocalFolderStore:
    return LocalFolderStore(tmp_path / "store")


async def stored_session(
    tmp_path: Path, clip: Clip, signer: Signer, store: LocalFolderStore
) -> Catalogue:
    spool = Spooler(store)
    spool.start()
    try:
        await record_reconnected(tmp_path / "ev" / "sess-two", clip, signer, spool, GAP_S)
        assert spool.wait_idle(30)
    finally:
        spool.stop()
    return Catalogue(store, signer.jwks())


@pytest.mark.parametrize(("codec", "fmt"), [("H264", MP4), ("VP8", WEBM)])
async def test_copy_packets_are_the_masters_and_the_bundle_still_verifies(
    tmp_path: Path,
    clips: dict[str, Clip],
    signer: Signer,
    store: LocalFolderStore,
    codec: str,
    fmt: object,
) -> None:
    catalogue = await stored_session(tmp_path, clips[codec], signer, store)
    entry = catalogue.get("sess-two")
    assert len(entry.segments) == 2
    copies = WorkingCopies(tmp_path / "derivatives", catalogue)
    path, record, made = await copies.get(entry, "ivan")
    assert made
    assert path.suffix == f".{fmt.extension}"  # type: ignore[attr-defined]
    assert record["content_type"] == fmt.content_type  # type: ignore[attr-defined]
    assert [p["sha256"] for p in record["parts"]] == [s.sha256 for s in entry.segments]
    assert record["master_chain_head"] == entry.chain_head and record["made_by"] == "ivan"
    # Every packet: same bytes, same keyframe flag, same time (the second part GAP_S later).
    master = copies.master(entry, tmp_path)
    assert compare(master, path) == record["packets"] > 0
    assert record["parts"][1]["offset_s"] == pytest.approx(
        clips[codec].duration_s + GAP_S, abs=0.05
    )
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        times = [
            float(p.pts * p.time_base)
            for p in container.demux(video)
            if p.size and p.pts is not None
        ]
    jump = max(b - a for a, b in zip(times, times[1:], strict=False))
    assert jump == pytest.approx(GAP_S, abs=0.1)  # the gap is on the copy's timeline
    # The master and its bundle are untouched; scenelink verify checks the copy against it.
    bundle = tmp_path / "ev" / "sess-two"
    assert verify_bundle(bundle, signer.jwks()).segments == 2
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(signer.jwks()))
    verify = ["verify", str(bundle), "--jwks", str(jwks), "--working-copy"]
    assert scenelink([*verify, str(path)]) == 0
    changed = tmp_path / "changed" / path.name
    changed.parent.mkdir()
    shutil.copy(path.with_suffix(".json"), changed.with_suffix(".json"))
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    changed.write_bytes(bytes(data))
    assert scenelink([*verify, str(changed)]) == 1


async def test_made_once_for_concurrent_requests_and_a_changed_copy_is_caught(
    tmp_path: Path, clips: dict[str, Clip], signer: Signer, store: LocalFolderStore
) -> None:
    catalogue = await stored_session(tmp_path, clips["H264"], signer, store)
    entry = catalogue.get("sess-two")
    copies = WorkingCopies(tmp_path / "derivatives", catalogue)
    made = await asyncio.gather(*(copies.get(entry, f"user-{i}") for i in range(4)))
    assert len({str(m.path) for m in made}) == 1 and len({m.record["made_by"] for m in made}) == 1
    assert [m.made for m in made] == [True, False, False, False]
    files = sorted(p.name for p in (tmp_path / "derivatives" / "sess-two").iterdir())
    assert files == sorted([made[0].path.name, made[0].path.with_suffix(".json").name])
    again = await copies.get(entry, "someone-else")
    assert again.record == made[0].record and not again.made  # kept, not made again
    # A copy whose packets differ from the master's is named as such.
    master = copies.master(entry, tmp_path)
    shifted = tmp_path / "shifted.mp4"
    moved = [(source, offset + 0.5) for source, offset in master]
    remux(moved, shifted, MP4)
    with pytest.raises(CopyMismatch, match="at "):
        compare(master, shifted)
    one_part = tmp_path / "one.mp4"
    remux(master[:1], one_part, MP4)
    with pytest.raises(CopyMismatch, match="packets, the master has"):
        compare(master, one_part)


@pytest.mark.parametrize("fmt", [MP4, WEBM])
async def test_a_track_that_starts_later_keeps_its_place(
    tmp_path: Path, clips: dict[str, Clip], signer: Signer, store: LocalFolderStore, fmt: CopyFormat
) -> None:
    """A part whose video starts 0.3 s after its audio (audio held from before the first
    keyframe): the copy keeps the video 0.3 s in, as the master has it."""
    catalogue = await stored_session(
        tmp_path, clips["H264" if fmt is MP4 else "VP8"], signer, store
    )
    [(first, _), *_] = WorkingCopies(tmp_path / "derivatives", catalogue).master(
        catalogue.get("sess-two"), tmp_path
    )
    late = tmp_path / "late.mkv"
    with av.open(str(first), "r") as source, av.open(str(late), "w", format="matroska") as out:
        streams = {s.type: out.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.size and packet.pts is not None and packet.dts is not None:
                if packet.stream.type == "video":
                    packet.pts += 300
                    packet.dts += 300
                packet.stream = streams[packet.stream.type]
                out.mux(packet)
    copy = tmp_path / f"late.{fmt.extension}"
    remux([(late, 0.0)], copy, fmt)
    assert compare([(late, 0.0)], copy) > 0
