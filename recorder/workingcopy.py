"""A session's working copy for playback: every part remuxed (never re-encoded) into one file.

Browsers do not all play the master's Matroska (Safari plays none), and a player seeks within
one file, not across parts. So playback uses a copy of the whole session on one timeline:
H.264 sessions as fragmented MP4 (H.264 and Opus), VP8 sessions as WebM (VP8 is not standard
in MP4). Its packets are the master's, byte for byte, at the master's times moved by their
part's offset on the session's clock (``timeline.part_offsets``), so the gaps stay where they
were. ``compare`` proves it, and a copy is checked that way before it is kept.

The copy is a derivative, never evidence: it is written once, beside a record naming the
master's parts with their SHA-256 and the chain head they were read at, its own SHA-256, who
made it and when. It lives in ``<data dir>/derivatives/<session>/``, outside the bundle, so
the master and the bundle's verification never change. A bundle still growing gets a new copy
once its chain head has moved on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
from av.container import InputContainer
from av.stream import Stream
from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from .catalogue import Catalogue, CatalogueEntry
from .chain import sha256_file
from .contributions import local_file
from .derivatives import MasterChanged
from .durable import create_exclusive, fsync_dir, fsync_file, make_folder, write_new
from .timeline import part_offsets

KINDS = ("video", "audio")


@dataclass(frozen=True, slots=True)
class CopyFormat:
    container: str  # libavformat's muxer
    extension: str
    content_type: str
    options: tuple[tuple[str, str], ...] = ()


# Fragmented, with an index up front (seeks by byte range) and the moov written after the first
# fragment, so its edit list keeps a track that starts later (video after early audio) in place.
MP4 = CopyFormat(
    "mp4",
    "mp4",
    "video/mp4",
    (("movflags", "frag_keyframe+delay_moov+default_base_moof+global_sidx"),),
)
WEBM = CopyFormat("webm", "webm", "video/webm")


def copy_format(codecs: Sequence[str]) -> CopyFormat:
    """MP4 for H.264, WebM for VP8 (or audio alone)."""
    return MP4 if "H264" in codecs else WEBM


class CopyPart(TypedDict):
    name: str
    sha256: str  # the master part's
    offset_s: float  # where its time zero sits in the copy


class WorkingCopyRecord(TypedDict):
    """``<chain head>.json`` beside the copy: what it was made from, by whom, when."""

    session_id: str
    file: str
    sha256: str
    bytes: int
    content_type: str
    master_chain_head: str | None
    parts: list[CopyPart]
    packets: int  # compared equal to the master's before the copy was kept
    made_by: str
    made_at: str
    tool: str


class CopyMismatch(Exception):
    """The copy's packets are not the master's (names the first difference)."""


Source = tuple[Path, float]  # a master part and its offset on the session's clock


def _open(source: Path) -> InputContainer:
    return av.open(str(source), "r")


def _stream(container: InputContainer, kind: str) -> Stream | None:
    found = container.streams.video if kind == "video" else container.streams.audio
    return found[0] if found else None


def remux(parts: Sequence[Source], out: Path, fmt: CopyFormat) -> None:
    """Every packet of every part, in order, each part moved to its offset; nothing decoded.

    ``out`` is a path, not an open file: the MP4 muxer reopens it by name to put the index up
    front once every fragment is written."""
    output = av.open(str(out), "w", format=fmt.container, options=dict(fmt.options))
    try:
        streams: dict[str, Stream] = {}
        for source, _ in parts:  # the output's streams before its header is written
            with _open(source) as container:
                for kind in KINDS:
                    found = _stream(container, kind)
                    if found is not None and kind not in streams:
                        streams[kind] = output.add_stream_from_template(found)
        for source, offset in parts:
            with _open(source) as container:
                inputs = {kind: _stream(container, kind) for kind in streams}
                present = [s for s in inputs.values() if s is not None]
                for packet in container.demux(*present):
                    if packet.size == 0 or packet.pts is None or packet.time_base is None:
                        continue
                    kind = packet.stream.type
                    shift = round(Fraction(offset).limit_denominator(1000) / packet.time_base)
                    packet.pts += shift
                    packet.dts = packet.pts if packet.dts is None else packet.dts + shift
                    packet.stream = streams[kind]
                    output.mux(packet)
    finally:
        output.close()


Packets = dict[str, list[tuple[Fraction, bytes, bool]]]


def _packets(source: Path, offset: float) -> Packets:
    """Each kind's packets: (time on the session's clock, bytes, keyframe)."""
    shift = Fraction(offset).limit_denominator(1000)
    out: Packets = {kind: [] for kind in KINDS}
    with _open(source) as container:
        present = [s for s in (_stream(container, kind) for kind in KINDS) if s is not None]
        for p in container.demux(*present):
            if p.size and p.pts is not None and p.time_base is not None:
                out[p.stream.type].append((p.pts * p.time_base + shift, bytes(p), p.is_keyframe))
    return out


def compare(master: Sequence[Source], copy: Path) -> int:
    """The number of packets compared; CopyMismatch names the first that is not the master's
    (its bytes, its time on the session's clock, its keyframe flag)."""
    want: Packets = {kind: [] for kind in KINDS}
    for source, offset in master:
        for kind, packets in _packets(source, offset).items():
            want[kind] += packets
    got = _packets(copy, 0.0)
    for kind in KINDS:
        if len(got[kind]) != len(want[kind]):
            raise CopyMismatch(
                f"{kind}: {len(got[kind])} packets, the master has {len(want[kind])}"
            )
        for i, (g, w) in enumerate(zip(got[kind], want[kind], strict=True)):
            if g[1] != w[1]:
                raise CopyMismatch(f"{kind} packet {i}: bytes differ from the master's")
            if g[0] != w[0]:
                raise CopyMismatch(
                    f"{kind} packet {i}: at {float(g[0])} s, the master's at {float(w[0])} s"
                )
            if g[2] != w[2]:
                raise CopyMismatch(f"{kind} packet {i}: keyframe flag differs")
    return sum(len(p) for p in want.values())


def check_copy(copy: Path, bundle: Path) -> int:
    """A kept working copy against a bundle folder (``scenelink verify --working-copy``): its
    record (``<copy>.json`` beside it), its own SHA-256, and every packet against the master
    parts the record names, each found by its hash. Returns the packets compared."""
    record_path = copy.with_suffix(".json")
    if not record_path.exists():
        raise CopyMismatch(f"{record_path.name}: missing (the copy's record)")
    record: WorkingCopyRecord = json.loads(record_path.read_bytes())
    if sha256_file(copy) != record["sha256"]:
        raise CopyMismatch(f"{copy.name}: SHA-256 differs from its record")
    master: list[Source] = []
    for part in record["parts"]:
        path = local_file(bundle, part["name"])
        if not path.exists() or sha256_file(path) != part["sha256"]:
            raise CopyMismatch(f"{part['name']}: not in the bundle as the copy's record names it")
        master.append((path, part["offset_s"]))
    return compare(master, copy)


class Made(NamedTuple):
    path: Path
    record: WorkingCopyRecord
    made: bool  # made now, rather than found


class WorkingCopies:
    """The derivatives folder's working copies, each made once, on first request.

    Blocking methods are for a thread; ``get`` runs ``make`` off the event loop and lets
    concurrent first requests for one session share one making.
    """

    def __init__(self, folder: Path, catalogue: Catalogue) -> None:
        self.folder = folder
        self.catalogue = catalogue
        self._making: dict[tuple[str, str], asyncio.Future[Made]] = {}

    def _stem(self, entry: CatalogueEntry) -> str:
        return (entry.chain_head or "unchained")[:32]

    def _paths(self, entry: CatalogueEntry) -> tuple[Path, Path]:
        folder = self.folder / entry.session_id
        fmt = copy_format(entry.codecs)
        stem = self._stem(entry)
        return folder / f"{stem}.{fmt.extension}", folder / f"{stem}.json"

    def master(self, entry: CatalogueEntry, folder: Path) -> list[Source]:
        """The master's parts fetched from the store into ``folder`` one at a time (a long
        session would not fit in memory), each checked against the signed manifest's hash
        (``MasterChanged`` if not), with its offset."""
        sources: list[Source] = []
        for segment, offset in zip(entry.segments, part_offsets(entry.segments), strict=True):
            data = self.catalogue.media(entry.session_id, segment.name)
            if hashlib.sha256(data).hexdigest() != segment.sha256:
                raise MasterChanged(f"{segment.name}: SHA-256 differs from the manifest")
            path = folder / segment.name
            path.write_bytes(data)
            sources.append((path, offset))
        return sources

    def find(self, entry: CatalogueEntry) -> tuple[Path, WorkingCopyRecord] | None:
        path, record_path = self._paths(entry)
        if not record_path.exists():
            return None
        record: WorkingCopyRecord = json.loads(record_path.read_bytes())
        return path, record

    def make(self, entry: CatalogueEntry, made_by: str) -> Made:
        """Remux, compare with the master, then keep the copy and its record (write once)."""
        found = self.find(entry)
        if found is not None:
            return Made(*found, made=False)
        path, record_path = self._paths(entry)
        make_folder(path.parent)
        fmt = copy_format(entry.codecs)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            with tempfile.TemporaryDirectory(prefix=".master-", dir=path.parent) as parts:
                master = self.master(entry, Path(parts))
                create_exclusive(tmp).close()  # a fresh name of our own for the muxer
                remux(master, tmp, fmt)
                fsync_file(tmp)
                packets = compare(master, tmp)
            os.link(tmp, path)  # exclusive: a copy, once made, is never written over
            fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)
        offsets = part_offsets(entry.segments)
        record: WorkingCopyRecord = {
            "session_id": entry.session_id,
            "file": path.name,
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            "content_type": fmt.content_type,
            "master_chain_head": entry.chain_head,
            "parts": [
                {"name": s.name, "sha256": s.sha256, "offset_s": o}
                for s, o in zip(entry.segments, offsets, strict=True)
            ],
            "packets": packets,
            "made_by": made_by,
            "made_at": datetime.now(UTC).isoformat(),
            "tool": f"PyAV {av.__version__} remux (no decoding, no encoding)",
        }
        write_new(record_path, json.dumps(record, indent=1).encode())
        return Made(path, record, made=True)

    async def get(self, entry: CatalogueEntry, made_by: str) -> Made:
        """The copy, made now if it does not exist yet (once, however many ask at once);
        ``made`` is true for the one request whose asking made it."""
        key = (entry.session_id, self._stem(entry))
        making = self._making.get(key)
        if making is not None:
            found = await asyncio.shield(making)
            return Made(found.path, found.record, made=False)
        making = asyncio.ensure_future(asyncio.to_thread(self.make, entry, made_by))
        self._making[key] = making
        making.add_done_callback(lambda _: self._making.pop(key, None))
        return await asyncio.shield(making)
