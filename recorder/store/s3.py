"""S3-compatible object storage with Object Lock (AWS S3, Ceph RGW, MinIO, SeaweedFS)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .protocol import (
    AlreadyStored,
    LockMode,
    LockRefused,
    Receipt,
    StoredVersion,
    StoreError,
    lock_date,
)


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
