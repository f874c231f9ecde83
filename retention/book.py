"""Retention decisions for every session: record them, then make the store's locks follow.

Blocking (the store is); the server calls it through ``asyncio.to_thread``. Who may do what is
the permission table's business and auditing is the caller's; this module keeps the ledger and
the Object Lock dates in step with the rules, and never shortens a lock unless asked to by the
privileged path (``shorten``).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from recorder.contributions import members_prefix
from recorder.manifest import MANIFEST_JSON
from recorder.store import (
    INDEX_PREFIX,
    EvidenceStore,
    LockRefused,
    ObjectLock,
    StoredVersion,
    StoreError,
    find_session,
    index_key,
    lock_date,
)

from .ledger import Ledger, LedgerError, ledger_prefix, ledger_sessions
from .schedule import Schedule, ScheduleError
from .state import Clock, QueueItem, RetentionState, fold, review_queue, system_clock

logger = logging.getLogger(__name__)


class RetentionError(ValueError):
    """A decision the rules cannot take (unknown class, event or hold); the message says why."""


class UnknownSession(LookupError):
    """Neither the store nor the caller knows when this session started."""


@dataclass(frozen=True, slots=True)
class LockReport:
    """How the store's locks were brought in line with a session's rules."""

    versions: int
    extended: int
    legal_hold: bool
    locked_beyond_rules: int  # versions locked past the disposal date: only ``shorten`` helps


class RetentionBook:
    def __init__(self, store: EvidenceStore, schedule: Schedule, clock: Clock = system_clock):
        self.store = store
        self.schedule = schedule
        self.clock = clock
        self._ledgers: dict[str, Ledger] = {}
        self._starts: dict[str, datetime] = {}
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------

    def ledger(self, session_id: str) -> Ledger:
        with self._lock:
            if session_id not in self._ledgers:
                self._ledgers[session_id] = Ledger(self.store, session_id)
            return self._ledgers[session_id]

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._ledgers.pop(session_id, None)
            self._starts.pop(session_id, None)

    def stored_start(self, session_id: str) -> datetime | None:
        """When the stored bundle began (its manifest), if it is in the store."""
        if session_id not in self._starts:
            try:
                prefix = find_session(self.store, session_id)
                manifest = json.loads(self.store.get(f"{prefix}/{MANIFEST_JSON}"))
            except (StoreError, KeyError, ValueError):
                return None
            self._starts[session_id] = datetime.fromisoformat(manifest["started_at"])
        return self._starts[session_id]

    def state(self, session_id: str, started_at: datetime | None = None) -> RetentionState:
        """``started_at`` (e.g. from the live session) when nothing is stored yet."""
        entries = self.ledger(session_id).read()
        start = None if entries else self.stored_start(session_id) or started_at
        if not entries and start is None:
            raise UnknownSession(session_id)
        return fold(session_id, entries, self.schedule, start)

    def sessions(self) -> list[str]:
        indexed = {k[len(INDEX_PREFIX) : -len(".json")] for k in self.store.list(INDEX_PREFIX)}
        return sorted(indexed | ledger_sessions(self.store))

    def states(self) -> list[RetentionState]:
        found = []
        for session_id in self.sessions():
            try:
                found.append(self.state(session_id))
            except UnknownSession:
                continue  # disposed of while we listed
            except (LedgerError, ScheduleError, StoreError) as exc:
                logger.error("retention: session %s left out of the queue: %s", session_id, exc)
        return found

    def queue(self) -> list[QueueItem]:
        return review_queue(self.states(), self.schedule, self.clock())

    def versions(self, session_id: str) -> list[StoredVersion]:
        """Every stored version that belongs to the session: bundle (every node's), index,
        the other nodes' member records and ledger."""
        found: list[StoredVersion] = []
        try:
            found += self.store.versions(find_session(self.store, session_id) + "/")
        except (StoreError, KeyError):
            pass  # nothing of the bundle uploaded yet
        key = index_key(session_id)
        found += [v for v in self.store.versions(key) if v.key == key]
        found += self.store.versions(members_prefix(session_id))
        found += self.store.versions(ledger_prefix(session_id))
        return found

    # -- deciding ------------------------------------------------------------------------

    def _new_object_lock(self, state: RetentionState, now: datetime) -> datetime:
        """A new object's retain-until: the rules' date, never in the past (stores refuse)."""
        return lock_date(max(state.lock_target(self.schedule, now), now + timedelta(days=1)))

    def open(self, session_id: str, started_at: datetime) -> RetentionState:
        """Start the ledger (once, whoever is first): unassessed from ``started_at``."""
        if not self.ledger(session_id).read():
            now = self.clock()
            fresh = fold(session_id, [], self.schedule, started_at)
            self.ledger(session_id).open(
                now, self._new_object_lock(fresh, now), started_at=started_at.isoformat()
            )
        return self.state(session_id)

    def _append(
        self, session_id: str, kind: str, started_at: datetime | None, **fields: Any
    ) -> RetentionState:
        before = self.open(session_id, self.state(session_id, started_at).started_at)
        now = self.clock()
        self.ledger(session_id).append(kind, now, self._new_object_lock(before, now), **fields)
        return self.state(session_id)

    def link(
        self,
        session_id: str,
        reference: str,
        class_name: str,
        reason: str,
        by: str,
        events: dict[str, str] | None = None,
        removed: bool = False,
        started_at: datetime | None = None,
    ) -> tuple[RetentionState, LockReport]:
        """Link to a reference with a class (restating it replaces the last statement), or
        remove the link; ``events`` are dated events the class waits for."""
        rule = self.schedule.get(class_name)
        events = dict(events or {})
        unknown = sorted(set(events) - set(rule.events))
        if unknown:
            raise RetentionError(
                f"class {class_name} does not use event(s) {', '.join(unknown)}; "
                f"it uses: {', '.join(rule.events) or 'none'}"
            )
        if removed and reference not in {
            link.reference for link in self.state(session_id, started_at).links
        }:
            raise RetentionError(f"session {session_id} is not linked to {reference}")
        state = self._append(
            session_id,
            "link",
            started_at,
            reference=reference,
            **{"class": class_name},
            events=events,
            removed=removed,
            by=by,
            reason=reason,
        )
        return state, self.align_locks(state)

    def hold(
        self, session_id: str, kind: str, reason: str, by: str, started_at: datetime | None = None
    ) -> tuple[RetentionState, LockReport, str]:
        if kind not in self.schedule.hold_kinds:
            raise RetentionError(
                f"unknown hold kind {kind}; one of: {', '.join(self.schedule.hold_kinds)}"
            )
        hold_id = f"hold-{secrets.token_hex(4)}"
        state = self._append(
            session_id, "hold", started_at, hold_id=hold_id, hold_kind=kind, by=by, reason=reason
        )
        return state, self.align_locks(state), hold_id

    def release(
        self, session_id: str, hold_id: str, reason: str, by: str
    ) -> tuple[RetentionState, LockReport]:
        if hold_id not in {h.hold_id for h in self.state(session_id).holds}:
            raise RetentionError(f"session {session_id} has no hold {hold_id} in force")
        state = self._append(session_id, "release", None, hold_id=hold_id, by=by, reason=reason)
        return state, self.align_locks(state)

    def shorten(self, session_id: str, reason: str, by: str) -> tuple[RetentionState, int]:
        """The privileged path: bring retain-until dates later than the rules down to the
        disposal date. Refused while the rules keep the session indefinitely, and by a
        store in COMPLIANCE mode (before anything is recorded)."""
        state = self.state(session_id)
        if state.disposal_at is None:
            raise RetentionError(
                f"session {session_id} is kept indefinitely ({state.governing.rule}"
                f"{', held' if state.holds else ''}): there is no earlier date to go to"
            )
        if not self.store.shortening_allowed:
            raise LockRefused(
                f"the {self.store.name} store is in COMPLIANCE mode: "
                "retain-until dates can only be extended"
            )
        until = lock_date(max(state.disposal_at, self.clock()))
        later = [v for v in self.versions(session_id) if v.retain_until and v.retain_until > until]
        state = self._append(
            session_id, "shorten", None, lock_until=until.isoformat(), by=by, reason=reason
        )
        for version in later:
            self.store.set_retain_until(version, until, shorten=True)
        return state, len(later)

    # -- the store's locks ---------------------------------------------------------------

    def align_locks(self, state: RetentionState) -> LockReport:
        """Extend retain-until dates to what the rules require and set legal hold to match
        the holds; never shortens."""
        now = self.clock()
        target = lock_date(state.lock_target(self.schedule, now))
        held = bool(state.holds)
        versions = [v for v in self.versions(state.session_id) if not v.delete_marker]
        extended = beyond = 0
        for v in versions:
            if target > now and (v.retain_until is None or v.retain_until < target):
                self.store.set_retain_until(v, target)
                extended += 1
            elif state.disposal_at and v.retain_until and v.retain_until > target:
                beyond += 1
            if v.legal_hold != held:
                self.store.set_legal_hold(v, held)
        return LockReport(len(versions), extended, held, beyond)

    def lock_for(self, session_id: str, started_at: datetime) -> ObjectLock:
        """For the spool: the lock a new object of this session gets now."""
        state = self.open(session_id, started_at)
        return ObjectLock(self._new_object_lock(state, self.clock()), bool(state.holds))
