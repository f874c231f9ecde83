"""The access audit trail (DPA 2018 s.62): who did what, when, to which session, from where.

Append-only JSON lines, each record carrying the SHA-256 of the one before, so a changed,
removed or reordered record breaks the chain at that point. Records name what was done,
never the content (an erasure record does not repeat what was erased).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .sessions import utcnow

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    session_id: str | None
    remote: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    prev: str = GENESIS
    hash: str = ""

    def content_hash(self) -> str:
        content = asdict(self)
        content.pop("hash")
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def first_broken(records: Iterable[Mapping[str, Any]]) -> int | None:
    """Index of the first record that is not the untouched successor of the one before."""
    prev, expected_seq = GENESIS, 0
    for index, raw in enumerate(records):
        try:
            record = AuditRecord(**raw)
        except TypeError:
            return index
        if (
            record.seq != expected_seq
            or record.prev != prev
            or record.hash != record.content_hash()
        ):
            return index
        prev, expected_seq = record.hash, expected_seq + 1
    return None


class AuditTrail:
    """One node's trail in a local file; written before the action's response is sent.

    Appends hold an exclusive ``flock`` and re-read the tail when the file grew under them,
    so the server and a command (``scenelink retention run``) can share one trail.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()
        self._head: tuple[int, int, str] | None = None  # file size, next seq, last hash

    async def record(
        self,
        actor: str,
        action: str,
        session_id: str | None = None,
        remote: str | None = None,
        **detail: Any,
    ) -> AuditRecord:
        async with self._lock:
            return await asyncio.to_thread(self._append, actor, action, session_id, remote, detail)

    async def search(
        self,
        session_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        records = await asyncio.to_thread(self.read)
        wanted = [
            r
            for r in records
            if (session_id is None or r.get("session_id") == session_id)
            and (actor is None or r.get("actor") == actor)
            and (action is None or r.get("action") == action)
        ]
        return wanted[-limit:]

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines if line.strip()]

    def _tail(self) -> tuple[int, str]:
        records = self.read()
        if not records:
            return 0, GENESIS
        return int(records[-1]["seq"]) + 1, str(records[-1]["hash"])

    def _append(
        self,
        actor: str,
        action: str,
        session_id: str | None,
        remote: str | None,
        detail: dict[str, Any],
    ) -> AuditRecord:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            size = os.fstat(out.fileno()).st_size
            if self._head is not None and self._head[0] == size:
                seq, prev = self._head[1:]
            else:
                seq, prev = self._tail()
            draft = AuditRecord(
                seq, utcnow().isoformat(), actor, action, session_id, remote, detail, prev
            )
            record = AuditRecord(**(asdict(draft) | {"hash": draft.content_hash()}))
            line = json.dumps(asdict(record), sort_keys=True, ensure_ascii=False) + "\n"
            out.write(line)
            out.flush()
            os.fsync(out.fileno())
            self._head = (size + len(line.encode()), seq + 1, record.hash)
        return record
