"""What investigators search: one entry per bundle in the evidence store, read from the store.

The store is the authority (a node's spool may be pruned or lost), so entries are built from
each bundle's signed manifest, its events (the phone number the link went to, for right-of-
access searches) and its location trail (the area it covers). Closed bundles never change, so
their entries are cached; open ones are read again on each refresh. Blocking: call from a thread.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from geopy.distance import geodesic

from .bundle import EVENTS_FILE, FIXES_FILE
from .contributions import (
    listed_members,
    load_contributions,
    node_of,
    session_index,
    session_status,
)
from .nodes import KeySet
from .store import INDEX_PREFIX, EvidenceStore, StoreError

logger = logging.getLogger(__name__)

# Events whose ``by`` took part in the session: created, resent, watched, shared or ended it.
PARTICIPATION = frozenset(
    {"session_created", "link_resent", "viewer_joined", "share_created", "share_withdrawn", "ended"}
)


@dataclass(frozen=True, slots=True)
class Area:
    """A latitude/longitude box, as drawn on the console's map."""

    south: float
    west: float
    north: float
    east: float

    @classmethod
    def parse(cls, text: str) -> Area:
        """``south,west,north,east`` in degrees; a ValueError says, in words, what is wrong."""
        texts = [p.strip() for p in text.split(",")]
        if len(texts) != 4:
            raise ValueError("area must be four numbers: south,west,north,east")
        parts = []
        for name, p in zip(("south", "west", "north", "east"), texts, strict=True):
            try:
                parts.append(float(p))
            except ValueError:
                raise ValueError(f"{name} is not a number of degrees: {p[:20]!r}") from None
        area = cls(*parts)
        if not (-90 <= area.south <= area.north <= 90 and -180 <= area.west <= area.east <= 180):
            raise ValueError("area corners are out of range or in the wrong order")
        return area

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east


@dataclass(frozen=True, slots=True)
class Near:
    """Within ``radius_m`` metres (geodesic) of a point: "near a grid reference"."""

    lat: float
    lon: float
    radius_m: float

    def box(self) -> Area:
        """A latitude/longitude box holding the circle: most fixes are ruled out by it
        before any geodesic is worked out."""
        lat_deg = self.radius_m / 111_000 + 1e-6  # a degree of latitude is 110.6-111.7 km
        cos_lat = max(math.cos(math.radians(min(abs(self.lat) + lat_deg, 90.0))), 1e-6)
        lon_deg = min(lat_deg / cos_lat, 180.0)
        return Area(
            max(self.lat - lat_deg, -90.0),
            max(self.lon - lon_deg, -180.0),
            min(self.lat + lat_deg, 90.0),
            min(self.lon + lon_deg, 180.0),
        )

    def contains(self, lat: float, lon: float) -> bool:
        distance: float = geodesic((self.lat, self.lon), (lat, lon)).meters
        return distance <= self.radius_m


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    sha256: str
    bytes: int
    duration_s: float
    first_frame_wall_clock: float | None
    node_id: str | None = None  # the node that recorded it, in a cluster


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    session_id: str
    prefix: str
    status: str
    incident_ref: str | None
    phone: str | None
    started_at: datetime
    media_seconds: float
    codecs: list[str]
    segments: list[Segment]
    positions: list[tuple[float, float]] = field(repr=False)
    chain_head: str | None = None
    participants: frozenset[str] = frozenset()  # operators the events name (replay rights)
    ended_at: datetime | None = None
    mode: str | None = None  # the invite type its session_created event names
    # The manifest's originals and derivatives (files from the caller, thumbnails, snapshots).
    kept: tuple[dict[str, Any], ...] = field(default=(), repr=False)
    # Which contribution (object prefix) holds each part and kept file, when several nodes
    # recorded the session; every contribution's prefix, first node first.
    sources: dict[str, str] = field(default_factory=dict, repr=False)
    contributions: tuple[str, ...] = ()

    @property
    def other_nodes(self) -> set[str]:
        """The nodes whose contributions are under ``nodes/`` (beside the first one)."""
        return {node for prefix in self.contributions if (node := node_of(prefix))}

    def in_area(self, area: Area) -> bool:
        return any(area.contains(lat, lon) for lat, lon in self.positions)

    def near(self, near: Near) -> bool:
        box = near.box()
        return any(
            box.contains(lat, lon) and near.contains(lat, lon) for lat, lon in self.positions
        )

    def summary(self) -> dict[str, Any]:
        """For the API: no phone number and no trail (those have their own routes)."""
        return {
            "session_id": self.session_id,
            "status": self.status,
            "incident_ref": self.incident_ref,
            "mode": self.mode,
            "started_at": self.started_at.isoformat(),
            "media_seconds": self.media_seconds,
            "codecs": self.codecs,
            "fix_count": len(self.positions),
            "segments": [
                {
                    "name": s.name,
                    "sha256": s.sha256,
                    "bytes": s.bytes,
                    "duration_s": s.duration_s,
                    "first_frame_wall_clock": s.first_frame_wall_clock,
                    "node_id": s.node_id,
                }
                for s in self.segments
            ],
        }


