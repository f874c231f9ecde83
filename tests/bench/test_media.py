"""bench.media's comparison of the C and the Python per-packet path."""

from __future__ import annotations

from pathlib import Path

from bench.media import Row, first_recorded, placed, sample_differences
from bench.synthetic import Clip, ClipPacket


def row(path: str, frames: list[bytes], clip: Clip) -> Row:
    sample, stray = placed(frames, clip)
    return Row(path, 1, 0, 1.0, 1.0, 1.0, None, None, 0, 0, 0, {}, None, sample=sample, stray=stray)


def test_frames_are_compared_place_by_place_in_the_clip() -> None:
    clip = Clip(
        "H264", 2, 2, 30, [ClipPacket(b"\x00\x00\x01" + bytes([i]), i, False) for i in range(5)], []
    )
    frames = [p.data for p in clip.video]
    native = row("scenelink", frames, clip)
    assert sample_differences(native, row("python", frames, clip)) == (5, 0)
    # A frame lost in one run is left out; the later ones still line up.
    assert sample_differences(native, row("python", frames[:1] + frames[2:], clip)) == (4, 0)
    # The recorder's 4-byte start code is the same frame in the clip, but not the same bytes.
    longer = [b"\x00" + frames[0], *frames[1:]]
    assert sample_differences(native, row("python", longer, clip)) == (5, 1)
    # A frame that is no frame of the clip differs.
    assert sample_differences(native, row("python", [b"junk", *frames], clip)) == (6, 1)


def test_first_recorded_without_recordings_is_empty(tmp_path: Path) -> None:
    assert first_recorded(tmp_path) == []
