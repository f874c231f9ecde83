"""Files kept in a bundle beside the media parts: originals and their derivatives.

An original is a file the caller sent (a photo, an earlier video, a still), kept byte for byte
as ``original-NNN.<ext>``; a derivative (``derived-NNN.jpg``: a view thumbnail, a handler's
snapshot of the live picture) is a separate file carrying its master's name and SHA-256, so
the original is never touched. Both are created exclusively under a number never used in the
folder, fsynced, and chained as their own entry kinds (``original``, ``derivative``), so the
signed manifest lists them and ``verify`` checks their bytes. Blocking: the recorder's writer
thread calls these.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import BinaryIO, NamedTuple

from .durable import create_exclusive

ORIGINAL = "original"
DERIVED = "derived"
KEPT_FILE = re.compile(r"(original|derived)-(\d+)\.[a-z0-9]+$")
COPY_BLOCK = 1 << 20


class KeptFile(NamedTuple):
    name: str
    sha256: str


class OriginalMismatch(ValueError):
    """The staged bytes are not the ones the upload hashed: nothing was kept."""


def _create(folder: Path, stem: str, ext: str) -> tuple[Path, BinaryIO]:
    """A new file ``<stem>-NNN.<ext>`` under a number no kept file in the folder has used."""
    used = [int(m.group(2)) for p in folder.iterdir() if (m := KEPT_FILE.match(p.name))]
    number = max(used, default=0)
    while True:
        number += 1
        path = folder / f"{stem}-{number:03d}.{ext}"
        try:
            return path, create_exclusive(path)
        except FileExistsError:
            continue


def copy_original(folder: Path, source: Path, ext: str, sha256: str) -> Path:
    """Copy ``source`` into the bundle as a new original, checking it hashes to ``sha256``
    (``OriginalMismatch`` otherwise, and nothing is left behind)."""
    path, out = _create(folder, ORIGINAL, ext)
    digest = hashlib.sha256()
    try:
        with out, source.open("rb") as src:
            while block := src.read(COPY_BLOCK):
                digest.update(block)
                out.write(block)
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise OriginalMismatch(f"{source.name}: bytes changed after upload")
    except BaseException:
        path.unlink(missing_ok=True)  # never chained: not yet evidence
        raise
    return path


def write_derivative(folder: Path, data: bytes, ext: str = "jpg") -> Path:
    """A new derivative file holding ``data``."""
    path, out = _create(folder, DERIVED, ext)
    try:
        with out:
            out.write(data)
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
