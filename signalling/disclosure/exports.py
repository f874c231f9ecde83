"""Disclosure exports run in the background, so a large one shows progress instead of a
hung request. Jobs live on the node that builds them. A package is a copy of evidence outside
the store (retention cannot see it), so it is kept only for a day, and none survive a restart."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.catalogue import CatalogueEntry
from recorder.evidence import Evidence
from recorder.export import ExportRequest, build_package
from signalling.calls.sessions import utcnow

logger = logging.getLogger(__name__)
ExportState = Literal["running", "done", "failed"]
KEEP_PACKAGES = timedelta(days=1)


class ExportJson(TypedDict):
    """An export job as the API shows it (and as the OpenAPI document describes it)."""

    export_id: str
    state: ExportState
    recipient: str
    purpose: str
    requested_by: str
    requested_at: str
    session_ids: list[str]
    done_bytes: int
    total_bytes: int
    error: str | None
    download_url: str | None  # once the package is built


@dataclass(slots=True)
class ExportJob:
    request: ExportRequest
    session_ids: list[str]
    path: Path
    state: ExportState = "running"
    done_bytes: int = 0
    total_bytes: int = 0
    error: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def view(self) -> ExportJson:
        return {
            "export_id": self.request.export_id,
            "state": self.state,
            "recipient": self.request.recipient,
            "purpose": self.request.purpose,
            "requested_by": self.request.requested_by,
            "requested_at": self.request.requested_at.isoformat(),
            "session_ids": self.session_ids,
            "done_bytes": self.done_bytes,
            "total_bytes": self.total_bytes,
            "error": self.error,
            "download_url": f"/api/exports/{self.request.export_id}/download"
            if self.state == "done"
            else None,
        }


class ExportJobs:
    def __init__(
        self,
        evidence: Evidence,
        folder: Path,
        on_ready: Callable[[ExportJob], None] | None = None,
    ) -> None:
        self.evidence = evidence
        self.folder = folder
        self.on_ready = on_ready  # told of each package built (the event webhook)
        self._jobs: dict[str, ExportJob] = {}
        for leftover in folder.glob("scenelink-export-*") if folder.is_dir() else []:
            leftover.unlink()  # from before a restart: nobody can ask for them any more

    def _forget_old(self) -> None:
        cutoff = utcnow() - KEEP_PACKAGES
        for export_id, job in list(self._jobs.items()):
            if job.state != "running" and job.request.requested_at < cutoff:
                job.path.unlink(missing_ok=True)
                del self._jobs[export_id]

    def start(
        self,
        requested_by: str,
        recipient: str,
        purpose: str,
        entries: Sequence[CatalogueEntry],
        audit: Mapping[str, Sequence[Mapping[str, Any]]],
        derivatives: Sequence[Path] = (),
    ) -> ExportJob:
        """``derivatives``: folders of finished redacted copies or clips to carry along."""
        self._forget_old()
        export_id = secrets.token_hex(8)
        request = ExportRequest(export_id, requested_by, recipient, purpose, utcnow())
        self.folder.mkdir(parents=True, exist_ok=True)
        job = ExportJob(
            request,
            [e.session_id for e in entries],
            self.folder / f"scenelink-export-{export_id}.zip",
            total_bytes=sum(s.bytes for e in entries for s in e.segments),
        )
        self._jobs[export_id] = job
        job.task = asyncio.ensure_future(self._run(job, entries, audit, derivatives))
        return job

    def get(self, export_id: str) -> ExportJob:
        """Raises KeyError for an unknown id."""
        return self._jobs[export_id]

    async def _run(
        self,
        job: ExportJob,
        entries: Sequence[CatalogueEntry],
        audit: Mapping[str, Sequence[Mapping[str, Any]]],
        derivatives: Sequence[Path],
    ) -> None:
        def progress(done: int, total: int) -> None:
            job.done_bytes, job.total_bytes = done, total

        try:
            await asyncio.to_thread(
                build_package,
                self.evidence.store,
                self.evidence.signer,
                job.request,
                entries,
                audit,
                job.path,
                progress,
                derivatives,
            )
        except Exception as exc:
            logger.exception("export %s failed", job.request.export_id)
            job.state, job.error = "failed", str(exc) or type(exc).__name__
            return
        job.state = "done"
        if self.on_ready is not None:
            self.on_ready(job)

    async def close(self) -> None:
        for job in self._jobs.values():
            if job.task is not None and not job.task.done():
                job.task.cancel()
