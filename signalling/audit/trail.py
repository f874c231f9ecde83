"""The access audit trail (DPA 2018 s.62): who did what, when, to which session, from where.

Append-only JSON lines, each record carrying the SHA-256 of the one before, so a changed,
removed or reordered record breaks the chain at that point. Written like the evidence
(``recorder.durable``): each record whole or not at all, fsynced before the action's answer,
a line torn by a crash moved aside, readable by the server's account only. Records name what
was done, never the content (an erasure record does not repeat what was erased).
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recorder.durable import FILE_MODE, append_line, make_folder, recover_tail
from signalling.calls.sessions import utcnow

logger = logging.getLogger(__name__)
GENESIS = "0" * 64


class AuditUnavailable(RuntimeError):
    """The trail cannot be written (a full disk): the action it would record is refused."""


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
        self._checked_tail = False

    async def record(
        self,
        actor: str,
        action: str,
        session_id: str | None = None,
        remote: str | None = None,
        **detail: Any,
    ) -> AuditRecord:
        async with self._lock:
            try:
                return await asyncio.to_thread(
                    self._append, actor, action, session_id, remote, detail
                )
            except OSError as exc:
                logger.error("AUDIT TRAIL NOT WRITTEN (%s): %s by %s refused", exc, action, actor)
                raise AuditUnavailable(str(exc)) from exc

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
        make_folder(self.path.parent)
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not self._checked_tail:
                recover_tail(self.path)  # a record torn by a crash, before we chain after it
                self._checked_tail = True
            size = os.fstat(fd).st_size
            if self._head is not None and self._head[0] == size:
                seq, prev = self._head[1:]
            else:
                seq, prev = self._tail()
            draft = AuditRecord(
                seq, utcnow().isoformat(), actor, action, session_id, remote, detail, prev
            )
            record = AuditRecord(**(asdict(draft) | {"hash": draft.content_hash()}))
            line = json.dumps(asdict(record), sort_keys=True, ensure_ascii=False) + "\n"
            append_line(self.path, line.encode())
            self._head = (size + len(line.encode()), seq + 1, record.hash)
        finally:
            os.close(fd)  # releases the lock
        return record