@dataclass(frozen=True, slots=True)
class SearchQuery:
    incident_ref: str | None = None
    phone: str | None = None  # E.164, already normalised
    since: datetime | None = None
    until: datetime | None = None
    area: Area | None = None
    near: Near | None = None

    def matches(self, entry: CatalogueEntry) -> bool:
        if self.incident_ref and (entry.incident_ref or "").lower() != self.incident_ref.lower():
            return False
        if self.phone and entry.phone != self.phone:
            return False
        if self.since and entry.started_at < self.since:
            return False
        if self.until and entry.started_at > self.until:
            return False
        if self.near is not None and not entry.near(self.near):
            return False
        return self.area is None or entry.in_area(self.area)


def read_lines(data: bytes) -> list[dict[str, Any]]:
    out = []
    for line in data.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _merged(lists: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Several nodes' lines in one order: by their time stamp (an event's ISO ``at``, a
    fix's ``received_at``), stable within each node."""
    rows = [r for lines in lists for r in lines]
    if sum(1 for lines in lists if lines) < 2:
        return rows
    return sorted(rows, key=lambda r: str(r.get("at") or r.get("received_at") or ""))


def load_entry(store: EvidenceStore, session_id: str, jwks: dict[str, Any]) -> CatalogueEntry:
    """Build one entry from the store, from every node's contribution (``contributions``):
    raises StoreError or ValueError if unusable."""
    found = load_contributions(store, session_id, jwks)
    first = found[0].manifest
    events = _merged(
        [
            read_lines(store.get(c.key(EVENTS_FILE)))
            for c in found
            if EVENTS_FILE in c.manifest.get("files", {})
        ]
    )
    phone = None
    mode = None
    participants: set[str] = set()
    ended_at = None
    for event in events:
        kind, by = event.get("event"), event.get("by")
        if kind == "session_created":
            phone = event.get("phone")
            mode = event.get("mode")
        if kind in PARTICIPATION and isinstance(by, str):
            participants.add(by)
        if kind == "ended" and event.get("at"):
            ended_at = datetime.fromisoformat(event["at"])
    positions = [
        (float(f["lat"]), float(f["lon"]))
        for c in found
        if FIXES_FILE in c.manifest.get("files", {})
        for f in read_lines(store.get(c.key(FIXES_FILE)))
        if "lat" in f and "lon" in f
    ]
    starts = [str(c.manifest["started_at"]) for c in found if c.manifest.get("started_at")]
    kept = [
        k
        for c in found
        for k in c.manifest.get("originals", []) + c.manifest.get("derivatives", [])
    ]
    sources = {
        str(item["name"]): c.prefix
        for c in found
        for item in c.manifest.get("segments", [])
        + c.manifest.get("originals", [])
        + c.manifest.get("derivatives", [])
    }
    return CatalogueEntry(
        session_id=session_id,
        prefix=found[0].prefix,
        status=session_status(found),
        incident_ref=next((c.incident_ref for c in found if c.incident_ref), None),
        phone=phone,
        mode=mode if isinstance(mode, str) else None,
        started_at=datetime.fromisoformat(min(starts))
        if starts
        else datetime.fromtimestamp(0, UTC),
        media_seconds=round(sum(float(c.manifest.get("media_seconds") or 0.0) for c in found), 3),
        codecs=sorted({str(x) for c in found for x in c.manifest.get("codecs", [])}),
        segments=[
            Segment(p.name, p.sha256, p.bytes, p.duration_s, p.first_frame_wall_clock, p.node_id)
            for p in session_index(found)
        ],
        positions=positions,
        chain_head=first.get("chain_head"),
        participants=frozenset(participants),
        ended_at=ended_at,
        kept=tuple(kept),
        sources=sources,
        contributions=tuple(c.prefix for c in found),
    )


class Catalogue:
    """Every bundle in the store, searchable; ``refresh`` picks up new and growing bundles."""

    def __init__(self, store: EvidenceStore, jwks: dict[str, Any]) -> None:
        self.store = store
        self.jwks = jwks
        self.keys = KeySet(jwks, store)  # and every key the nodes published in the store
        self._entries: dict[str, CatalogueEntry] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        ids = [k[len(INDEX_PREFIX) : -len(".json")] for k in self.store.list(INDEX_PREFIX)]
        fresh: dict[str, CatalogueEntry] = {}
        trusted: dict[str, Any] | None = None
        members = listed_members(self.store)  # a node's contribution may land after "closed"
        for session_id in ids:
            known = self._entries.get(session_id)
            grown = members.get(session_id, set()) - (known.other_nodes if known else set())
            if known is not None and known.status == "closed" and not grown:
                fresh[session_id] = known
                continue
            try:
                trusted = trusted or self.keys.jwks()
                fresh[session_id] = load_entry(self.store, session_id, trusted)
            except (StoreError, ValueError, KeyError) as exc:
                logger.warning("catalogue: bundle %s unusable: %s", session_id, exc)
        with self._lock:
            self._entries = fresh

    def get(self, session_id: str) -> CatalogueEntry:
        """Raises KeyError for a session the store does not hold."""
        with self._lock:
            entry = self._entries.get(session_id)
        if entry is None:
            self.refresh()
            with self._lock:
                entry = self._entries[session_id]
        return entry

    def search(self, query: SearchQuery) -> list[CatalogueEntry]:
        self.refresh()
        with self._lock:
            entries: Iterable[CatalogueEntry] = list(self._entries.values())
        found = [e for e in entries if query.matches(e)]
        return sorted(found, key=lambda e: e.started_at, reverse=True)

    def _read(self, entry: CatalogueEntry, name: str) -> bytes:
        """An object of a listed bundle (of the node's contribution that holds it); KeyError
        (and forgotten) if it was disposed of."""
        where = entry.sources.get(name, entry.prefix)
        try:
            return self.store.get(f"{where}/{name}")
        except StoreError:
            with self._lock:
                self._entries.pop(entry.session_id, None)
            raise KeyError(f"{entry.session_id}/{name}") from None

    def _lines(self, entry: CatalogueEntry, name: str) -> list[dict[str, Any]]:
        """One JSON-lines file of every node's contribution, merged in time order."""
        if len(entry.contributions) < 2:
            return read_lines(self._read(entry, name))
        lists = []
        for prefix in entry.contributions:
            try:
                lists.append(read_lines(self.store.get(f"{prefix}/{name}")))
            except StoreError:
                lists.append([])  # this node recorded no such lines (no fixes, say)
        return _merged(lists)

    def trail(self, session_id: str) -> list[dict[str, Any]]:
        entry = self.get(session_id)
        return self._lines(entry, FIXES_FILE) if entry.positions else []

    def events(self, session_id: str) -> list[dict[str, Any]]:
        return self._lines(self.get(session_id), EVENTS_FILE)

    def kept_file(self, session_id: str, name: str) -> bytes:
        """One stored original or derivative, only if the signed manifest lists it."""
        entry = self.get(session_id)
        if name not in {str(k["name"]) for k in entry.kept}:
            raise KeyError(name)
        return self._read(entry, name)

    def media(self, session_id: str, name: str) -> bytes:
        """One stored segment, only if the signed manifest lists it."""
        entry = self.get(session_id)
        if name not in {s.name for s in entry.segments}:
            raise KeyError(name)
        return self._read(entry, name)
