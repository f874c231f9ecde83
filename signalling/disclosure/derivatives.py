"""Redacted copies and clips made for disclosure, as background jobs.

Rendering is CPU-heavy (decode, blur, encode), so it runs in a worker pool of
``SCENELINK_REDACTION_WORKERS`` threads (PyAV and OpenCV release the GIL), never on the event
loop; face proposals share the pool, so they queue behind renders rather than add to them.
A job reports its progress, can be cancelled (the worker stops at the next frame and removes
what it wrote), and belongs to whoever asked for it. Like export packages, derivatives are
copies outside the evidence store: they live on the node that made them, in the exports
folder, for a day (none survive a restart); a disclosure package carries them on.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, TypeVar

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.catalogue import CatalogueEntry
from recorder.clips import make_clip
from recorder.derivatives import (
    LOG_FILE,
    Cancelled,
    DerivativeKind,
    DerivativeLog,
    DerivativeRequest,
    MasterPart,
    OutputRef,
    Progress,
    master_parts,
)
from recorder.durable import make_folder
from recorder.evidence import Evidence
from recorder.redaction import Plan, Track, propose_faces, render_redaction
from signalling.calls.sessions import utcnow

logger = logging.getLogger(__name__)
DerivativeState = Literal["queued", "running", "done", "failed", "cancelled"]
KEEP_DERIVATIVES = timedelta(days=1)
FOLDER_PREFIX = "derivative-"
T = TypeVar("T")


class DerivativeJson(TypedDict):
    """A redaction or clip job as the API shows it (and as the OpenAPI document describes it)."""

    derivative_id: str
    kind: DerivativeKind
    session_id: str
    state: DerivativeState
    progress: float  # 0..1
    requested_by: str
    requested_at: str
    reason: str
    start_s: float
    end_s: float
    error: str | None
    files: list[OutputRef]  # once done: each file with its SHA-256
    log_url: str | None  # once done: the derivative log (masters' hashes, what was hidden)


@dataclass(slots=True)
class DerivativeJob:
    request: DerivativeRequest
    kind: DerivativeKind
    start_s: float
    end_s: float
    folder: Path
    requested_at: datetime
    state: DerivativeState = "queued"
    progress: float = 0.0
    error: str | None = None
    log: DerivativeLog | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def derivative_id(self) -> str:
        return self.request.derivative_id

    def file(self, name: str) -> tuple[Path, OutputRef | None]:
        """A finished job's output (with its entry in the log) or its log; KeyError else."""
        if self.log is None:
            raise KeyError(name)
        if name == LOG_FILE:
            return self.folder / LOG_FILE, None
        for output in self.log["outputs"]:
            if output["name"] == name:
                return self.folder / name, output
        raise KeyError(name)

    def view(self) -> DerivativeJson:
        base = f"/api/derivatives/{self.derivative_id}/files"
        return {
            "derivative_id": self.derivative_id,
            "kind": self.kind,
            "session_id": self.request.session_id,
            "state": self.state,
            "progress": round(self.progress, 3),
            "requested_by": self.request.made_by,
            "requested_at": self.request.made_at,
            "reason": self.request.reason,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "error": self.error,
            "files": self.log["outputs"] if self.log else [],
            "log_url": f"{base}/{LOG_FILE}" if self.log else None,
        }


class DerivativeJobs:
    def __init__(self, evidence: Evidence, folder: Path, workers: int) -> None:
        self.evidence = evidence
        self.folder = folder
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redaction")
        self._jobs: dict[str, DerivativeJob] = {}
        for leftover in folder.glob(f"{FOLDER_PREFIX}*") if folder.is_dir() else []:
            shutil.rmtree(leftover, ignore_errors=True)  # from before a restart

    async def _in_pool(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def _parts(self, entry: CatalogueEntry, start_s: float, end_s: float) -> list[MasterPart]:
        catalogue = self.evidence.catalogue
        return master_parts(
            entry.segments, start_s, end_s, lambda name: catalogue.media(entry.session_id, name)
        )

    async def propose_faces(
        self, entry: CatalogueEntry, start_s: float, end_s: float, every_s: float
    ) -> list[Track]:
        return await self._in_pool(
            lambda: propose_faces(self._parts(entry, start_s, end_s), start_s, end_s, every_s)
        )

    def _forget_old(self) -> None:
        cutoff = utcnow() - KEEP_DERIVATIVES
        for derivative_id, job in list(self._jobs.items()):
            if job.state not in ("queued", "running") and job.requested_at < cutoff:
                shutil.rmtree(job.folder, ignore_errors=True)
                del self._jobs[derivative_id]

    def _new_job(
        self, kind: DerivativeKind, made_by: str, entry: CatalogueEntry, reason: str, span: Plan
    ) -> DerivativeJob:
        self._forget_old()
        derivative_id = secrets.token_hex(8)
        now = utcnow()
        request = DerivativeRequest(
            derivative_id, entry.session_id, made_by, now.isoformat(), reason
        )
        job = DerivativeJob(
            request,
            kind,
            span.start_s,
            span.end_s,
            self.folder / f"{FOLDER_PREFIX}{derivative_id}",
            now,
        )
        self._jobs[derivative_id] = job
        return job

    def start_redaction(
        self, made_by: str, entry: CatalogueEntry, plan: Plan, reason: str
    ) -> DerivativeJob:
        job = self._new_job("redaction", made_by, entry, reason, plan)
        job.task = asyncio.ensure_future(
            self._run(
                job,
                entry,
                lambda parts, progress: render_redaction(
                    job.request, parts, plan, job.folder, progress, job.cancel
                ),
            )
        )
        return job

    def start_clip(
        self, made_by: str, entry: CatalogueEntry, start_s: float, end_s: float, reason: str
    ) -> DerivativeJob:
        job = self._new_job("clip", made_by, entry, reason, Plan(start_s, end_s, (), ()))
        job.task = asyncio.ensure_future(
            self._run(
                job,
                entry,
                lambda parts, progress: make_clip(
                    job.request, parts, start_s, end_s, job.folder, progress, job.cancel
                ),
            )
        )
        return job

    async def _run(
        self,
        job: DerivativeJob,
        entry: CatalogueEntry,
        make: Callable[[list[MasterPart], Progress], DerivativeLog],
    ) -> None:
        def progress(done: float) -> None:
            job.progress = done

        def work() -> DerivativeLog:
            if job.cancel.is_set():
                raise Cancelled
            job.state = "running"
            make_folder(job.folder)
            try:
                return make(self._parts(entry, job.start_s, job.end_s), progress)
            except BaseException:
                shutil.rmtree(job.folder, ignore_errors=True)
                raise

        try:
            job.log = await self._in_pool(work)
        except (Cancelled, asyncio.CancelledError):
            job.cancel.set()
            job.state = "cancelled"
            return
        except Exception as exc:
            logger.exception("%s %s failed", job.kind, job.derivative_id)
            job.state, job.error = "failed", str(exc) or type(exc).__name__
            return
        job.state, job.progress = "done", 1.0

    def get(self, derivative_id: str) -> DerivativeJob:
        """Raises KeyError for an unknown id."""
        return self._jobs[derivative_id]

    def cancel(self, job: DerivativeJob) -> None:
        """Stop a queued or running job; the worker removes what it wrote."""
        job.cancel.set()
        if job.state == "queued":
            job.state = "cancelled"

    async def close(self) -> None:
        for job in self._jobs.values():
            job.cancel.set()
        tasks = [j.task for j in self._jobs.values() if j.task is not None and not j.task.done()]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
