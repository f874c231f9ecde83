"""Where evidence bundles are kept: a local folder (embedded default) or S3 with Object Lock.

Keys are ``YYYY/MM/DD/<incident>/<session>/<name>`` (the session's start date, UTC), and
``index/<session>.json`` points from a session id to its prefix. Every method blocks: call them
from a worker thread.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
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


class StoreError(Exception):
    """The store refused or lost an object, or its copy does not match."""


class EvidenceStore(Protocol):
    name: str

    def put(self, key: str, data: bytes, sha256: str, retain_until: datetime) -> Receipt:
        """Write one object, locked until ``retain_until``; raises unless stored intact."""
        ...

    def verify(self, key: str, sha256: str, size: int) -> bool:
        """Cheap check after upload (the store's own checksum and size)."""
        ...

    def get(self, key: str) -> bytes: ...

    def list(self, prefix: str) -> list[str]: ...


def retain_until(days: int, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) + timedelta(days=days)


class LocalFolderStore:
    """A folder tree with the same keys; files are made read-only (no real lock)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise StoreError(f"bad key {key}")
        return path

    def put(self, key: str, data: bytes, sha256: str, retain_until: datetime) -> Receipt:
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
        return Receipt(key, sha256, len(data), None, retain_until.isoformat())

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
        base = self.root
        if not base.exists():
            return []
        keys = [
            p.relative_to(base).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.endswith(".tmp")
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

    def put(self, key: str, data: bytes, sha256: str, retain_until: datetime) -> Receipt:
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
            ObjectLockRetainUntilDate=retain_until,
            Metadata={"sha256": sha256},
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
