"""Shared fixtures: cached synthetic clips (encoded once per test run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamserver.synthetic import Clip, build_clip


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="session")
def h264_clip(clip_dir: Path) -> Clip:
    return build_clip("H264", clip_dir)


@pytest.fixture(scope="session")
def vp8_clip(clip_dir: Path) -> Clip:
    return build_clip("VP8", clip_dir)
