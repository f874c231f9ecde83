from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.synthetic import Clip, build_clip
from recorder.store import EvidenceStore, LocalFolderStore, LockMode, S3ObjectLockStore
from tests.harness import moto_server as moto
from tests.harness import redis_server, small_tmpfs


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server of the tests' own, on a free port."""
    folder: Path = tmp_path_factory.mktemp("redis")
    with redis_server(folder) as url:
        yield url


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB disk of the test's own (a tmpfs; root only), for full-disk drills."""
    with small_tmpfs(tmp_path / "disk", 24) as mounted:
        if isinstance(mounted, str):
            pytest.skip(mounted)
        yield mounted


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's server of the tests' own, on a free port: every AWS API it mocks (S3, SNS)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with moto(tmp_path_factory.mktemp("moto")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server(moto_server: str) -> str:
    """The evidence store's S3 (Object Lock capable) is moto's."""
    return moto_server


@pytest.fixture(scope="session")
def rec_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rec-clips")


@pytest.fixture(scope="session")
def clips(rec_clip_dir: Path) -> dict[str, Clip]:
    """Short synthetic H.264 and VP8 clips with Opus, encoded once per run."""
    return {codec: build_clip(codec, rec_clip_dir) for codec in ("H264", "VP8")}


def s3_bucket(url: str, mode: LockMode = "GOVERNANCE") -> S3ObjectLockStore:
    """A fresh bucket with Object Lock on the tests' S3 server."""
    bucket = S3ObjectLockStore(f"t-{secrets.token_hex(6)}", endpoint_url=url, lock_mode=mode)
    bucket.ensure_bucket()
    return bucket


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EvidenceStore:
    """Each evidence store: the local folder, and a bucket with Object Lock."""
    if request.param == "local":
        return LocalFolderStore(tmp_path / "store")
    return s3_bucket(request.getfixturevalue("s3_server"))
