"""One install() for every aiortc/aioice patch, refusing versions it was not written for."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from streamserver import patches

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_pins_match_pyproject() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pinned = {}
    for spec in dependencies:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][^,;\s]*)", spec)
        if match:
            pinned[match[1]] = match[2]
    assert {name: pinned.get(name) for name in patches.PINNED} == patches.PINNED


def test_installed_versions_pass() -> None:
    patches.check_versions()


def test_another_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = metadata.version

    def version(name: str) -> str:
        return "0.14.0" if name == "aioice" else real(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(
        patches.UnsupportedVersionError, match=r"aioice 0\.14\.0 \(needs 0\.13\.0\)"
    ):
        patches.check_versions()
    monkeypatch.setattr(patches, "_checked", False)
    with pytest.raises(patches.UnsupportedVersionError):
        patches.install()


def test_a_missing_package_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def version(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", version)
    with pytest.raises(patches.UnsupportedVersionError, match="av not installed"):
        patches.check_versions()
