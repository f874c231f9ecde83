"""One session's bundle when several nodes recorded it: each node's contribution, and the
session-level index of every part in order with the gaps between them.

Each node that records a session writes its own contribution: a whole bundle (chain, events,
fixes, parts, manifest signed with that node's key). In the store they share the session's
prefix (``index/<session>.json``, claimed once with ``create`` by whichever node uploads
first): the first node's contribution at the prefix itself, exactly as a single node writes
it, and every other node's under ``<prefix>/nodes/<node id>/`` (with a member record, below).
No node writes over another's objects or the index: the index of the whole session is derived
when read, from the signed manifests. In a cluster, and always in a continued session, part
names carry the node id (``parts``), so names are unique across the session. Blocking: call
from a thread.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chain import canonical
from .manifest import MANIFEST_JWS, verify_jws
from .store import EvidenceStore, StoreError, find_session, index_key, safe_part

NODES_DIR = "nodes"
# ``contributions/<session>/<node id>.json``: written once by each node whose contribution is
# not at the session's prefix, so that one listing tells a reader a session has grown.
MEMBERS_PREFIX = "contributions/"


def contribution_prefix(session_prefix: str, node_id: str | None) -> str:
    """Where a node's contribution goes: the session prefix for the first node (None)."""
    return session_prefix if node_id is None else f"{session_prefix}/{NODES_DIR}/{node_id}"


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """``index/<session>.json``: where the session's objects are, and which node claimed it
    (older records name no node)."""

    session_id: str
    prefix: str
    node_id: str | None = None

    def encode(self) -> bytes:
        node = {"node_id": self.node_id} if self.node_id else {}
        return canonical({"session_id": self.session_id, "prefix": self.prefix, **node})


def member_key(session_id: str, node_id: str) -> str:
    return f"{members_prefix(session_id)}{node_id}.json"


def members_prefix(session_id: str) -> str:
    return f"{MEMBERS_PREFIX}{safe_part(session_id)}/"


def listed_members(store: EvidenceStore) -> dict[str, set[str]]:
    """Every session's other nodes, as their member records name them (one listing)."""
    found: dict[str, set[str]] = {}
    for key in store.list(MEMBERS_PREFIX):
        session_id, _, name = key[len(MEMBERS_PREFIX) :].partition("/")
        found.setdefault(session_id, set()).add(name.removesuffix(".json"))
    return found


def read_index(store: EvidenceStore, session_id: str) -> IndexRecord:
    record = json.loads(store.get(index_key(session_id)))
    node = record.get("node_id")
    return IndexRecord(str(record["session_id"]), str(record["prefix"]), node and str(node))


@dataclass(frozen=True, slots=True)
class Contribution:
    """One node's part of a session's bundle in the store, its manifest verified."""

    prefix: str  # the objects' key prefix
    node_id: str | None  # the node, as its signed manifest names it (None: before clusters)
    manifest: dict[str, Any]

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @property
    def incident_ref(self) -> str | None:
        ref = self.manifest.get("incident_ref")
        return str(ref) if ref else None


@dataclass(frozen=True, slots=True)
class IndexedPart:
    """One part in the session-level index."""

    name: str
    key: str  # its object in the store
    node_id: str | None
    sha256: str
    bytes: int
    duration_s: float
    first_frame_wall_clock: float | None
    last_frame_wall_clock: float | None
    gap_before_s: float | None  # seconds since the part before it ended (None: first/unknown)


def local_file(bundle: Path, name: str) -> Path:
    """A file of a bundle fetched whole into a folder: the first node's, else the node's
    under ``nodes/`` that holds it (part names are unique across the session)."""
    direct = bundle / name
    if direct.exists() or not (bundle / NODES_DIR).is_dir():
        return direct
    found = [p / name for p in sorted((bundle / NODES_DIR).iterdir()) if (p / name).is_file()]
    return found[0] if found else direct


def node_prefixes(store: EvidenceStore, session_prefix: str) -> list[str]:
    """The other nodes' contribution prefixes under a session, those with a manifest."""
    base = f"{session_prefix}/{NODES_DIR}/"
    return sorted(
        key.removesuffix(f"/{MANIFEST_JWS}")
        for key in store.list(base)
        if key.endswith(f"/{MANIFEST_JWS}") and "/" not in key[len(base) : -len(MANIFEST_JWS) - 1]
    )


def node_of(prefix: str) -> str | None:
    """The node whose contribution is at ``prefix`` by where it is (None: the first)."""
    head, _, node = prefix.rpartition(f"/{NODES_DIR}/")
    return node if head and "/" not in node else None


def load_contributions(
    store: EvidenceStore, session_id: str, jwks: dict[str, Any]
) -> list[Contribution]:
    """Every contribution with a manifest in the store, first node first; each manifest's
    signature checked against ``jwks`` (``ValueError`` naming the one that fails, or if none
    is there yet; ``StoreError`` if the session is not indexed)."""
    prefix = find_session(store, session_id)
    found = []
    for where in [prefix, *node_prefixes(store, prefix)]:
        try:
            token = store.get(f"{where}/{MANIFEST_JWS}").decode()
        except StoreError:
            continue  # the index is claimed before the first node's manifest lands
        try:
            manifest = verify_jws(token, jwks)
        except Exception as exc:
            raise ValueError(f"{where}/{MANIFEST_JWS}: signature does not verify: {exc}") from exc
        if manifest.get("session_id") != session_id:
            raise ValueError(f"{where}/{MANIFEST_JWS}: names another session")
        found.append(Contribution(where, manifest.get("node_id"), manifest))
    if not found:
        raise ValueError(f"session {session_id}: no manifest in the store yet")
    return found


def session_status(contributions: Sequence[Contribution]) -> str:
    """The session's status: "open" while any node's share is; else that of the share whose
    media ends last (a failover always leaves the dead node's share "interrupted": the
    session is "closed" if the node that recorded last closed it)."""
    statuses = [str(c.manifest.get("status")) for c in contributions]
    if "open" in statuses:
        return "open"

    def ends(c: Contribution) -> str:
        return str(c.manifest.get("last_frame_wall_clock") or c.manifest.get("started_at") or "")

    return str(max(contributions, key=ends).manifest.get("status"))


def session_index(contributions: Sequence[Contribution]) -> list[IndexedPart]:
    """Every node's parts in the order they were recorded (first frame's wall clock; one
    node's in its manifest's order), each with the gap since the part before it ended."""
    rows: list[tuple[float, int, dict[str, Any], Contribution]] = []
    for c in contributions:
        for seg in c.manifest.get("segments", []):
            first = seg.get("first_frame_wall_clock")
            rows.append((float("inf") if first is None else float(first), len(rows), seg, c))
    if len(contributions) > 1:
        rows.sort(key=lambda row: row[:2])
    out: list[IndexedPart] = []
    last_end: float | None = None
    for _, _, seg, c in rows:
        first, last = seg.get("first_frame_wall_clock"), seg.get("last_frame_wall_clock")
        gap = None if first is None or last_end is None else round(first - last_end, 3)
        out.append(
            IndexedPart(
                name=str(seg["name"]),
                key=c.key(str(seg["name"])),
                node_id=c.node_id,
                sha256=str(seg["sha256"]),
                bytes=int(seg["bytes"]),
                duration_s=float(seg.get("duration_s") or 0.0),
                first_frame_wall_clock=first,
                last_frame_wall_clock=last,
                gap_before_s=gap,
            )
        )
        if last is not None:
            last_end = max(last_end or last, last)
    return out
