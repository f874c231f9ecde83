"""Where evidence bundles are kept: a local folder (embedded default) or S3 with Object Lock.

``protocol`` says what a store is (``EvidenceStore``, receipts, versions, locks, errors, the key
scheme), ``local`` and ``s3`` are the two stores, and ``open_store`` picks one from the settings.
"""

from __future__ import annotations

from pathlib import Path

from ..layout import DataLayout
from .local import LOCKS_DIR, LocalFolderStore
from .protocol import (
    INDEX_PREFIX,
    AlreadyStored,
    EvidenceStore,
    LockMode,
    LockRefused,
    ObjectLock,
    Receipt,
    StoredVersion,
    StoreError,
    find_session,
    index_key,
    lock_date,
    retain_until,
    safe_part,
    session_prefix,
)
from .s3 import S3ObjectLockStore

__all__ = [
    "INDEX_PREFIX",
    "LOCKS_DIR",
    "AlreadyStored",
    "EvidenceStore",
    "LocalFolderStore",
    "LockMode",
    "LockRefused",
    "ObjectLock",
    "Receipt",
    "S3ObjectLockStore",
    "StoreError",
    "StoredVersion",
    "find_session",
    "index_key",
    "lock_date",
    "open_store",
    "retain_until",
    "safe_part",
    "session_prefix",
]


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
    return LocalFolderStore(DataLayout(data_dir).store_dir)
