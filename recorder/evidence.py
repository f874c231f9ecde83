"""The evidence side of a running server: signing key, store, spool and fixity, started once.

On start-up, sessions a crash left open are recovered first, then every folder with anything
not yet in the store is queued, so the spool is drained before new sessions add to it.

The retention rules come from above (``retention.wiring.open_evidence``): ``Evidence`` takes a
factory that makes them from the opened store, and hands the spool their ``lock_for``. Without
one, new objects are locked for ``retention_days`` from their upload.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

from typing_extensions import TypeVar

from .catalogue import Catalogue
from .defaults import FIXITY_INTERVAL_S, LOW_SPACE_MB, RETENTION_DAYS, SEGMENT_SECONDS
from .fixity import FixityJob
from .folderlock import RecorderBusy, lock_folder
from .layout import DataLayout
from .manifest import Signer
from .nodes import check_node_id, load_or_create_node_id, publish_key
from .recording import RecordingStatus, SessionRecorder
from .recovery import recover_all
from .spool import LockRules, Spooler
from .store import EvidenceStore, LockMode, open_store
from .workingcopy import WorkingCopies

logger = logging.getLogger(__name__)

# The retention rules an Evidence was given (``retention.book.RetentionBook`` in the server).
R = TypeVar("R", bound=LockRules, default=LockRules, covariant=True)


@dataclass(frozen=True, slots=True)
class EvidenceSettings:
    data_dir: Path
    evidence_dir: Path
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    lock_mode: LockMode = "GOVERNANCE"
    retention_days: int = RETENTION_DAYS
    segment_seconds: float = SEGMENT_SECONDS
    signing_key_path: Path | None = None
    keep_local: bool = True
    fixity_interval_s: float = FIXITY_INTERVAL_S
    retention_schedule: Path | None = None  # read by retention.wiring, not here
    low_space_bytes: int = LOW_SPACE_MB * 1024 * 1024
    node_id: str | None = None  # this node in a cluster; None: made once, kept in the data dir
    # Several nodes share the store (Redis configured): every part name carries the node id,
    # so no two nodes' parts of a session can share a name, whoever records first.
    clustered: bool = False
    # A folder every node mounts, holding each node's spool as <it>/<node id>/ (then that is
    # ``evidence_dir``): another node can ``rescue`` a dead node's unfinished evidence.
    shared_spool: Path | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> EvidenceSettings:
        """From signalling's Settings (or anything with the same names)."""
        return cls(
            data_dir=Path(settings.data_dir),
            evidence_dir=Path(settings.evidence_dir),
            s3_bucket=settings.s3_bucket,
            s3_endpoint_url=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
            lock_mode=settings.object_lock_mode,
            retention_days=settings.default_retention_days,
            segment_seconds=settings.segment_seconds,
            signing_key_path=settings.signing_key_path,
            keep_local=settings.keep_local_evidence,
            fixity_interval_s=settings.fixity_interval_s,
            retention_schedule=settings.retention_schedule,
            low_space_bytes=settings.evidence_low_space_mb * 1024 * 1024,
            node_id=settings.node_id,
            clustered=settings.redis_url is not None,
            shared_spool=settings.shared_spool,
        )

    @property
    def layout(self) -> DataLayout:
        return DataLayout(self.data_dir)

    @property
    def key_path(self) -> Path:
        return self.signing_key_path or self.layout.signing_key

    def resolve_node_id(self) -> str:
        """The configured node id, else the one made once and kept in the data folder."""
        if self.node_id is not None:
            return check_node_id(self.node_id)
        return load_or_create_node_id(self.layout.node_id_file)

    def open_store(self) -> EvidenceStore:
        return open_store(
            self.data_dir,
            s3_bucket=self.s3_bucket,
            s3_endpoint_url=self.s3_endpoint_url,
            s3_region=self.s3_region,
            lock_mode=self.lock_mode,
        )


