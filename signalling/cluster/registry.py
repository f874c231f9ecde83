"""Who is alive and who owns which session: leases in Redis, renewed by a heartbeat.

Each worker keeps ``worker:<id>`` (its address, load and whether it takes new sessions) and
``owner:<session>`` for every session it holds, both with an expiry (``SET ... PX``). A
worker that stops renewing them is gone after one lease; its sessions are then claimed
(``SET NX``) by whichever worker meets them first. Nothing here votes or elects: Redis's
atomic commands are the only arbiter.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Protocol

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

PREFIX = "scenelink:"
LAST_S = 40 * 86_400  # who owned a session last is kept past any session's life

# Renew or release a lease only while it is still ours (another worker may hold it now).
RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class Worker:
    """A live worker as it registered itself."""

    id: str
    url: str  # its internal base URL, for forwarded requests
    load: int  # sessions it holds
    accepting: bool  # False while it drains


class Registry(Protocol):
    """What the rest of the server asks of the cluster."""

    worker_id: str
    clustered: bool  # False: one process, every session is ours, nothing is forwarded
    accepting: bool

    def holds(self, session_id: str) -> bool:
        """This worker owns the session (as far as its last heartbeat knows)."""
        ...

    async def heartbeat(self) -> None: ...
    async def workers(self) -> list[Worker]: ...
    async def owner(self, session_id: str) -> str | None: ...
    async def previous(self, session_id: str) -> tuple[str, str] | None:
        """Who owned the session last, and why it left: "drain" (released by a draining
        worker) or "failover" (its lease lapsed). None: nobody before."""
        ...

    async def claim(self, session_id: str) -> bool: ...
    async def release(self, session_id: str, reason: str | None = None) -> None: ...
    async def place(self) -> Worker | None:
        """The least-loaded live worker that takes new sessions (None: none does)."""
        ...

    async def close(self) -> None: ...


class LocalRegistry:
    """Embedded defaults: this process is the whole cluster."""

    clustered = False

    def __init__(self, worker_id: str, url: str) -> None:
        self.worker_id = worker_id
        self.url = url
        self.accepting = True

    def holds(self, session_id: str) -> bool:
        return True

    async def heartbeat(self) -> None:
        return None

    async def workers(self) -> list[Worker]:
        return [Worker(self.worker_id, self.url, 0, self.accepting)]

    async def owner(self, session_id: str) -> str | None:
        return self.worker_id

    async def previous(self, session_id: str) -> tuple[str, str] | None:
        return None

    async def claim(self, session_id: str) -> bool:
        return True

    async def release(self, session_id: str, reason: str | None = None) -> None:
        return None

    async def place(self) -> Worker | None:
        return (await self.workers())[0] if self.accepting else None

    async def close(self) -> None:
        return None


class RedisRegistry:
    """The registry in Redis; ``heartbeat`` must run every third of ``lease_s`` or so."""

    clustered = True

    def __init__(self, redis_url: str, worker_id: str, url: str, lease_s: float) -> None:
        self.worker_id = worker_id
        self.url = url
        self.lease_ms = max(1, int(lease_s * 1000))
        self.accepting = True
        self.owned: set[str] = set()
        self._redis: aioredis.Redis = aioredis.from_url(redis_url, decode_responses=True)
        self._renew = self._redis.register_script(RENEW)
        self._release = self._redis.register_script(RELEASE)

    def holds(self, session_id: str) -> bool:
        return session_id in self.owned

    async def heartbeat(self) -> None:
        """Register this worker again and renew every lease it holds; a lease found lost
        (expired and taken by another) is dropped, so this worker stops touching it."""
        for session_id in list(self.owned):
            if not await self._renew(
                keys=[_owner(session_id)], args=[self.worker_id, self.lease_ms]
            ):
                if not await self.claim(session_id):
                    logger.warning("session %s: ownership lost to another worker", session_id)
                    self.owned.discard(session_id)
        await self._register()

    async def _register(self) -> None:
        me = Worker(self.worker_id, self.url, len(self.owned), self.accepting)
        await self._redis.set(_worker(self.worker_id), json.dumps(asdict(me)), px=self.lease_ms)

    async def workers(self) -> list[Worker]:
        keys = [key async for key in self._redis.scan_iter(match=_worker("*"), count=100)]
        values = await self._redis.mget(keys) if keys else []
        return sorted(
            (Worker(**json.loads(value)) for value in values if value is not None),
            key=lambda w: w.id,
        )

    async def owner(self, session_id: str) -> str | None:
        owner = await self._redis.get(_owner(session_id))
        return str(owner) if owner is not None else None

    async def previous(self, session_id: str) -> tuple[str, str] | None:
        last = await self._redis.get(_last(session_id))
        if last is None:
            return None
        kept = json.loads(last)
        return str(kept["worker"]), str(kept.get("left") or "failover")

    async def claim(self, session_id: str) -> bool:
        """Own the session unless a live lease says another worker does."""
        key = _owner(session_id)
        if await self._redis.set(key, self.worker_id, nx=True, px=self.lease_ms):
            self.owned.add(session_id)
            await self._redis.set(
                _last(session_id), json.dumps({"worker": self.worker_id}), ex=LAST_S
            )
            await self._register()  # its load at once: sessions made together spread out
            return True
        if await self._renew(keys=[key], args=[self.worker_id, self.lease_ms]):
            self.owned.add(session_id)
            return True
        return False

    async def release(self, session_id: str, reason: str | None = None) -> None:
        """Let the session go; ``reason`` (e.g. "drain") is told to its next owner."""
        self.owned.discard(session_id)
        if reason is not None:
            left = json.dumps({"worker": self.worker_id, "left": reason})
            await self._redis.set(_last(session_id), left, ex=LAST_S)
        await self._release(keys=[_owner(session_id)], args=[self.worker_id])
        await self._register()

    async def place(self) -> Worker | None:
        candidates = [w for w in await self.workers() if w.accepting]
        return min(candidates, key=lambda w: (w.load, w.id), default=None)

    async def close(self) -> None:
        """Leave the cluster: the registration goes now (leases are released by the drain)."""
        await self._redis.delete(_worker(self.worker_id))
        await self._redis.aclose()


def _worker(worker_id: str) -> str:
    return f"{PREFIX}worker:{worker_id}"


def _owner(session_id: str) -> str:
    return f"{PREFIX}owner:{session_id}"


def _last(session_id: str) -> str:
    return f"{PREFIX}last_owner:{session_id}"
