"""This worker's life in the cluster: its heartbeat, taking over the sessions of a worker
that has gone, and draining before it stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from recorder.events import EvidenceEvent
from signalling.calls.service import SessionService
from signalling.calls.state import StateStore
from signalling.cluster.registry import Registry

logger = logging.getLogger(__name__)

# Sessions whose caller had media: their loss is noticed and they are taken over at once
# (one that has not connected yet is claimed by the first request that reaches it).
ADOPTED_STATES = ("connecting", "live", "reconnecting")
RECENT = 500  # sessions looked at per sweep, newest first


class Node:
    """Heartbeat every third of the lease; each beat also looks for live sessions without
    an owner and, if this worker is the one placement would choose, takes them over."""

    def __init__(
        self, registry: Registry, service: SessionService, store: StateStore, lease_s: float
    ) -> None:
        self.registry = registry
        self.service = service
        self.store = store
        self.interval_s = lease_s / 3
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.registry.clustered:
            self._task = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        while True:
            try:
                await self.registry.heartbeat()
                await self.adopt_orphans()
            except Exception:
                logger.exception("cluster heartbeat of %s failed", self.registry.worker_id)
            await asyncio.sleep(self.interval_s)

    async def adopt_orphans(self) -> list[str]:
        """Live sessions whose owner's lease has expired, taken over by this worker when it
        is the least loaded (another worker takes the rest at its own beat)."""
        if not self.registry.accepting:
            return []
        orphans = [
            s.id
            for s in await self.store.recent(RECENT)
            if s.state in ADOPTED_STATES and await self.registry.owner(s.id) is None
        ]
        adopted = []
        for session_id in orphans:
            chosen = await self.registry.place()
            if chosen is not None and chosen.id != self.registry.worker_id:
                break  # a less loaded worker takes the rest
            if await self.service.adopt(session_id):
                adopted.append(session_id)
        return adopted

    async def drain(self, deadline_s: float) -> None:
        """No new sessions here (placement skips this worker; readiness says so); live ones
        go on until they end or ``deadline_s`` passes, then are handed to another worker."""
        self.registry.accepting = False  # also what /readyz reports (signalling.ops)
        if not self.registry.clustered:
            return  # alone: stop as before (sessions stay open; callers resume on restart)
        await self.registry.heartbeat()
        if await self.registry.place() is None:
            # Nobody to hand over to: stop as a lone server does (the sessions stay open in
            # the store; callers resume on whichever worker starts next).
            logger.warning("draining %s: no other worker takes sessions", self.registry.worker_id)
            return
        logger.info("draining %s: up to %.0f s", self.registry.worker_id, deadline_s)
        until = time.monotonic() + deadline_s
        ended = asyncio.Event()
        self.service.listeners.append(lambda _, event: _set_if_ended(ended, event))
        while await self._live_here() and (left := until - time.monotonic()) > 0:
            ended.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), left)
        for session_id in self.service.sessions_here:
            logger.info("session %s handed over by %s", session_id, self.registry.worker_id)
            await self.service.hand_over(session_id)

    async def _live_here(self) -> bool:
        for session_id in self.service.sessions_here:
            try:
                if (await self.store.get(session_id)).state != "ended":
                    return True
            except KeyError:
                continue
        return False

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


def _set_if_ended(ended: asyncio.Event, event: EvidenceEvent) -> None:
    if event["event"] == "ended":
        ended.set()
