"""Whether this node should be given work: ``/readyz``'s checks, and the draining flag.

A failing check names itself with a short reason; the cause (addresses, errors) goes to the
log only, since the probe is public.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from typing_extensions import TypedDict

from recorder.evidence import Evidence
from signalling.calls.state import StateStore

logger = logging.getLogger(__name__)
MIB = 1024 * 1024


class Check(TypedDict):
    ok: bool
    detail: str


class ReadyReport(TypedDict):
    """``ready`` when every check is ``ok``."""

    ready: bool
    checks: dict[str, Check]


class NotReady(Exception):
    """A check's failure, in words fit for a public answer."""


class Readiness:
    """The node's checks. ``accepting`` reads the cluster's own flag, which ``Node.drain``
    turns off at SIGTERM: the load balancer stops sending this node new sessions while its
    live ones go on."""

    def __init__(
        self,
        state: StateStore,
        evidence: Evidence[Any],
        redis: bool,
        timeout_s: float,
        accepting: Callable[[], bool],
    ) -> None:
        self._state = state
        self._evidence = evidence
        self._redis = redis
        self._timeout_s = timeout_s
        self._accepting_now = accepting

    @property
    def accepting(self) -> bool:
        return self._accepting_now()

    async def check(self) -> ReadyReport:
        """Every check at once, each within the deadline."""
        probes: dict[str, Callable[[], Awaitable[str]]] = {
            "accepting": self._accepting,
            "evidence_spool": self._spool_writable,
            "evidence_store": self._store_reachable,
            "disk": self._disk,
        }
        if self._redis:
            probes["redis"] = self._redis_reachable
        results = await asyncio.gather(*(self._run(name, p) for name, p in probes.items()))
        checks = dict(zip(probes, results, strict=True))
        return {"ready": all(c["ok"] for c in checks.values()), "checks": checks}

    async def _run(self, name: str, probe: Callable[[], Awaitable[str]]) -> Check:
        try:
            detail = await asyncio.wait_for(probe(), self._timeout_s)
        except NotReady as exc:
            return {"ok": False, "detail": str(exc)}
        except TimeoutError:
            logger.warning("readiness: %s gave no answer within %s s", name, self._timeout_s)
            return {"ok": False, "detail": f"no answer within {self._timeout_s:g} s"}
        except Exception as exc:
            logger.warning("readiness: %s failed: %r", name, exc)
            return {"ok": False, "detail": "unreachable"}
        return {"ok": True, "detail": detail}

    async def _accepting(self) -> str:
        if not self.accepting:
            raise NotReady("draining: no new sessions")
        return "accepting sessions"

    async def _redis_reachable(self) -> str:
        await self._state.ping()
        return "reachable"

    async def _spool_writable(self) -> str:
        def write() -> None:
            # Before the first recording, where the recorder will make the folder.
            folder = self._evidence.settings.evidence_dir
            folder = folder if folder.exists() else folder.parent
            # Linux makes this an unnamed file (O_TMPFILE): nothing appears among the bundles.
            with tempfile.TemporaryFile(dir=folder) as probe:
                probe.write(b"readyz")
                probe.flush()

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            logger.warning("readiness: evidence folder not writable: %r", exc)
            raise NotReady("not writable") from None
        return "writable"

    async def _store_reachable(self) -> str:
        store = self._evidence.store
        await asyncio.to_thread(store.list, "readyz/")
        return f"{store.name} store reachable"

    async def _disk(self) -> str:
        disk = await asyncio.to_thread(self._evidence.disk)
        free = f"{disk['free_bytes'] // MIB} MiB free"
        if disk["low"]:
            raise NotReady(f"{free}, below {disk['warning_below_bytes'] // MIB} MiB")
        return free
