"""A hash chain over a session's evidence: segments, events and batches of location fixes.

``chain.jsonl`` holds one JSON entry a line::

    {"seq": 3, "kind": "segment", "name": "media-002.mkv", "sha256": "...", ..., "prev": "...",
     "hash": "..."}

``hash`` is the SHA-256 of the entry's canonical JSON without ``hash``; ``prev`` is the previous
entry's ``hash`` (64 zeros for the first). Events and fixes are chained as byte ranges of
``events.jsonl`` and ``location.jsonl`` (``offset``, ``length``, ``sha256`` of those bytes), so
the files stay plain JSON lines and any edit, removal or reordering breaks the chain.
Every append is whole or absent (``durable``); a line torn by a crash is moved aside when
the chain is next opened.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .durable import append_line, recover_tail

CHAIN_FILE = "chain.jsonl"
GENESIS = "0" * 64
# "torn": the original of a part that was never closed (a crash, a full disk), kept beside
# the clean copy made of its whole frames.
KINDS = ("segment", "event", "fix-batch", "gap", "torn")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def sha256_range(path: Path, offset: int, length: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise ValueError(f"{path.name}: {length} bytes at {offset} are not all there")
    return hashlib.sha256(data).hexdigest()


class HashChain:
    """Appends entries to ``chain.jsonl`` (blocking; one writer thread per session)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / CHAIN_FILE
        recover_tail(self.path)
        self.entries: list[dict[str, Any]] = load_chain(self.path)

    @property
    def head(self) -> str:
        return str(self.entries[-1]["hash"]) if self.entries else GENESIS

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown chain entry kind {kind}")
        entry: dict[str, Any] = {"seq": len(self.entries), "kind": kind, **fields}
        entry["prev"] = self.head
        entry["hash"] = entry_hash(entry)
        append_line(self.path, canonical(entry) + b"\n")
        self.entries.append(entry)
        return entry

    def covered(self, name: str) -> int:
        """Bytes of ``name`` (events.jsonl or location.jsonl) already chained."""
        end = 0
        for e in self.entries:
            if e.get("file") == name:
                end = max(end, int(e["offset"]) + int(e["length"]))
        return end

    def segments(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["kind"] == "segment"]

    def torn(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["kind"] == "torn"]


def load_chain(path: Path, size: int | None = None) -> list[dict[str, Any]]:
    """Entries of a chain file, or of its first ``size`` bytes (``ValueError`` on a line that
    is not JSON)."""
    if not path.exists():
        return []
    raw = path.read_bytes()[:size]
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


class ChainError(Exception):
    """A broken link: the message names the entry."""


def check_links(entries: list[dict[str, Any]]) -> str:
    """Check seq, prev and hash of every entry; returns the head."""
    prev = GENESIS
    for i, e in enumerate(entries):
        label = f"chain entry {i} ({e.get('kind')} {e.get('name') or e.get('file') or ''})".strip()
        if e.get("seq") != i:
            raise ChainError(f"{label}: sequence number {e.get('seq')} out of order")
        if e.get("prev") != prev:
            raise ChainError(f"{label}: does not link to the previous entry")
        if e.get("hash") != entry_hash(e):
            raise ChainError(f"{label}: entry hash does not match its content")
        prev = str(e["hash"])
    return prev
