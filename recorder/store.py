"""Where evidence bundles are kept: a local folder (embedded default) or S3 with Object Lock.

Keys are ``YYYY/MM/DD/<incident>/<session>/<name>`` (the session's start date, UTC), and
``index/<session>.json`` points from a session id to its prefix. Every method blocks: call them
from a worker thread.

Retention (``retention/``) changes only lock metadata and writes new write-once objects
(``create``); ``delete_version`` is for authorised disposal alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
        path = self._lock_path(key)
        lock: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
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
        path = self._path(version.key)
        if not path.exists():
            return
        lock = self.versions(version.key)[0]
        if lock.legal_hold:
            raise LockRefused(f"{version.key}: legal hold is on")
        if lock.retain_until and lock.retain_until > datetime.now(UTC) and not bypass_governance:
            raise LockRefused(f"{version.key}: retained until {lock.retain_until.isoformat()}")
        path.unlink()
        self._lock_path(version.key).unlink(missing_ok=True)
        for folder in (path.parent, self._lock_path(version.key).parent):
            while folder != self.root and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
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


class S3ObjectLockStore:
    """S3-compatible object storage; every object is written with an Object Lock retention."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        lock_mode: LockMode = "GOVERNANCE",
        client: Any = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 20.0,
    ) -> None:
        self.bucket = bucket
        self.lock_mode: LockMode = lock_mode
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "s3",
                endpoint_url=endpoint_url,
                region_name=region or "us-east-1",
                config=Config(
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    retries={"max_attempts": 1, "mode": "standard"},  # the spool backs off
                ),
            )
        self.client = client

    @property
    def shortening_allowed(self) -> bool:
        return self.lock_mode == "GOVERNANCE"

    def ensure_bucket(self, create: bool = True) -> None:
        """Check (or create) the bucket with Object Lock enabled; raises if it has none."""
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            if not create:
                raise
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
        try:
            conf = self.client.get_object_lock_configuration(Bucket=self.bucket)
        except ClientError as exc:
            raise StoreError(f"bucket {self.bucket} has no Object Lock: {exc}") from exc
        if conf.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") != "Enabled":
            raise StoreError(f"bucket {self.bucket} has no Object Lock")

    def put(
        self, key: str, data: bytes, sha256: str, retain_until: datetime, legal_hold: bool = False
    ) -> Receipt:
        if legal_hold:
            return self._put(key, data, sha256, retain_until, ObjectLockLegalHoldStatus="ON")
        return self._put(key, data, sha256, retain_until)

    def create(self, key: str, data: bytes, retain_until: datetime) -> Receipt:
        from botocore.exceptions import ClientError

        try:
            return self._put(
                key, data, hashlib.sha256(data).hexdigest(), retain_until, IfNoneMatch="*"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise AlreadyStored(key) from None
            raise

    def _put(
        self, key: str, data: bytes, sha256: str, retain_until: datetime, **conditions: str
    ) -> Receipt:
        digest = hashlib.sha256(data).digest()
        md5 = hashlib.md5(data).digest()
        if digest.hex() != sha256:
            raise StoreError(f"{key}: data does not match its SHA-256")
        response = self.client.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=data,
            ChecksumSHA256=base64.b64encode(digest).decode(),
            ContentMD5=base64.b64encode(md5).decode(),
            ObjectLockMode=self.lock_mode,
            ObjectLockRetainUntilDate=lock_date(retain_until),
            Metadata={"sha256": sha256},
            **conditions,
        )
        version = response.get("VersionId")
        if not self.verify(key, sha256, len(data), version, md5.hex()):
            raise StoreError(f"{key}: stored copy does not match")
        return Receipt(key, sha256, len(data), version, retain_until.isoformat())

    def verify(
        self,
        key: str,
        sha256: str,
        size: int,
        version_id: str | None = None,
        md5: str | None = None,
    ) -> bool:
        """Size, lock mode and the server's own checksum: ChecksumSHA256 where the server
        returns it, else the single-part ETag (the MD5 the server computed)."""
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "ChecksumMode": "ENABLED"}
        if version_id:
            args["VersionId"] = version_id
        try:
            head = self.client.head_object(**args)
        except ClientError:
            return False
        if head.get("ContentLength") != size or head.get("ObjectLockMode") != self.lock_mode:
            return False
        stored = head.get("ChecksumSHA256") or ""
        if stored:
            return bool(base64.b64decode(stored).hex() == sha256)
        etag = str(head.get("ETag", "")).strip('"')
        if md5 is not None and "-" not in etag:
            return etag == md5
        return bool(head.get("Metadata", {}).get("sha256") == sha256)

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            data: bytes = body.read()
        except ClientError as exc:
            raise StoreError(f"{key}: {exc}") from exc
        return data

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def versions(self, prefix: str) -> Sequence[StoredVersion]:
        """Listing gives no lock details: each version is read back with ``head_object``
        (``get_object_retention`` is missing from some servers, moto among them)."""
        from botocore.exceptions import ClientError

        found: list[StoredVersion] = []
        for page in self.client.get_paginator("list_object_versions").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            for marker in page.get("DeleteMarkers", []):
                found.append(StoredVersion(marker["Key"], marker["VersionId"], None, False, True))
            for v in page.get("Versions", []):
                try:
                    head = self.client.head_object(
                        Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"]
                    )
                except ClientError as exc:
                    if _gone(exc):
                        continue  # deleted since the listing (another node disposing of it)
                    raise StoreError(f"{v['Key']}: {exc}") from exc
                found.append(
                    StoredVersion(
                        v["Key"],
                        v["VersionId"],
                        head.get("ObjectLockRetainUntilDate"),
                        head.get("ObjectLockLegalHoldStatus") == "ON",
                    )
                )
        return sorted(found, key=lambda v: (v.key, v.version_id or ""))

    def set_retain_until(
        self, version: StoredVersion, until: datetime, *, shorten: bool = False
    ) -> None:
        if shorten and self.lock_mode == "COMPLIANCE":
            raise LockRefused(
                f"{version.key}: COMPLIANCE mode: a retain-until date can only be extended"
            )
        args: dict[str, Any] = {"BypassGovernanceRetention": True} if shorten else {}
        self.client.put_object_retention(
            Bucket=self.bucket,
            Key=version.key,
            VersionId=version.version_id,
            Retention={"Mode": self.lock_mode, "RetainUntilDate": lock_date(until)},
            **args,
        )

    def set_legal_hold(self, version: StoredVersion, on: bool) -> None:
        self.client.put_object_legal_hold(
            Bucket=self.bucket,
            Key=version.key,
            VersionId=version.version_id,
            LegalHold={"Status": "ON" if on else "OFF"},
        )

    def delete_version(self, version: StoredVersion, *, bypass_governance: bool) -> None:
        from botocore.exceptions import ClientError

        args: dict[str, Any] = {}
        if bypass_governance and self.lock_mode == "GOVERNANCE":
            args["BypassGovernanceRetention"] = True
        try:
            self.client.delete_object(
                Bucket=self.bucket, Key=version.key, VersionId=version.version_id, **args
            )
        except ClientError as exc:
            if not _gone(exc):
                raise


def _gone(exc: Any) -> bool:
    """A botocore ClientError saying the object or version no longer exists."""
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchVersion")


def find_session(store: EvidenceStore, session_id: str) -> str:
    """The key prefix of a session's bundle, from its index object."""
    record: dict[str, Any] = json.loads(store.get(index_key(session_id)))
    return str(record["prefix"])


def open_store(
    data_dir: Path,
    *,
    s3_bucket: str | None = None,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
    lock_mode: LockMode = "GOVERNANCE",
) -> EvidenceStore:
    """S3 when a bucket is configured, else the local folder ``data_dir/evidence-store``."""
    if s3_bucket:
        store = S3ObjectLockStore(
            s3_bucket, endpoint_url=s3_endpoint_url, region=s3_region, lock_mode=lock_mode
        )
        store.ensure_bucket()
        return store
    return LocalFolderStore(data_dir / "evidence-store")
