"""Hash-chained JSON lines, the one implementation: the evidence chain and the audit trail.

A chained log holds one JSON entry a line; every entry carries ``seq`` (0, 1, ...), ``prev``
(the previous entry's ``hash``, 64 zeros for the first) and ``hash``: the SHA-256 of the
entry's canonical JSON (sorted keys, no spaces, UTF-8) without ``hash``. A changed, removed or
reordered entry breaks the chain at that point (``first_broken``, ``check_links``).
``ChainedLog`` appends through ``durable``: each entry whole or absent, fsynced before the next,
a line torn by a crash moved aside before anything is chained after it. With ``lock=True``
several writers (processes) can share one file: each append holds an exclusive ``flock`` and
re-reads the tail when the file grew under it.

A session's evidence chain, ``chain.jsonl`` (``HashChain``), is one such log::

    {"seq": 3, "kind": "segment", "name": "media-002.mkv", "sha256": "...", ..., "prev": "...",
     "hash": "..."}

Events and fixes are chained as byte ranges of ``events.jsonl`` and ``location.jsonl``
(``offset``, ``length``, ``sha256`` of those bytes), so the files stay plain JSON lines and any
edit, removal or reordering breaks the chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

from .durable import FILE_MODE, append_line, recover_tail

CHAIN_FILE = "chain.jsonl"
GENESIS = "0" * 64
LINK_FIELDS = ("seq", "prev", "hash")
# "torn": the original of a part that was never closed (a crash, a full disk), kept beside
# the clean copy made of its whole frames. "original": a file the caller sent, kept byte for
# byte; "derivative": a file made from an original or a frame (``originals``).
KINDS = ("segment", "event", "fix-batch", "gap", "torn", "original", "derivative")


class ChainLink(TypedDict):
    """The fields every chained entry carries (besides its own)."""

    seq: int
    prev: str
    hash: str


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def readable(obj: Any) -> bytes:
    """Sorted keys with spaces after separators (the audit trail's lines)."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False).encode()


def entry_hash(entry: Mapping[str, Any]) -> str:
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


Fields = Mapping[str, Any]


def chained(seq: int, prev: str, fields: Fields) -> dict[str, Any]:
    """The entry ``{"seq", **fields, "prev", "hash"}`` that follows ``prev`` as number ``seq``."""
    if any(name in fields for name in LINK_FIELDS):
        raise ValueError("seq, prev and hash are the chain's to set")
    entry: dict[str, Any] = {"seq": seq, **fields, "prev": prev}
    entry["hash"] = entry_hash(entry)
    return entry


class ChainedLog:
    """One chained JSON-lines file; blocking (call from one worker thread per object).

    Nothing touches the disk until ``recover``, ``read`` or ``append`` (the folder must exist:
    ``durable.make_folder``). ``encode`` writes an
    entry as a line (``canonical`` by default; ``readable`` for the audit trail): the hash is
    always over ``canonical``, whatever the line looks like.
    """

    def __init__(
        self,
        path: Path,
        *,
        lock: bool = False,
        encode: Callable[[Fields], bytes] = canonical,
    ) -> None:
        self.path = path
        self.lock = lock
        self.encode = encode
        self._recovered = False
        self._tail: tuple[int, int, str] | None = None  # file size, next seq, last hash

    def recover(self) -> Path | None:
        """Move a line a crash tore aside (``<name>.torn-<offset>``); returns where to."""
        self._recovered = True
        return recover_tail(self.path)

    def read(self, size: int | None = None) -> list[dict[str, Any]]:
        """Every entry (of the first ``size`` bytes); ``ValueError`` on a line that is not JSON."""
        if not self.path.exists():
            return []
        raw = self.path.read_bytes()
        entries = [json.loads(line) for line in raw[:size].splitlines() if line.strip()]
        if size is None:
            self._remember(len(raw), entries)
        return entries

    def _remember(self, size: int, entries: list[dict[str, Any]]) -> None:
        if entries:
            self._tail = (size, int(entries[-1]["seq"]) + 1, str(entries[-1]["hash"]))
        else:
            self._tail = (size, 0, GENESIS)

    @property
    def head(self) -> str:
        """The last entry's hash as last read or written (GENESIS before any)."""
        return self._tail[2] if self._tail else GENESIS

    def append(self, fields: Fields | Callable[[], Fields]) -> dict[str, Any]:
        """Chain one entry after the last: ``{"seq", **fields, "prev", "hash"}``, written whole
        and fsynced. ``fields`` may be a function, called once the log is locked (a time
        stamp in the order of ``seq``). ``OSError`` if it could not be written (nothing was)."""
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, FILE_MODE)
        try:
            if self.lock:
                fcntl.flock(fd, fcntl.LOCK_EX)
            if not self._recovered:
                self.recover()  # a line torn by a crash, before we chain after it
            size = os.fstat(fd).st_size
            if self._tail is None or self._tail[0] != size:
                self.read()  # new to us, or another writer appended since
            assert self._tail is not None
            _, seq, prev = self._tail
            entry = chained(seq, prev, fields() if callable(fields) else fields)
            line = self.encode(entry) + b"\n"
            append_line(self.path, line)
            self._tail = (size + len(line), seq + 1, entry["hash"])
        finally:
            os.close(fd)  # releases the lock
        return entry


class HashChain:
    """A session's ``chain.jsonl`` (blocking; one writer thread per session)."""

    def __init__(self, folder: Path) -> None:
        self.log = ChainedLog(folder / CHAIN_FILE)
        self.path = self.log.path
        self.log.recover()
        self.entries: list[dict[str, Any]] = self.log.read()

    @property
    def head(self) -> str:
        return str(self.entries[-1]["hash"]) if self.entries else GENESIS

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        if kind not in KINDS:
            raise ValueError(f"unknown chain entry kind {kind}")
        entry = self.log.append({"kind": kind, **fields})
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
    return ChainedLog(path).read(size)


class ChainError(Exception):
    """A broken link: the message names the entry."""


def _fault(entry: Mapping[str, Any], index: int, prev: str, fields: Collection[str] | None) -> str:
    """Why ``entry`` is not the untouched successor (``index``, after ``prev``); "" if it is."""
    if fields is not None and set(entry) != set(fields):
        return "fields differ from a chained record's"
    if entry.get("seq") != index:
        return f"sequence number {entry.get('seq')} out of order"
    if entry.get("prev") != prev:
        return "does not link to the previous entry"
    if entry.get("hash") != entry_hash(entry):
        return "entry hash does not match its content"
    return ""


def first_broken(
    entries: Iterable[Mapping[str, Any]], fields: Collection[str] | None = None
) -> int | None:
    """Index of the first entry that is not the untouched successor of the one before;
    with ``fields``, an entry with other fields than exactly those is broken too."""
    prev = GENESIS
    for index, entry in enumerate(entries):
        if _fault(entry, index, prev, fields):
            return index
        prev = str(entry["hash"])
    return None


def check_links(entries: Iterable[Mapping[str, Any]]) -> str:
    """Check seq, prev and hash of every entry; returns the head (``ChainError`` naming the
    first broken entry)."""
    prev = GENESIS
    for i, e in enumerate(entries):
        fault = _fault(e, i, prev, None)
        if fault:
            label = f"chain entry {i} ({e.get('kind')} {e.get('name') or e.get('file') or ''})"
            raise ChainError(f"{label.strip()}: {fault}")
        prev = str(e["hash"])
    return prev
