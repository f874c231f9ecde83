"""bench.media's comparison of the C and the Python per-packet path."""

from __future__ import annotations

from pathlib import Path

from bench.media import Row, first_recorded, sample_differences


def row(path: str, sample: list[bytes]) -> Row:
    return Row(path, 1, 0, 1.0, 1.0, 1.0, None, None, 0, 0, 0, {}, None, sample)


def test_sample_differences_counts_frames_that_differ() -> None:
    native = row("scenelink", [b"a", b"b", b"c"])
    assert sample_differences(native, row("python", [b"a", b"b", b"c", b"d"])) == (3, 0)
    assert sample_differences(native, row("python", [b"a", b"x"])) == (2, 1)
    assert sample_differences(native, row("python", [])) == (0, 0)


def test_first_recorded_without_recordings_is_empty(tmp_path: Path) -> None:
    assert first_recorded(tmp_path) == []
