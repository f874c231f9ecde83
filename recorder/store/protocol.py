"""What an evidence store is: the protocol every store implements, and the key scheme.

Keys are ``YYYY/MM/DD/<incident>/<session>/<name>`` (the session's start date, UTC), and
``index/<session>.json`` points from a session id to its prefix. Every method blocks: call them
from a worker thread.

Retention (``retention/``) changes only lock metadata and writes new write-once objects
(``create``); ``delete_version`` is for authorised disposal alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

LockMode = Literal["GOVERNANCE", "COMPLIANCE"]
INDEX_PREFIX = "index/"


def safe_part(text: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return cleaned[:80] or "unknown"


def session_prefix(started: datetime, incident_ref: str | None, session_id: str) -> str:
    day = started.astimezone(UTC).strftime("%Y/%m/%d")
    return f"{day}/{safe_part(incident_ref or 'no-incident')}/{safe_part(session_id)}"


def index_key(session_id: str) -> str:
    return f"{INDEX_PREFIX}{safe_part(session_id)}.json"


@dataclass(frozen=True, slots=True)
class Receipt:
    key: str
    sha256: str
    size: int
    version_id: str | None
    retain_until: str | None


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One version of one object and its lock as the store reports it."""

    key: str
    version_id: str | None
    retain_until: datetime | None
    legal_hold: bool
    delete_marker: bool = False


@dataclass(frozen=True, slots=True)
class ObjectLock:
    """The lock a new object is written with: the rules' date, and legal hold while held."""

    retain_until: datetime
    legal_hold: bool = False


class StoreError(Exception):
    """The store refused or lost an object, or its copy does not match."""


class AlreadyStored(StoreError):
    """A write-once object exists already (another node wrote it first)."""


class LockRefused(StoreError):
    """The store's lock mode forbids the change (a COMPLIANCE date cannot be shortened)."""


class EvidenceStore(Protocol):
    name: str

    @property
    def shortening_allowed(self) -> bool:
        """False where the lock mode forbids earlier retain-until dates (COMPLIANCE)."""
        ...

    def put(
        self, key: str, data: bytes, sha256: str, retain_until: datetime, legal_hold: bool = False
    ) -> Receipt:
        """Write one object, locked until ``retain_until`` (and held); raises unless intact."""
        ...

    def verify(self, key: str, sha256: str, size: int) -> bool:
        """Cheap check after upload (the store's own checksum and size)."""
        ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str) -> list[str]: ...

    def create(self, key: str, data: bytes, retain_until: datetime) -> Receipt:
        """Write a new object only if ``key`` is free; raises ``AlreadyStored`` otherwise."""
        ...

    def versions(self, prefix: str) -> Sequence[StoredVersion]:
        """Every version under ``prefix`` (delete markers too) with its lock."""
        ...

    def set_retain_until(
        self, version: StoredVersion, until: datetime, *, shorten: bool = False
    ) -> None:
        """Move a version's retain-until date; an earlier date needs ``shorten``."""
        ...

    def set_legal_hold(self, version: StoredVersion, on: bool) -> None: ...

    def delete_version(self, version: StoredVersion, *, bypass_governance: bool) -> None:
        """Remove one version for good (authorised disposal only); already gone is fine."""
        ...


def lock_date(when: datetime) -> datetime:
    """Whole seconds, rounded up: stores keep retain-until dates to the second."""
    whole = when.replace(microsecond=0)
    return whole if whole == when else whole + timedelta(seconds=1)


def retain_until(days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) + timedelta(days=days)


def find_session(store: EvidenceStore, session_id: str) -> str:
    """The key prefix of a session's bundle, from its index object."""
    record: dict[str, Any] = json.loads(store.get(index_key(session_id)))
    return str(record["prefix"])