class Evidence(Generic[R]):
    """Owns the parts every session recorder shares; ``start`` before the first recorder.

    ``retention`` makes the retention rules from the store once it is open (at ``start``).
    """

    def __init__(
        self,
        settings: EvidenceSettings,
        retention: Callable[[EvidenceStore], R] | None = None,
    ) -> None:
        self.settings = settings
        self._make_retention = retention
        self._signer: Signer | None = None
        self._node_id: str | None = None
        self._store: EvidenceStore | None = None
        self._spool: Spooler | None = None
        self._fixity: FixityJob | None = None
        self._retention: R | None = None
        self._catalogue: Catalogue | None = None
        self._working_copies: WorkingCopies | None = None
        self._recorders: weakref.WeakValueDictionary[str, SessionRecorder] = (
            weakref.WeakValueDictionary()
        )

    @property
    def signer(self) -> Signer:
        if self._signer is None:
            raise RuntimeError("evidence not started")
        return self._signer

    @property
    def node_id(self) -> str:
        if self._node_id is None:
            raise RuntimeError("evidence not started")
        return self._node_id

    def trusted_jwks(self) -> dict[str, Any]:
        """This node's key and every key the nodes published in the store (blocking): the
        key set served at ``/.well-known/jwks.json`` and trusted when reading bundles."""
        return self.catalogue.keys.jwks()

    @property
    def store(self) -> EvidenceStore:
        if self._store is None:
            raise RuntimeError("evidence not started")
        return self._store

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            raise RuntimeError("evidence not started")
        return self._catalogue

    @property
    def working_copies(self) -> WorkingCopies:
        if self._working_copies is None:
            raise RuntimeError("evidence not started")
        return self._working_copies

    @property
    def retention(self) -> R:
        if self._retention is None:
            if self._make_retention is None:
                raise RuntimeError("evidence has no retention rules")
            raise RuntimeError("evidence not started")
        return self._retention

    @property
    def spool(self) -> Spooler:
        if self._spool is None:
            raise RuntimeError("evidence not started")
        return self._spool

    def _open(self) -> int:
        s = self.settings
        self._signer = Signer.load_or_create(s.key_path)
        self._node_id = s.resolve_node_id()
        self._store = s.open_store()
        publish_key(self._store, self._signer, self._node_id)
        for recovered in recover_all(s.evidence_dir, self._signer, self._node_id):
            logger.warning("recovered session %s after an unclean stop", recovered.session_id)
        if self._make_retention is not None:
            self._retention = self._make_retention(self._store)
        self._spool = self._spooler(self._node_id)
        self._spool.start()
        return self._spool.enqueue_all(s.evidence_dir)

    def _spooler(self, node_id: str) -> Spooler:
        """A spool that uploads ``node_id``'s contributions (this node's, or a dead one's)."""
        return Spooler(
            self.store,
            retention_days=self.settings.retention_days,
            keep_local=self.settings.keep_local,
            lock_for=None if self._retention is None else self._retention.lock_for,
            node_id=node_id,
        )

    async def rescue(self, node_id: str) -> list[str]:
        """With a shared spool, after ``node_id`` died (its lease expired): recover its
        unfinished sessions there (open parts salvaged, each manifest signed by this node's
        key and naming ``node_id``) and upload whatever of its evidence the store lacks, to
        where that node's own upload would have put it. Folders still locked (being recorded)
        are left alone. Returns the sessions recovered."""
        return await asyncio.to_thread(self._rescue, check_node_id(node_id))

    def _rescue(self, node_id: str) -> list[str]:
        shared = self.settings.shared_spool
        if shared is None or node_id == self.node_id or not (shared / node_id).is_dir():
            return []
        recovered = recover_all(shared / node_id, self.signer, node_id)
        spool = self._spooler(node_id)
        for folder in sorted(p for p in (shared / node_id).iterdir() if p.is_dir()):
            try:
                lock = lock_folder(folder)
            except RecorderBusy:
                continue  # its node is alive after all, or another node is rescuing it
            try:
                spool.sync(folder)
            except Exception:  # its node uploads it on its return; the others go on
                logger.exception("rescue: upload of %s from node %s failed", folder.name, node_id)
            finally:
                os.close(lock)
        for r in recovered:
            logger.warning("rescued session %s left open by node %s", r.session_id, node_id)
        return [r.session_id for r in recovered]

    async def start(self) -> None:
        queued = await asyncio.to_thread(self._open)
        if queued:
            logger.info(
                "%d session folders queued for upload to the %s store", queued, self.store.name
            )
        self._fixity = FixityJob(
            self.store,
            self.signer.jwks(),
            self.settings.layout.fixity_log,
            self.settings.fixity_interval_s,
        )
        self._fixity.start()
        self._catalogue = Catalogue(self.store, self.signer.jwks())
        self._working_copies = WorkingCopies(self.settings.layout.derivatives_dir, self._catalogue)

    def recorder(
        self,
        session_id: str,
        on_status: Callable[[RecordingStatus], None] | None = None,
        *,
        continued: bool = False,
    ) -> SessionRecorder:
        """The recorder of this node's contribution to a session (only the session's owner
        records). Its part names carry the node id in a cluster, or when ``continued`` (the
        session began on another node: ``continue_recording`` says so in the evidence)."""
        recorder = SessionRecorder(
            self.settings.evidence_dir / session_id,
            signer=self.signer,
            spool=self.spool,
            segment_seconds=self.settings.segment_seconds,
            low_space_bytes=self.settings.low_space_bytes,
            on_status=on_status,
            node_id=self.node_id,
            tag_parts=continued or self.settings.clustered,
        )
        self._recorders[session_id] = recorder
        return recorder

    def continue_recording(
        self,
        session_id: str,
        *,
        from_node: str | None,
        reason: str,
        last_seen_wall_clock: float | None = None,
        on_status: Callable[[RecordingStatus], None] | None = None,
    ) -> SessionRecorder:
        """For a session's new owner: continue the session's bundle on this node (no second
        ``session_created``), its first event ``recording_moved`` with the gap since
        ``last_seen_wall_clock`` (the old owner's last known media, Unix seconds). Then use
        it as any recorder (``attach`` the caller's media, ``append_event``, ``close``)."""
        recorder = self.recorder(session_id, on_status, continued=True)
        recorder.record_move(from_node, reason, last_seen_wall_clock)
        return recorder

    def recording_failures(self) -> list[dict[str, Any]]:
        """Sessions whose recording has failed right now, and why (``disk full``)."""
        return [
            {"session_id": session_id, "cause": r.status.cause, "since": r.status.since}
            for session_id, r in sorted(self._recorders.items())
            if r.status.state == "failed"
        ]

    def disk(self) -> dict[str, Any]:
        """Free space where evidence is written, against the warning threshold."""
        folder = self.settings.evidence_dir
        free = shutil.disk_usage(folder if folder.exists() else self.settings.data_dir).free
        threshold = self.settings.low_space_bytes
        return {"free_bytes": free, "warning_below_bytes": threshold, "low": free < threshold}

    def stats(self) -> dict[str, Any]:
        """Backlog, disk space, failing recordings and the last fixity result, for the
        console and metrics."""
        fixity = self._fixity.last if self._fixity else None
        return {
            "store": self.store.name,
            "disk": self.disk(),
            "recording_failures": self.recording_failures(),
            "spool": self.spool.stats(),
            "fixity": None
            if fixity is None
            else {k: fixity[k] for k in ("checked_at", "objects", "mismatches") if k in fixity},
        }

    async def stop(self) -> None:
        """After every recorder has closed: let the spool finish what it can, then stop."""
        if self._fixity is not None:
            await self._fixity.stop()
        if self._spool is not None:
            spool = self._spool
            await asyncio.to_thread(spool.wait_idle, 10.0)
            await asyncio.to_thread(spool.stop)
