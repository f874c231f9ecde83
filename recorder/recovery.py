"""Start-up recovery of sessions whose recorder died (SIGKILL, power loss).

For every session folder without a closed manifest: each part that was open is salvaged
(``salvage_part``), events and fixes written before the crash are chained, a ``gap`` entry
records the outage, and the manifest is signed with status ``interrupted``. A recorder that
later resumes the same session continues the chain and numbering. The recorder salvages a
part whose writing failed (a full disk) the same way. Blocking.

Salvage never renames or writes the original: ``media-005.mkv`` stays exactly as it was cut
and is chained as a ``torn`` original; its whole frames are copied (packets, never decoded or
encoded) into ``media-005-whole.mkv``, written under a temporary name, fsynced and linked into
place, and chained as the segment. The ``torn`` entry comes last, so a crash at any step
leaves a part that the next start salvages again from where it stopped.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer

from .bundle import EVENTS_FILE, FIXES_FILE, Bundle
from .chain import sha256_file
from .durable import create_exclusive, fsync_dir, fsync_file
from .events import TornInfo, now_iso
from .folderlock import RecorderBusy, lock_folder
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


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True, slots=True)
class Copied:
    """What a salvage kept: packets per kind ("video", "audio") and media seconds."""

    packets: Counter[str]
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.packets.values())


def _copy_packets(src: Path, out: OutputContainer | None) -> Copied:
    """Every complete packet of a Matroska file, muxed into ``out`` if given (never decoded).

    What cannot be read (a file cut inside its header, the torn end) ends the copy; an error
    writing ``out`` (a full disk) is raised.
    """
    packets: Counter[str] = Counter()
    end = 0.0
    try:
        inp = av.open(str(src))
    except (av.FFmpegError, OSError) as exc:
        logger.info("recovery: %s cannot be read: %s", src.name, exc)
        return Copied(packets, end)
    with inp:
        mapping = {s.index: out.add_stream_from_template(s) for s in inp.streams} if out else {}
        demux = inp.demux()
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except (av.FFmpegError, OSError, EOFError) as exc:  # the torn end
                logger.info("recovery: %s ends after %d packets: %s", src.name, packets, exc)
                break
            if packet.size == 0 or packet.pts is None:
                continue
            tb = packet.time_base or Fraction(1, 1000)
            end = max(end, float(packet.pts * tb))
            kind = packet.stream.type
            if out is not None:
                packet.stream = mapping[packet.stream.index]
                out.mux(packet)
            packets[kind] += 1
    return Copied(packets, end)


def whole_copy(part: Path) -> Path:
    """Where the whole frames of an interrupted part go: media-005.mkv -> media-005-whole.mkv."""
    return part.with_name(part.name.removesuffix(".mkv") + "-whole.mkv")


def _copy_whole_frames(src: Path, dst: Path) -> Copied:
    """Into ``dst`` (only if any frame could be read), atomically: a temporary file, fsynced,
    then linked into place. ``OSError`` with ENOSPC: nothing changed, try again later."""
    if _copy_packets(src, None).total == 0:
        return Copied(Counter(), 0.0)
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)  # a copy a crash interrupted: ours, never evidence
    try:
        with create_exclusive(tmp) as file:
            out = av.open(file, "w", format="matroska")
            out.metadata["title"] = "SceneLink evidential recording (whole frames of a cut part)"
            try:
                copied = _copy_packets(src, out)
            finally:
                out.close()
            os.fsync(file.fileno())
        os.link(tmp, dst)
        fsync_dir(dst.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return copied


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
) -> Copied:
    """Keep a part that was never closed properly (see the module's docstring); idempotent.

    Returns what was copied (nothing, if nothing could be read: recorded as
    ``recording_part_unrecoverable``). Raises ``OSError`` when the disk is still full.
    """
    chained = {e.get("name") for e in bundle.chain.entries}
    if part.name in chained:
        return Copied(Counter(), 0.0)  # salvaged already
    fsync_file(part)
    info: TornInfo = {"name": part.name, "sha256": sha256_file(part), "bytes": part.stat().st_size}
    whole = whole_copy(part)
    copied = _copy_packets(whole, None) if whole.exists() else _copy_whole_frames(part, whole)
    if copied.total and whole.name not in chained:
        bundle.add_segment(
            whole,
            frames=copied.total,
            duration_s=round(copied.seconds, 3),
            first_frame_wall_clock=first_wall,
            last_frame_wall_clock=first_wall + copied.seconds if first_wall else None,
            video_codec=None,
            audio_codec=None,
            width=None,
            height=None,
            cut=cut,
            cause=cause,
            recovered=True,
            recovered_from=dict(info),
        )
    if copied.total:
        bundle.append_line(
            EVENTS_FILE,
            {
                "event": "recording_part_salvaged",
                "at": now_iso(),
                "part": part.name,
                "cause": cause,
                "frames": copied.total,
                "torn": info,
            },
        )
    else:
        bundle.append_line(
            EVENTS_FILE,
            {
                "event": "recording_part_unrecoverable",
                "at": now_iso(),
                "part": part.name,
                "torn": info,
            },
        )
    bundle.chain_pending()
    bundle.chain.append("torn", part=part.name, at=time.time(), **info)  # the last step
    return copied


def recover_folder(
    folder: Path, signer: Signer | None, node_id: str | None = None
) -> Recovered | None:
    manifest = signed_manifest(folder)
    if manifest is not None and manifest.get("status") == "closed":
        return None
    bundle = Bundle(folder, signer, node_id)
    chained = {e.get("name") for e in bundle.chain.entries}
    open_parts = sorted(p for p in folder.iterdir() if is_part(p.name) and p.name not in chained)
    if not open_parts and _nothing_new(bundle, manifest):
        return None
    recovered: list[str] = []
    last_wall: float | None = None
    for part in open_parts:
        first = _part_started(folder, part.name)
        copied = salvage_part(bundle, part, first, "crash", CRASH_CAUSE)
        if copied.total:
            recovered.append(whole_copy(part).name)
            if first is not None:
                last_wall = first + copied.seconds
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


def recover_all(
    evidence_dir: Path, signer: Signer | None, node_id: str | None = None
) -> list[Recovered]:
    """Run once at start-up, before any recorder or the spool starts (blocking). What it
    recovers is this node's contribution (``node_id``): the spool uploads it into the
    session's bundle beside the other nodes' (``contributions``)."""
    out: list[Recovered] = []
    if not evidence_dir.is_dir():
        return out
    for folder in sorted(p for p in evidence_dir.iterdir() if p.is_dir()):
        try:
            lock = lock_folder(folder)
        except RecorderBusy:  # being recorded (a shared spool: by its own node, alive)
            continue
        try:
            result = recover_folder(folder, signer, node_id)
        except Exception:
            logger.exception("recovery of %s failed", folder)
            continue
        finally:
            os.close(lock)
        if result is not None:
            out.append(result)
    return out
