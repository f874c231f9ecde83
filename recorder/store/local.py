"""The embedded store: a local folder tree with the evidence store's keys."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .protocol import AlreadyStored, LockRefused, Receipt, StoredVersion, StoreError, lock_date

LOCKS_DIR = ".locks"


def _plain_parts(parts: list[str]) -> bool:
    """Folder names that stay inside the store: none empty (so no leading "/"), "." or ".."."""
    return all(p not in ("", ".", "..") for p in parts)


class LocalFolderStore:
    """A folder tree with the same keys; files are made read-only.

    A folder has no Object Lock: retain-until dates and legal holds are recorded in a sidecar
    (``.locks/<key>.json``) and honoured by ``delete_version``, but anyone with access to the
    folder can still remove files. Each key has one version (``version_id`` None).
    """

    name = "local"
    shortening_allowed = True

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # Checked by its parts rather than with resolve(): this runs for every file operation.
        if not _plain_parts(key.split("/")):
            raise StoreError(f"bad key {key}")
        return self.root / key

    def put(
        self, key: str, data: bytes, sha256: str, retain_until: datetime, legal_hold: bool = False
    ) -> Receipt:
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(f"{key}: data does not match its SHA-256")
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if path.exists():
            path.chmod(0o644)
        tmp.replace(path)
        path.chmod(0o444)
        if not self.verify(key, sha256, len(data)):
            raise StoreError(f"{key}: stored copy does not match")
        held = self._read_lock(key).get("retain_until")
        until = lock_date(retain_until)
        if held is not None:  # a longer copy of a growing file never shortens its lock
            until = max(until, datetime.fromisoformat(held))
        lock: dict[str, Any] = {"retain_until": until.isoformat()}
        if legal_hold:  # a hold stays on a file written again; only a release takes it off
            lock["legal_hold"] = True
        self._write_lock(key, lock)
        return Receipt(key, sha256, len(data), None, until.isoformat())

    def create(self, key: str, data: bytes, retain_until: datetime) -> Receipt:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{secrets.token_hex(6)}.tmp")
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o444)
        try:
            os.link(tmp, path)  # atomic, and fails if another writer got there first
        except FileExistsError:
            raise AlreadyStored(key) from None
        finally:
            tmp.unlink()
        self._write_lock(key, {"retain_until": lock_date(retain_until).isoformat()})
        return Receipt(key, hashlib.sha256(data).hexdigest(), len(data), None, None)

    def _lock_path(self, key: str) -> Path:
        return self._path(f"{LOCKS_DIR}/{key}.json")

    def _read_lock(self, key: str) -> dict[str, Any]:
        try:
            lock: dict[str, Any] = json.loads(self._lock_path(key).read_bytes())
        except FileNotFoundError:  # never locked, or disposed of by another node meanwhile
            return {}
        return lock

    def _write_lock(self, key: str, changes: dict[str, Any]) -> None:
        path = self._lock_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self._read_lock(key) | changes, sort_keys=True))
        tmp.replace(path)

    def versions(self, prefix: str) -> Sequence[StoredVersion]:
        found = []
        for key in self.list(prefix):
            lock = self._read_lock(key)
            until = lock.get("retain_until")
            found.append(
                StoredVersion(
                    key,
                    None,
                    datetime.fromisoformat(until) if until else None,
                    bool(lock.get("legal_hold")),
                )
            )
        return found

    def set_retain_until(
        self, version: StoredVersion, until: datetime, *, shorten: bool = False
    ) -> None:
        current = self.versions(version.key)
        if not current or current[0].key != version.key:
            raise StoreError(f"{version.key}: not in the store")
        before = current[0].retain_until
        if before is not None and until < before and not shorten:
            raise LockRefused(f"{version.key}: retained until {before.isoformat()}")
        self._write_lock(version.key, {"retain_until": lock_date(until).isoformat()})

    def set_legal_hold(self, version: StoredVersion, on: bool) -> None:
        self._write_lock(version.key, {"legal_hold": on})

    def delete_version(self, version: StoredVersion, *, bypass_governance: bool) -> None:
        # Two nodes may dispose of the same session at once: whichever comes second finds
        # the version (or its folder) gone, which is the outcome it wanted.
        path = self._path(version.key)
        found = self.versions(version.key) if path.exists() else []
        if not found:
            return
        lock = found[0]
        if lock.legal_hold:
            raise LockRefused(f"{version.key}: legal hold is on")
        if lock.retain_until and lock.retain_until > datetime.now(UTC) and not bypass_governance:
            raise LockRefused(f"{version.key}: retained until {lock.retain_until.isoformat()}")
        path.unlink(missing_ok=True)
        self._lock_path(version.key).unlink(missing_ok=True)
        for folder in (path.parent, self._lock_path(version.key).parent):
            while folder != self.root and folder.is_dir() and not any(folder.iterdir()):
                try:
                    folder.rmdir()
                except OSError:  # emptied or filled again by another node meanwhile
                    break
                folder = folder.parent

    def verify(self, key: str, sha256: str, size: int) -> bool:
        path = self._path(key)
        if not path.exists() or path.stat().st_size != size:
            return False
        return hashlib.sha256(path.read_bytes()).hexdigest() == sha256

    def get(self, key: str) -> bytes:
        path = self._path(key)
        if not path.exists():
            raise StoreError(f"{key}: not in the store")
        return path.read_bytes()

    def list(self, prefix: str) -> list[str]:
        # Only the folder the prefix names is walked: the whole tree grows with every session.
        # os.walk skips folders that vanish while it walks (another node disposing).
        base = prefix.rpartition("/")[0]
        parts = base.split("/") if base else []
        if parts[:1] == [LOCKS_DIR] or not _plain_parts(parts):
            return []  # no key can be stored there
        keys = []
        for folder, subfolders, names in os.walk(self.root / base if base else self.root):
            if Path(folder) == self.root and LOCKS_DIR in subfolders:
                subfolders.remove(LOCKS_DIR)
            here = Path(folder).relative_to(self.root).as_posix()
            keys += [
                name if here == "." else f"{here}/{name}"
                for name in names
                if not name.endswith(".tmp")
            ]
        return sorted(k for k in keys if k.startswith(prefix))
