"""The audit trail's durable copy: sealed runs of records written once to the evidence store.

The local file is where records land first (before the response is sent); every few seconds
the records not yet archived are written as one object ``audit/<node>/<first>-<last>.jsonl``
under Object Lock where the store has it, so a node's disk can be lost or edited without the
trail going with it. ``read_archive`` joins the runs back into one chain for checking.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import datetime
from typing import Any

from recorder.periodic import Periodic
from recorder.store import EvidenceStore, retain_until, safe_part
from signalling.audit.trail import AuditTrail, first_broken

logger = logging.getLogger(__name__)
PREFIX = "audit/"


def _run_key(node: str, first: int, last: int) -> str:
    return f"{PREFIX}{safe_part(node)}/{first:012d}-{last:012d}.jsonl"


def archived_through(store: EvidenceStore, node: str) -> int:
    """The last sequence number already in the store for this node (-1 if none)."""
    keys = store.list(f"{PREFIX}{safe_part(node)}/")
    return max((int(k.rsplit("-", 1)[1].split(".")[0]) for k in keys), default=-1)


def read_archive(store: EvidenceStore, node: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for key in store.list(f"{PREFIX}{safe_part(node)}/"):
        records.extend(json.loads(line) for line in store.get(key).splitlines() if line.strip())
    return records


class AuditArchiver(Periodic):
    def __init__(
        self,
        trail: AuditTrail,
        store: EvidenceStore,
        node: str,
        retention_days: int,
        interval_s: float = 10.0,
    ) -> None:
        super().__init__("audit archive", interval_s, self.sync)
        self.trail = trail
        self.store = store
        self.node = node
        self.retention_days = retention_days
        self._through: int | None = None

    def sync(self, now: datetime | None = None) -> int:
        """Blocking: write the records not yet archived as one object; returns how many."""
        if self._through is None:
            self._through = archived_through(self.store, self.node)
        trail = self.trail.read()
        records = [r for r in trail if int(r["seq"]) > self._through]
        if not records:
            return 0
        if first_broken(trail) is not None:
            logger.error("audit trail %s is broken: not archiving over it", self.trail.path)
            return 0
        data = b"".join(
            json.dumps(r, sort_keys=True, ensure_ascii=False).encode() + b"\n" for r in records
        )
        first, last = int(records[0]["seq"]), int(records[-1]["seq"])
        self.store.put(
            _run_key(self.node, first, last),
            data,
            hashlib.sha256(data).hexdigest(),
            retain_until(self.retention_days, now),
        )
        self._through = last
        return len(records)

    async def stop(self) -> None:
        """Stop the timer, then archive whatever the last requests recorded."""
        await super().stop()
        try:
            await asyncio.to_thread(self.sync)
        except Exception as exc:
            logger.warning("audit archive at shutdown: %s", exc)
