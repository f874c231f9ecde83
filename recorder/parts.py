"""Names of a bundle's media parts: ``media-001.mkv``, ``media-002.mkv``...

A node that continues a session another node began (``Evidence.continue_recording``) tags
its parts with its node id, ``media-<node>-001.mkv``, so that no two nodes' parts of one
session ever share a name; a session recorded on one node keeps the plain names.

A number is never used twice in a folder, whatever is there: live parts, parts a crash tore
(``media-003.mkv.torn``), parts the chain names but a pruned folder no longer holds. A new
part's file is created exclusively, so even a name this process did not know was taken
(another recorder, a restore) is never opened for writing again: the next number is tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from .durable import create_exclusive

PART_FILE = re.compile(r"media-(?:[A-Za-z0-9_-]+-)?(\d+)\.mkv$")
_ANY_PART_FILE = re.compile(r"media-(?:[A-Za-z0-9_-]+-)?(\d+)\.mkv(\..*)?$")


def is_part(name: str) -> bool:
    return PART_FILE.match(name) is not None


def part_name(number: int, node: str | None = None) -> str:
    return f"media-{node}-{number:03d}.mkv" if node else f"media-{number:03d}.mkv"


def last_number(names: Iterable[str]) -> int:
    """The highest part number among these file names (torn copies and the like included)."""
    return max((int(m.group(1)) for n in names if (m := _ANY_PART_FILE.match(n))), default=0)


class PartNames:
    """Hands out new part files in one folder (blocking; the recorder's writer thread)."""

    def __init__(self, folder: Path, known: Iterable[str] = (), node: str | None = None) -> None:
        self.folder = folder
        self.node = node
        self._last = max(last_number(p.name for p in folder.iterdir()), last_number(known))

    def create(self) -> tuple[Path, BinaryIO]:
        """A new, empty part file open for writing, under a number never used here."""
        while True:
            self._last += 1
            path = self.folder / part_name(self._last, self.node)
            try:
                return path, create_exclusive(path)
            except FileExistsError:
                continue
