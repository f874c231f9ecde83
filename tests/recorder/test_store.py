"""The local folder store: keys stay inside it, and listing a prefix walks only its folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from recorder.store import LocalFolderStore, StoreError


def test_list_finds_keys_by_prefix_and_never_lock_sidecars(tmp_path: Path) -> None:
    store = LocalFolderStore(tmp_path / "store")
    now = datetime.now(UTC)
    for key in ("a/2026/s1/m.mkv", "a/2026/s1/n.mkv", "a/2026/s2/m.mkv", "b/x", "top"):
        store.create(key, key.encode(), now)
    assert store.list("a/2026/s1/") == ["a/2026/s1/m.mkv", "a/2026/s1/n.mkv"]
    assert store.list("a/2026/s") == ["a/2026/s1/m.mkv", "a/2026/s1/n.mkv", "a/2026/s2/m.mkv"]
    assert store.list("a/2026/s1/m") == ["a/2026/s1/m.mkv"]
    assert store.list("") == sorted(
        ["a/2026/s1/m.mkv", "a/2026/s1/n.mkv", "a/2026/s2/m.mkv", "b/x", "top"]
    )
    assert store.list("t") == ["top"]
    assert store.list("nowhere/") == []
    assert store.list(".locks/") == [] and store.list("../") == []
    assert (tmp_path / "store" / ".locks" / "top.json").exists()


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", "a//b", "./a"])
def test_keys_outside_the_folder_are_refused(tmp_path: Path, key: str) -> None:
    store = LocalFolderStore(tmp_path / "store")
    with pytest.raises(StoreError, match="bad key"):
        store.create(key, b"x", datetime.now(UTC))
    with pytest.raises(StoreError, match="bad key"):
        store.get(key)
    assert not (tmp_path / "outside").exists()
