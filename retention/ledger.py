"""A session's retention decisions: an append-only, hash-chained ledger in the evidence store.

Each decision is one write-once object, ``retention/<session>/<seq>.json``, created only if
that sequence number is free, so nodes sharing one store append in one order and a node that
loses the race re-reads and retries (the key holds the number alone: with the kind in it, two
nodes could both take the same number). Entries chain like the evidence itself
(``seq``, ``prev``, ``hash`` as in ``recorder.chain``), so a changed, removed or reordered
decision is detected on every read.

The key space is the session id, not the bundle prefix: a decision can be made while the
caller is still live, before anything of the bundle is uploaded, and the review queue reads
every ledger with one listing.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from recorder.chain import GENESIS, ChainError, canonical, chained, check_links
from recorder.store import AlreadyStored, EvidenceStore, safe_part

LEDGER_PREFIX = "retention/"
KINDS = ("opened", "link", "hold", "release", "shorten", "disposal")
_RETRIES = 8


class LedgerError(Exception):
    """The ledger in the store is broken (the message names the entry)."""


class DisposalUnderway(LedgerError):
    """A disposal run has claimed the session (its ledger ends in "disposal"): no decision
    can be recorded behind it."""


def ledger_prefix(session_id: str) -> str:
    return f"{LEDGER_PREFIX}{safe_part(session_id)}/"


def ledger_sessions(store: EvidenceStore) -> set[str]:
    return {key[len(LEDGER_PREFIX) :].split("/", 1)[0] for key in store.list(LEDGER_PREFIX)}


class Ledger:
    """One session's ledger, cached; blocking (call from a worker thread)."""

    def __init__(self, store: EvidenceStore, session_id: str) -> None:
        self.store = store
        self.session_id = session_id
        self.prefix = ledger_prefix(session_id)
        self._entries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def read(self) -> list[dict[str, Any]]:
        """Every entry, fetching only those written since the last read; checks the chain."""
        with self._lock:
            keys = self.store.list(self.prefix)
            versions = self.store.versions(self.prefix)
            if len(versions) != len({v.key for v in versions}) or any(
                v.delete_marker for v in versions
            ):
                # Entries are written once: a second version or a delete marker means one was
                # overwritten or hidden (which would, say, make a hold disappear).
                self._entries = []
                raise LedgerError(f"retention ledger of {self.session_id}: an entry was replaced")
            if len(keys) < len(self._entries):
                self._entries = []  # disposed of (or tampered with): read afresh
            for key in keys[len(self._entries) :]:
                self._entries.append(json.loads(self.store.get(key)))
            try:
                check_links(self._entries)
            except ChainError as exc:
                self._entries = []
                raise LedgerError(f"retention ledger of {self.session_id}: {exc}") from None
            for key, entry in zip(keys, self._entries, strict=True):
                if key != self._key(entry["seq"]):
                    self._entries = []
                    raise LedgerError(f"retention ledger of {self.session_id}: {key} misfiled")
            return list(self._entries)

    @property
    def head(self) -> str:
        return str(self._entries[-1]["hash"]) if self._entries else GENESIS

    def _key(self, seq: int) -> str:
        return f"{self.prefix}{seq:06d}.json"

    def _fields(self, kind: str, at: datetime, fields: dict[str, Any]) -> dict[str, Any]:
        return {"kind": kind, "session_id": self.session_id, "at": at.isoformat(), **fields}

    def open(self, at: datetime, retain_until: datetime, **fields: Any) -> None:
        """Write entry 0 ("opened") unless a node already has."""
        entry = chained(0, GENESIS, self._fields("opened", at, fields))
        try:
            self.store.create(self._key(0), canonical(entry), retain_until)
        except AlreadyStored:
            pass

    def append(
        self, kind: str, at: datetime, retain_until: datetime, **fields: Any
    ) -> dict[str, Any]:
        """Write the next entry; if another node took that number, re-read and go again."""
        if kind not in KINDS:
            raise ValueError(f"unknown ledger entry kind {kind}")
        for _ in range(_RETRIES):
            entries = self.read()
            if any(e["kind"] == "disposal" for e in entries):
                raise DisposalUnderway(f"session {self.session_id} is being disposed of")
            entry = chained(len(entries), self.head, self._fields(kind, at, fields))
            try:
                self.store.create(self._key(entry["seq"]), canonical(entry), retain_until)
            except AlreadyStored:
                continue
            return entry
        raise LedgerError(f"retention ledger of {self.session_id}: too many concurrent writers")

    def append_after(
        self, head: str, kind: str, at: datetime, retain_until: datetime, **fields: Any
    ) -> dict[str, Any]:
        """Write the next entry only if the ledger still ends at ``head``: raises
        ``AlreadyStored`` if any decision was recorded since (whichever node took the number
        first wins, so a disposal claim and a late decision cannot both succeed)."""
        entries = self.read()
        if self.head != head:
            raise AlreadyStored(self._key(len(entries)))
        entry = chained(len(entries), head, self._fields(kind, at, fields))
        self.store.create(self._key(entry["seq"]), canonical(entry), retain_until)
        return entry
