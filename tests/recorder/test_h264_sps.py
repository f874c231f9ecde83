"""The SPS parser sizes Matroska tracks without decoding."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.synthetic import build_clip
from streamserver.h264 import h264_dimensions


@pytest.mark.parametrize(("width", "height"), [(640, 360), (320, 240), (480, 270)])
def test_dimensions_from_x264_keyframe(width: int, height: int, tmp_path: Path) -> None:
    clip = build_clip("H264", tmp_path, seconds=0.1, width=width, height=height)
    assert h264_dimensions(clip.video[0].data) == (width, height)


def test_keyframe_without_sps_is_refused() -> None:
    with pytest.raises(ValueError):
        h264_dimensions(b"\x00\x00\x00\x01\x65\x88\x84\x00")
