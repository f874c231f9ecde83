"""Start-up recovery of sessions whose recorder died (SIGKILL, power loss).

For every session folder without a closed manifest: the segment that was open is salvaged
(``salvage_part``: remuxed, packets copied, never decoded or encoded, up to its last complete
frame into a clean ``media-NNN.mkv``; the torn original is kept as ``media-NNN.mkv.torn``
and its hash chained), events and fixes written before the crash are chained, a ``gap``
entry records the outage, and the manifest is signed with status ``interrupted``. A recorder
that later resumes the same session continues the chain and numbering. The recorder salvages
a part whose writing failed (a full disk) the same way. Blocking.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer

from .bundle import EVENTS_FILE, FIXES_FILE, Bundle
from .chain import sha256_file
from .durable import TORN_SUFFIX, create_exclusive
from .events import TornInfo, now_iso
from .manifest import Signer
from .parts import is_part
from .spool import signed_manifest

logger = logging.getLogger(__name__)
CRASH_CAUSE = "the server stopped before closing the part"


@dataclass(frozen=True, slots=True)
class Recovered:
    session_id: str
    segments: list[str]
    gap: dict[str, Any] | None


def _copy_packets(src: Path, out: OutputContainer | None) -> tuple[int, float]:
    """Every complete packet of a Matroska file, muxed into ``out`` if given (never decoded);
    (packets, media seconds)."""
    packets = 0
    end = 0.0
    with av.open(str(src)) as inp:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams} if out else {}
        try:
            for packet in inp.demux():
                if packet.size == 0 or packet.pts is None:
                    continue
                tb = packet.time_base or Fraction(1, 1000)
                end = max(end, float(packet.pts * tb))
                if out is not None:
                    packet.stream = mapping[packet.stream.index]
                    out.mux(packet)
                packets += 1
        except (av.FFmpegError, EOFError) as exc:  # the torn end
            logger.info("recovery: %s ends after %d packets: %s", src.name, packets, exc)
    return packets, end


def remux_until_last_frame(src: Path, dst: Path) -> tuple[int, float]:
    """Copy every complete packet of a torn Matroska file into a new one."""
    with create_exclusive(dst) as file:
        out = av.open(file, "w", format="matroska")
        out.metadata["title"] = "SceneLink evidential recording (recovered)"
        try:
            return _copy_packets(src, out)
        finally:
            out.close()


def _part_started(folder: Path, name: str) -> float | None:
    path = folder / EVENTS_FILE
    if not path.exists():
        return None
    for line in path.read_bytes().splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if ev.get("event") == "recording_part_started" and ev.get("part") == name:
            value = ev.get("first_frame_wall_clock")
            return float(value) if value is not None else None
    return None


def _nothing_new(bundle: Bundle, manifest: dict[str, Any] | None) -> bool:
    unchained = any(
        (bundle.folder / name).exists()
        and (bundle.folder / name).stat().st_size > bundle.chain.covered(name)
        for name in (EVENTS_FILE, FIXES_FILE)
    )
    if unchained:
        return False
    if manifest is None:
        return not bundle.chain.entries
    return manifest.get("status") == "interrupted" and manifest.get("chain_length") == len(
        bundle.chain.entries
    )


def salvage_part(
    bundle: Bundle, part: Path, first_wall: float | None, cut: str, cause: str
) -> float | None:
    """Keep a part that was never closed properly: the original is renamed ``.torn``,
    chained by its hash (and uploaded like any part); its whole frames are copied into a
    clean part of the same name, which is chained as a segment.

    Returns the wall clock of its last frame (None if nothing in it could be read, which is
    recorded as ``recording_part_unrecoverable``). On ``OSError`` (the disk is still full) it
    can be called again: a copy already made is kept and only chained.
    """
    torn = part.with_name(part.name + TORN_SUFFIX)
    if not torn.exists():
        os.link(part, torn)  # fails rather than replace an earlier torn copy
        os.unlink(part)
        try:
            packets, seconds = remux_until_last_frame(torn, part)
        except OSError:
            part.unlink(missing_ok=True)
            os.link(torn, part)
            os.unlink(torn)
            raise
        except av.FFmpegError as exc:
            logger.warning("recovery: %s has no readable media: %s", part.name, exc)
            part.unlink(missing_ok=True)
            packets, seconds = 0, 0.0
    elif part.exists():  # copied before, chaining failed (or the server stopped)
        packets, seconds = _copy_packets(part, None)
    else:
        packets, seconds = 0, 0.0
    info: TornInfo = {"name": torn.name, "sha256": sha256_file(torn), "bytes": torn.stat().st_size}
    if not any(e.get("name") == torn.name for e in bundle.chain.entries):
        bundle.chain.append("torn", part=part.name, at=time.time(), **info)
    if packets == 0:
        part.unlink(missing_ok=True)
        bundle.append_line(
            EVENTS_FILE,
            {
                "event": "recording_part_unrecoverable",
                "at": now_iso(),
                "part": part.name,
                "torn": info,
            },
        )
        return None
    last = first_wall + seconds if first_wall is not None else None
    bundle.append_line(
        EVENTS_FILE,
        {
            "event": "recording_part_salvaged",
            "at": now_iso(),
            "part": part.name,
            "cause": cause,
            "frames": packets,
            "torn": info,
        },
    )
    bundle.add_segment(
        part,
        frames=packets,
        duration_s=round(seconds, 3),
        first_frame_wall_clock=first_wall,
        last_frame_wall_clock=last,
        video_codec=None,
        audio_codec=None,
        width=None,
        height=None,
        cut=cut,
        cause=cause,
        recovered=True,
        recovered_from=dict(info),
    )
    return last


def recover_folder(folder: Path, signer: Signer | None) -> Recovered | None:
    manifest = signed_manifest(folder)
    if manifest is not None and manifest.get("status") == "closed":
        return None
    bundle = Bundle(folder, signer)
    chained = {e["name"] for e in bundle.chain.segments()}
    open_parts = sorted(p for p in folder.iterdir() if is_part(p.name) and p.name not in chained)
    if not open_parts and _nothing_new(bundle, manifest):
        return None
    recovered: list[str] = []
    last_wall: float | None = None
    for part in open_parts:
        if part.stat().st_size == 0:
            part.unlink()  # created, nothing written: no media, nothing to keep
            continue
        first = _part_started(folder, part.name)
        salvaged = salvage_part(bundle, part, first, "crash", CRASH_CAUSE)
        if salvaged is not None:
            recovered.append(part.name)
            last_wall = salvaged
    if last_wall is None:
        segs = bundle.chain.segments()
        last_wall = segs[-1].get("last_frame_wall_clock") if segs else None
    bundle.append_line(
        EVENTS_FILE,
        {
            "event": "recorder_recovered",
            "at": now_iso(),
            "recovered_parts": recovered,
            "last_frame_wall_clock": last_wall,
        },
    )
    bundle.chain_pending()
    gap = bundle.chain.append(
        "gap",
        reason="recorder restarted after a crash",
        last_frame_wall_clock=last_wall,
        detected_at=time.time(),
        at=time.time(),
    )
    bundle.write_manifest("interrupted")
    return Recovered(folder.name, recovered, gap)


def recover_all(evidence_dir: Path, signer: Signer | None) -> list[Recovered]:
    """Run once at start-up, before any recorder or the spool starts (blocking)."""
    out: list[Recovered] = []
    if not evidence_dir.is_dir():
        return out
    for folder in sorted(p for p in evidence_dir.iterdir() if p.is_dir()):
        try:
            result = recover_folder(folder, signer)
        except Exception:
            logger.exception("recovery of %s failed", folder)
            continue
        if result is not None:
            out.append(result)
    return out
