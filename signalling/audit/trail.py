"""The access audit trail (DPA 2018 s.62): who did what, when, to which session, from where.

Append-only JSON lines, each record carrying the SHA-256 of the one before, so a changed,
removed or reordered record breaks the chain at that point. Written like the evidence
(``recorder.durable``): each record whole or not at all, fsynced before the action's answer,
a line torn by a crash moved aside, readable by the server's account only. Records name what
was done, never the content (an erasure record does not repeat what was erased).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from recorder import chain
from recorder.chain import ChainedLog, readable
from recorder.durable import make_folder
from signalling.calls.sessions import utcnow

logger = logging.getLogger(__name__)


class AuditUnavailable(RuntimeError):
    """The trail cannot be written (a full disk): the action it would record is refused."""


class AuditRecord(TypedDict):
    """One line of the trail (``seq``, ``prev`` and ``hash`` as in every chained log)."""

    seq: int
    at: str
    actor: str
    action: str
    session_id: str | None
    remote: str | None
    detail: dict[str, Any]
    prev: str
    hash: str


FIELDS = tuple(AuditRecord.__annotations__)
# What a consultation found rather than what was asked: a refresh that finds more is the same one.
OUTCOME_FIELDS = frozenset({"results"})


def first_broken(records: Iterable[Mapping[str, Any]]) -> int | None:
    """Index of the first record that is not the untouched successor of the one before (or
    that has other fields than a record has)."""
    return chain.first_broken(records, FIELDS)


class AuditTrail:
    """One node's trail in a local file (the one chained log, ``recorder.chain``); written
    before the action's response is sent.

    Appends lock the file and re-read the tail when it grew under them, so the server and a
    command (``scenelink retention run``) can share one trail.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._log = ChainedLog(path, lock=True, encode=readable)
        self._lock = asyncio.Lock()
        self._consulted: set[str] = set()  # what each actor has consulted (``consult``)

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

    async def consult(
        self,
        actor: str,
        action: str,
        session_id: str | None = None,
        remote: str | None = None,
        *,
        refresh: bool = False,
        **detail: Any,
    ) -> AuditRecord | None:
        """A consultation (s.62: a person opening, searching, playing something), recorded unless
        it is a background refresh (a console's timer) of what this actor already consulted: the
        same action, session and question, whatever it finds now. A refresh of anything this
        node has not seen the actor consult (a new question, or after a restart) is recorded:
        the rule can only leave out repeats, never a first consultation."""
        asked = {k: v for k, v in detail.items() if k not in OUTCOME_FIELDS}
        key = json.dumps([actor, action, session_id, asked], sort_keys=True, default=str)
        if refresh and key in self._consulted:
            return None
        record = await self.record(actor, action, session_id, remote, **detail)
        self._consulted.add(key)
        return record

    async def search(
        self,
        session_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 500,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The latest ``limit`` records that match every filter given (``since`` and ``until``
        inclusive, aware datetimes)."""
        records = await asyncio.to_thread(self.read)
        wanted = [
            r
            for r in records
            if (session_id is None or r.get("session_id") == session_id)
            and (actor is None or r.get("actor") == actor)
            and (action is None or r.get("action") == action)
            and (since is None or datetime.fromisoformat(r["at"]) >= since)
            and (until is None or datetime.fromisoformat(r["at"]) <= until)
        ]
        return wanted[-limit:]

    def read(self) -> list[dict[str, Any]]:
        return self._log.read()

    def _append(
        self,
        actor: str,
        action: str,
        session_id: str | None,
        remote: str | None,
        detail: dict[str, Any],
    ) -> AuditRecord:
        make_folder(self.path.parent)
        entry = self._log.append(
            lambda: {
                "at": utcnow().isoformat(),  # taken under the lock: in the order of seq
                "actor": actor,
                "action": action,
                "session_id": session_id,
                "remote": remote,
                "detail": detail,
            }
        )
        return {
            "seq": entry["seq"],
            "at": entry["at"],
            "actor": actor,
            "action": action,
            "session_id": session_id,
            "remote": remote,
            "detail": detail,
            "prev": entry["prev"],
            "hash": entry["hash"],
        }
