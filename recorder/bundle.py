"""One session's evidence folder as a bundle: chain, metadata and the signed manifest.

Blocking; used from the recorder's writer thread and by start-up recovery.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .chain import CHAIN_FILE, HashChain, canonical, sha256_file, sha256_range
from .durable import append_line, fsync_file, make_folder, recover_tail, write_atomic
from .manifest import JWKS_FILE, MANIFEST_JSON, MANIFEST_JWS, Signer, clock_source

EVENTS_FILE = "events.jsonl"
FIXES_FILE = "location.jsonl"
FORMAT = "scenelink-evidence/1"
# Event keys copied into the manifest (service events carry them).
META_KEYS = (
    "incident_ref",
    "token_id",
    "user_agent",
    "device",
    "browser",
    "consent_version",
)


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def read_manifest_json(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST_JSON
    if not path.exists():
        return None
    value: dict[str, Any] = json.loads(path.read_bytes())
    return value


class Bundle:
    """One node's contribution to a session's evidence; ``node_id`` (in a cluster) names the
    node in the manifest, so a session's index can say which node recorded which part."""

    def __init__(self, folder: Path, signer: Signer | None, node_id: str | None = None) -> None:
        self.folder = folder
        make_folder(folder)
        self.signer = signer
        self.node_id = node_id
        self.chain = HashChain(folder)
        for name in (EVENTS_FILE, FIXES_FILE):
            recover_tail(folder / name)
        self.meta: dict[str, Any] = {}
        events = folder / EVENTS_FILE
        if events.exists():
            for line in events.read_bytes().splitlines():
                try:
                    self.note_event(json.loads(line))
                except ValueError:
                    continue

    def note_event(self, event: Mapping[str, Any]) -> None:
        for key in META_KEYS:
            if event.get(key) is not None:
                self.meta[key] = event[key]

    def append_line(self, name: str, record: Mapping[str, Any]) -> None:
        """Append one record (whole or not at all); ``chain_pending`` chains it. Two steps,
        so that a failure of the second never makes the first be done twice."""
        append_line(self.folder / name, canonical(record) + b"\n")
        if name == EVENTS_FILE:
            self.note_event(record)

    def chain_tail(self, name: str, kind: str) -> None:
        """Chain the bytes of ``name`` written since the last entry for it."""
        path = self.folder / name
        if not path.exists():
            return
        start = self.chain.covered(name)
        end = path.stat().st_size
        if end > start:
            self.chain.append(
                kind,
                file=name,
                offset=start,
                length=end - start,
                sha256=sha256_range(path, start, end - start),
                at=time.time(),
            )

    def chain_pending(self) -> None:
        self.chain_tail(EVENTS_FILE, "event")
        self.chain_tail(FIXES_FILE, "fix-batch")

    def add_segment(self, path: Path, **fields: Any) -> dict[str, Any]:
        fsync_file(path)
        return self.chain.append(
            "segment",
            name=path.name,
            sha256=sha256_file(path),
            bytes=path.stat().st_size,
            at=time.time(),
            **fields,
        )

    def add_kept(self, entry: str, path: Path, sha256: str, **fields: Any) -> dict[str, Any]:
        """Chain an original or a derivative (``originals``) already written and fsynced."""
        return self.chain.append(
            entry,
            name=path.name,
            sha256=sha256,
            bytes=path.stat().st_size,
            at=time.time(),
            **fields,
        )

    def kept(self, kind: str) -> list[dict[str, Any]]:
        """The chained originals or derivatives, as the manifest lists them."""
        return [
            {k: v for k, v in e.items() if k not in ("kind", "prev", "hash", "seq")}
            | {"chain_seq": e["seq"]}
            for e in self.chain.entries
            if e["kind"] == kind
        ]

    def manifest(self, status: str) -> dict[str, Any]:
        segments = []
        for e in self.chain.segments():
            seg = {k: v for k, v in e.items() if k not in ("seq", "kind", "prev", "hash", "at")}
            seg["chain_seq"] = e["seq"]
            segments.append(seg)
        gaps = []
        for e in self.chain.entries:
            if e["kind"] != "gap":
                continue
            gap = {k: v for k, v in e.items() if k not in ("kind", "prev", "hash")}
            later = [s for s in self.chain.segments() if s["seq"] > e["seq"]]
            gap["resumed_wall_clock"] = later[0].get("first_frame_wall_clock") if later else None
            gaps.append(gap)
        firsts = [s["first_frame_wall_clock"] for s in segments if s.get("first_frame_wall_clock")]
        lasts = [s["last_frame_wall_clock"] for s in segments if s.get("last_frame_wall_clock")]
        codecs = sorted(
            {c for s in segments for c in (s.get("video_codec"), s.get("audio_codec")) if c}
        )
        files = {}
        for name in (EVENTS_FILE, FIXES_FILE, CHAIN_FILE):
            path = self.folder / name
            if path.exists():
                size = self.chain.covered(name) if name != CHAIN_FILE else path.stat().st_size
                files[name] = {"bytes": size, "sha256": sha256_range(path, 0, size)}
        started = self.chain.entries[0]["at"] if self.chain.entries else time.time()
        node = {"node_id": self.node_id} if self.node_id else {}
        return {
            "format": FORMAT,
            "status": status,
            "session_id": self.folder.name,
            **node,
            "incident_ref": self.meta.get("incident_ref"),
            "token_id": self.meta.get("token_id"),
            "caller": {
                "user_agent": self.meta.get("user_agent"),
                "device": self.meta.get("device"),
                "browser": self.meta.get("browser"),
                "consent_version": self.meta.get("consent_version"),
            },
            "server_clock": clock_source(),
            "started_at": iso(started),
            "signed_at": iso(time.time()),
            "codecs": codecs,
            "segments": segments,
            "first_frame_wall_clock": iso(min(firsts)) if firsts else None,
            "last_frame_wall_clock": iso(max(lasts)) if lasts else None,
            "media_seconds": round(sum(float(s.get("duration_s") or 0) for s in segments), 3),
            "gaps": gaps,
            "torn_parts": [
                {k: e[k] for k in ("name", "sha256", "bytes", "part")} for e in self.chain.torn()
            ],
            "originals": self.kept("original"),
            "derivatives": self.kept("derivative"),
            "files": files,
            "chain_length": len(self.chain.entries),
            "chain_head": self.chain.head,
            "key_id": self.signer.kid if self.signer else None,
        }

    def write_manifest(self, status: str) -> dict[str, Any]:
        """Chain what is pending, then write (and sign) the manifest atomically."""
        self.chain_pending()
        manifest = self.manifest(status)
        if self.signer is not None:
            write_atomic(self.folder / JWKS_FILE, canonical(self.signer.jwks()))
            write_atomic(self.folder / MANIFEST_JWS, self.signer.sign(manifest).encode())
        write_atomic(self.folder / MANIFEST_JSON, json.dumps(manifest, indent=1).encode())
        return manifest
