"""``scenelink verify``: check an evidence bundle and name the first thing that fails.

A bundle is a local session folder, a downloaded export, or a session id fetched from the
evidence store. Checks, in order: the manifest's signature (key from ``--jwks``, else the
bundle's own ``jwks.json``, whose key id must then match the published one), the readable
copy against the signed one, every chain link, every chained byte range, segment, original and
derivative hash, the manifest's lists against the chain, no unlisted segments or kept files,
and that every segment decodes.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

from .bundle import EVENTS_FILE, FIXES_FILE
from .chain import CHAIN_FILE, ChainError, check_links, load_chain, sha256_file, sha256_range
from .contributions import (
    NODES_DIR,
    Contribution,
    IndexedPart,
    session_index,
    session_status,
)
from .manifest import JWKS_FILE, MANIFEST_JSON, MANIFEST_JWS, verify_jws
from .nodes import trusted_jwks
from .originals import KEPT_FILE
from .store import EvidenceStore, find_session

GAP_S = 1.0  # a longer pause between one node's parts is listed as a gap
MEDIA_FILE = re.compile(r"media-.*\.mkv$")  # parts, and whole copies of cut parts


class VerifyError(Exception):
    """The first failure, naming what failed."""


@dataclass(slots=True)
class Report:
    session_id: str | None = None
    key_id: str | None = None
    segments: int = 0
    media_seconds: float = 0.0
    status: str | None = None
    notes: list[str] = field(default_factory=list)
    # A session several nodes recorded: every signing key, every node (None: the first
    # node's contribution before clusters), and all parts in order with the gaps between.
    key_ids: list[str] = field(default_factory=list)
    nodes: list[str | None] = field(default_factory=list)
    parts: list[IndexedPart] = field(default_factory=list)

    @property
    def gaps(self) -> list[IndexedPart]:
        """The parts that follow a move to another node (whatever the gap), or a gap of more
        than a second on one node (parts cut for length follow on at once)."""
        return [
            p
            for before, p in zip(self.parts, self.parts[1:], strict=False)
            if p.gap_before_s is not None
            and (p.node_id != before.node_id or p.gap_before_s > GAP_S)
        ]


def _decode(path: Path) -> tuple[int, int]:
    """(frames decoded, packets that would not decode). A packet the network damaged is kept
    exactly as it arrived (the gap wait passes a frame on as far as it came), so one that does
    not decode is reported, not fatal; a part from which nothing decodes is."""
    frames = damaged = 0
    with av.open(str(path)) as container:
        for packet in container.demux(*container.streams):
            if packet.size == 0:
                continue
            try:
                frames += len(packet.decode())
            except av.FFmpegError:
                damaged += 1
    return frames, damaged


def verify_bundle(folder: Path, jwks: dict[str, Any] | None = None, decode: bool = True) -> Report:
    """A session's bundle: the first node's contribution in ``folder``, every other node's
    in ``folder/nodes/<node id>/`` (``contributions``), each checked whole on its own, then
    together: one session, each node where its manifest says. Raises VerifyError naming the
    first failure; returns a summary (with the session's parts in order and the gaps)."""
    nodes = folder / NODES_DIR
    places = sorted(p for p in nodes.iterdir() if p.is_dir()) if nodes.is_dir() else []
    if any(p.name != NODES_DIR for p in folder.iterdir()) or not places:
        places.insert(0, folder)  # the first node's share (anything there must be one)
    found: list[tuple[Report, Contribution]] = []
    for place in places:
        label = "" if place == folder else f"node {place.name}: "
        try:
            report, manifest = _verify_one(place, jwks, decode)
        except VerifyError as exc:
            raise VerifyError(f"{label}{exc}") from exc
        if place != folder and manifest.get("node_id") != place.name:
            raise VerifyError(f"{label}its manifest names node {manifest.get('node_id')}")
        report.notes = [f"{label}{note}" for note in report.notes]
        found.append((report, Contribution(str(place), manifest.get("node_id"), manifest)))
    sessions = {r.session_id for r, _ in found}
    if len(sessions) != 1:
        raise VerifyError(
            f"the nodes' manifests name different sessions: {sorted(map(str, sessions))}"
        )
    first = found[0][0]
    parts = session_index([c for _, c in found])
    return Report(
        session_id=first.session_id,
        key_id=first.key_id,
        segments=sum(r.segments for r, _ in found),
        media_seconds=round(sum(r.media_seconds for r, _ in found), 3),
        status=session_status([c for _, c in found]),
        notes=[n for r, _ in found for n in r.notes],
        key_ids=sorted({str(r.key_id) for r, _ in found}),
        nodes=[c.node_id for _, c in found],
        parts=parts,
    )


def _verify_one(
    folder: Path, jwks: dict[str, Any] | None, decode: bool
) -> tuple[Report, dict[str, Any]]:
    """One node's contribution (a whole bundle): its summary and its signed manifest."""
    report = Report()
    jws = folder / MANIFEST_JWS
    if not jws.exists():
        raise VerifyError("manifest.jws: missing")
    if jwks is None:
        if not (folder / JWKS_FILE).exists():
            raise VerifyError("jwks.json: missing (pass the published key set with --jwks)")
        jwks = json.loads((folder / JWKS_FILE).read_bytes())
        report.notes.append(
            "key taken from the bundle itself: compare its key id with the published one"
        )
    try:
        manifest = verify_jws(jws.read_text().strip(), jwks)
    except Exception as exc:
        raise VerifyError(f"manifest.jws: signature does not verify: {exc}") from exc
    report.session_id = manifest.get("session_id")
    report.key_id = manifest.get("key_id")
    report.status = manifest.get("status")
    copy = folder / MANIFEST_JSON
    if copy.exists() and json.loads(copy.read_bytes()) != manifest:
        raise VerifyError("manifest.json: differs from the signed manifest")

    # Files the manifest covers (chain.jsonl first: the rest is checked through it).
    for name, info in manifest.get("files", {}).items():
        path = folder / name
        if not path.exists():
            raise VerifyError(f"{name}: missing")
        try:
            digest = sha256_range(path, 0, int(info["bytes"]))
        except ValueError as exc:
            raise VerifyError(f"{name}: shorter than the manifest says") from exc
        if digest != info["sha256"]:
            raise VerifyError(f"{name}: SHA-256 does not match the manifest")

    length = int(manifest.get("chain_length", 0))
    try:
        covered = manifest.get("files", {}).get(CHAIN_FILE, {}).get("bytes")
        entries = load_chain(folder / CHAIN_FILE, covered)[:length]
    except ValueError as exc:
        raise VerifyError(f"{CHAIN_FILE}: unreadable: {exc}") from exc
    if len(entries) != length:
        raise VerifyError(f"{CHAIN_FILE}: {len(entries)} entries, manifest says {length}")
    try:
        head = check_links(entries)
    except ChainError as exc:
        raise VerifyError(str(exc)) from exc
    if head != manifest.get("chain_head"):
        raise VerifyError(f"{CHAIN_FILE}: head does not match the manifest")

    chained_segments: list[dict[str, Any]] = []
    torn: list[dict[str, Any]] = []
    kept: dict[str, list[dict[str, Any]]] = {"original": [], "derivative": []}
    for e in entries:
        if e["kind"] == "segment":
            name = str(e["name"])
            path = folder / name
            if not path.exists():
                raise VerifyError(f"segment {name}: missing")
            if path.stat().st_size != e.get("bytes") or sha256_file(path) != e["sha256"]:
                raise VerifyError(f"segment {name}: SHA-256 does not match (altered or swapped)")
            chained_segments.append(e)
        elif e["kind"] == "torn":
            path = folder / str(e["name"])
            if not path.exists():
                raise VerifyError(f"cut original {e['name']}: missing")
            if path.stat().st_size != e.get("bytes") or sha256_file(path) != e["sha256"]:
                raise VerifyError(f"cut original {e['name']}: SHA-256 does not match (altered)")
            torn.append(e)
        elif e["kind"] in kept:
            path = folder / str(e["name"])
            if not path.exists():
                raise VerifyError(f"{e['kind']} {e['name']}: missing")
            if path.stat().st_size != e.get("bytes") or sha256_file(path) != e["sha256"]:
                raise VerifyError(f"{e['kind']} {e['name']}: SHA-256 does not match (altered)")
            kept[e["kind"]].append(e)
        elif e["kind"] in ("event", "fix-batch"):
            name = str(e["file"])
            if name not in (EVENTS_FILE, FIXES_FILE):
                raise VerifyError(f"chain entry {e['seq']}: unexpected file {name}")
            try:
                digest = sha256_range(folder / name, int(e["offset"]), int(e["length"]))
            except (ValueError, OSError) as exc:
                raise VerifyError(f"{name}: chain entry {e['seq']}: {exc}") from exc
            if digest != e["sha256"]:
                raise VerifyError(f"{name}: bytes of chain entry {e['seq']} altered")

    listed = [(s["name"], s["sha256"]) for s in manifest.get("segments", [])]
    if listed != [(e["name"], e["sha256"]) for e in chained_segments]:
        raise VerifyError("manifest: segment list differs from the chain")
    if [(t["name"], t["sha256"]) for t in manifest.get("torn_parts", [])] != [
        (e["name"], e["sha256"]) for e in torn
    ]:
        raise VerifyError("manifest: list of cut originals differs from the chain")
    for kind, entries_of_kind in kept.items():
        if [(k["name"], k["sha256"]) for k in manifest.get(f"{kind}s", [])] != [
            (e["name"], e["sha256"]) for e in entries_of_kind
        ]:
            raise VerifyError(f"manifest: list of {kind}s differs from the chain")
    cut = {(e["name"], e["sha256"]) for e in torn}
    for e in chained_segments:
        source = e.get("recovered_from")
        if source and (source.get("name"), source.get("sha256")) not in cut:
            raise VerifyError(f"segment {e['name']}: its cut original is not chained")
    names = {n for n, _ in listed} | {name for name, _ in cut}
    kept_names = {str(e["name"]) for entries_of_kind in kept.values() for e in entries_of_kind}
    for path in sorted(folder.iterdir()):
        if MEDIA_FILE.match(path.name) and path.name not in names:
            raise VerifyError(f"media file {path.name}: not in the signed manifest")
        if KEPT_FILE.match(path.name) and path.name not in kept_names:
            raise VerifyError(f"file {path.name}: not in the signed manifest")

    if decode:
        for name, _ in listed:
            try:
                frames, damaged = _decode(folder / name)
            except av.FFmpegError as exc:
                raise VerifyError(f"segment {name}: does not decode: {exc}") from exc
            if frames == 0:
                raise VerifyError(f"segment {name}: no frames decode")
            if damaged:
                report.notes.append(
                    f"segment {name}: {damaged} packets do not decode (damaged in transit, "
                    "kept as received)"
                )
    report.segments = len(listed)
    report.media_seconds = float(manifest.get("media_seconds") or 0.0)
    return report, manifest


def download_session(store: EvidenceStore, session_id: str, into: Path) -> Path:
    """Fetch a session's objects (latest versions), every node's, into ``into/<session>``."""
    prefix = find_session(store, session_id)
    folder = into / session_id
    folder.mkdir(parents=True, exist_ok=True)
    for key in store.list(prefix + "/"):
        path = folder / key[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(store.get(key))
    return folder


def verify_target(
    target: str,
    store: EvidenceStore | None,
    jwks: dict[str, Any] | None,
    decode: bool = True,
) -> Report:
    """A folder path, or else a session id looked up in the store. For a session from the
    store, without ``jwks`` the keys the nodes published there are the trusted ones (a key
    not among them fails); a store with none falls back to each bundle's own ``jwks.json``."""
    path = Path(target)
    if path.is_dir():
        return verify_bundle(path, jwks, decode)
    if store is None:
        raise VerifyError(f"{target}: no such folder and no store configured")
    if jwks is None:
        published = trusted_jwks({"keys": []}, store)
        jwks = published if published["keys"] else None
    with tempfile.TemporaryDirectory(prefix="scenelink-verify-") as tmp:
        try:
            folder = download_session(store, target, Path(tmp))
        except Exception as exc:
            raise VerifyError(f"session {target}: not found in the store: {exc}") from exc
        return verify_bundle(folder, jwks, decode)
