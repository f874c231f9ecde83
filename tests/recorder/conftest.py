"""Cached synthetic clips for recorder tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamserver.synthetic import Clip, build_clip


@pytest.fixture(scope="session")
def rec_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rec-clips")


@pytest.fixture(scope="session")
def clips(rec_clip_dir: Path) -> dict[str, Clip]:
    return {codec: build_clip(codec, rec_clip_dir) for codec in ("H264", "VP8")}
