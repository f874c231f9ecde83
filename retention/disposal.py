"""Disposal: erase sessions whose effective disposal date has passed, leaving an erasure record.

Safe to run twice and on several nodes at once: a run first claims the session with a
"disposal" entry in its ledger, written only if no decision was recorded since the run read
the rules (so a link or hold made meanwhile wins, and none can be made after the claim), and
left alone by a run that finds a claim younger than ``RESUME_AFTER`` (its run is deleting); the
erasure record (``erasures/<session>.json``) is then written once, before anything is
deleted, with a write that succeeds only if the key is free; a run that finds a
record older than ``RESUME_AFTER`` with objects left (a run that died midway) deletes what is
left. The record names the session, the rule, the time, who and how many objects; never what
was erased (no phone number, place, incident reference or reason).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from recorder.chain import canonical
from recorder.manifest import MANIFEST_JWS
from recorder.store import (
    AlreadyStored,
    StoredVersion,
    StoreError,
    find_session,
    lock_date,
    safe_part,
)

from .book import RetentionBook, UnknownSession
from .ledger import LedgerError
from .schedule import ScheduleError
from .state import RetentionState

logger = logging.getLogger(__name__)

ERASURE_PREFIX = "erasures/"
ERASURE_FORMAT = "scenelink-erasure/1"
RESUME_AFTER = timedelta(minutes=15)
# The disposal claim's own lock: short (it is deleted with the rest), but clear of clock skew.
CLAIM_LOCK = timedelta(minutes=1)

Action = Literal["would dispose", "disposed", "completed", "skipped", "failed"]


def erasure_key(session_id: str) -> str:
    return f"{ERASURE_PREFIX}{safe_part(session_id)}.json"


@dataclass(frozen=True, slots=True)
class Outcome:
    session_id: str
    action: Action
    class_name: str
    disposal_at: datetime | None
    rule: str
    objects: int = 0
    detail: str = ""


def _manifest_sha256(book: RetentionBook, session_id: str) -> str | None:
    try:
        data = book.store.get(f"{find_session(book.store, session_id)}/{MANIFEST_JWS}")
    except (StoreError, KeyError):
        return None
    return hashlib.sha256(data).hexdigest()


def _erasure_record(
    book: RetentionBook, state: RetentionState, by: str, now: datetime, objects: int
) -> dict[str, Any]:
    return {
        "format": ERASURE_FORMAT,
        "session_id": state.session_id,
        "erased_at": now.isoformat(),
        "by": by,
        "class": state.governing.class_name,
        "rule": state.governing.rule,
        "disposal_date": state.disposal_at.isoformat() if state.disposal_at else None,
        "objects": objects,
        "manifest_sha256": _manifest_sha256(book, state.session_id),
        "ledger_head": state.head,
        "store": book.store.name,
    }


def _delete(book: RetentionBook, versions: list[StoredVersion]) -> None:
    """Bundle first, ledger last: a run that dies midway still leaves the session listed."""
    order = sorted(versions, key=lambda v: v.key.startswith(("index/", "retention/")))
    for version in order:
        # The lock date has passed by the rules' clock (checked before the claim); bypass
        # lets a drill with --now run against GOVERNANCE locks. Legal hold still refuses.
        book.store.delete_version(version, bypass_governance=True)


def _erase_leftovers(
    book: RetentionBook,
    session_id: str,
    now: datetime,
    spool_dir: Path | None,
    derivatives_dir: Path | None,
) -> Outcome | None:
    record = json.loads(book.store.get(erasure_key(session_id)))
    rule, class_name = str(record["rule"]), str(record["class"])
    versions = book.versions(session_id)
    if not versions:
        return None
    if now - datetime.fromisoformat(record["erased_at"]) < RESUME_AFTER:
        return Outcome(session_id, "skipped", class_name, None, rule, 0, "another run erasing")
    _delete(book, versions)
    _remove_spool(spool_dir, session_id)
    _remove_spool(derivatives_dir, session_id)
    book.forget(session_id)
    return Outcome(session_id, "completed", class_name, None, rule, len(versions))


def _remove_spool(root: Path | None, session_id: str) -> None:
    """The session's folder on this node: its spool, or its playback working copies
    (``recorder.workingcopy``), which must not outlive the evidence they copy."""
    folder = root / session_id if root else None
    if folder is not None and folder.is_dir() and folder.parent == root:
        shutil.rmtree(folder)


def dispose_one(
    book: RetentionBook,
    session_id: str,
    *,
    execute: bool,
    by: str,
    spool_dir: Path | None,
    derivatives_dir: Path | None = None,
) -> Outcome | None:
    """None when the session is not due; otherwise what was (or would be) done."""
    now = book.clock()
    if book.store.list(erasure_key(session_id)):
        if not execute:
            return None
        return _erase_leftovers(book, session_id, now, spool_dir, derivatives_dir)
    try:
        state = book.state(session_id)
    except UnknownSession:
        return None
    if state.disposal_at is None or state.disposal_at > now:
        if execute:
            book.align_locks(state)  # keeps indefinite locks ahead of the clock
        return None
    g = state.governing
    versions = book.versions(session_id)
    live = [v for v in versions if not v.delete_marker]
    locked = [v.retain_until for v in live if v.retain_until and v.retain_until > now]
    skip = (
        "legal hold on in the store"  # also one set outside SceneLink: respected, never lifted
        if any(v.legal_hold for v in live)
        else f"locked in the store until {max(locked).isoformat()} (an admin may shorten)"
        if locked
        else None
    )
    if skip is not None:
        return Outcome(session_id, "skipped", g.class_name, state.disposal_at, g.rule, 0, skip)
    if not execute:
        return Outcome(
            session_id, "would dispose", g.class_name, state.disposal_at, g.rule, len(versions)
        )
    if state.claimed_at is not None and now - state.claimed_at < RESUME_AFTER:
        # Another run claimed it after this one listed the sessions: it is deleting now.
        # A claim older than that is a run that died before its erasure record: go on.
        detail = "another run disposing"
        return Outcome(session_id, "skipped", g.class_name, state.disposal_at, g.rule, 0, detail)
    # Claim the session in its own ledger, at the number after the entries the rules were
    # read from: if any decision (a link, a hold) or another run got there first, the claim
    # fails and the session is left for the next run; once it is in, no decision can follow.
    try:
        claim = book.ledger(session_id).append_after(
            state.head, "disposal", now, lock_date(now + CLAIM_LOCK), by=by, rule=g.rule
        )
    except AlreadyStored:
        return None
    state = replace(state, head=str(claim["hash"]))
    versions = book.versions(session_id)
    record = _erasure_record(book, state, by, now, len(versions))
    try:
        book.store.create(
            erasure_key(session_id), canonical(record), book.schedule.erasure_record_lock.after(now)
        )
    except AlreadyStored:
        pass  # a run that claimed it earlier died after writing the record
    _delete(book, versions)
    _remove_spool(spool_dir, session_id)
    _remove_spool(derivatives_dir, session_id)
    book.forget(session_id)
    logger.info("retention: disposed of session %s (%s)", session_id, g.rule)
    return Outcome(session_id, "disposed", g.class_name, state.disposal_at, g.rule, len(versions))


def run(
    book: RetentionBook,
    *,
    execute: bool,
    by: str,
    spool_dir: Path | None = None,
    derivatives_dir: Path | None = None,
) -> list[Outcome]:
    """Every due session: disposed of with ``execute``, else listed (a dry run)."""
    outcomes = []
    for session_id in book.sessions():
        try:
            outcome = dispose_one(
                book,
                session_id,
                execute=execute,
                by=by,
                spool_dir=spool_dir,
                derivatives_dir=derivatives_dir,
            )
        except (StoreError, LedgerError, ScheduleError) as exc:
            # One session the run cannot settle must not stop every other disposal.
            logger.error("retention: session %s skipped: %s", session_id, exc)
            outcome = Outcome(session_id, "failed", "?", None, "-", detail=str(exc))
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes
