"""How evidence and audit files reach the disk: the one durability policy.

- An append-only log (chain, events, fixes, receipts, the audit trail) gains whole lines or
  nothing: each append is written, flushed and fsynced; a write that fails (a full disk) is
  cut back to where it began, and a line torn by a crash is moved aside at the next start,
  never silently dropped (``recover_tail``).
- A media part is created exclusively (``create_exclusive``): an existing evidence file is
  never opened for writing again. It is fsynced when it is closed.
- Small documents that are replaced whole (the manifest) are written to a temporary file,
  fsynced and renamed over the old one (``write_atomic``).
- Files are readable by the server's account only (0600, folders 0700).

fsync on every append costs little at these rates (a few events a second per session; the
media itself is fsynced per part, not per frame).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
FOLDER_MODE = 0o700
TORN_SUFFIX = ".torn"


def make_folder(path: Path) -> None:
    """A folder (and its parents) for evidence or audit, private to the server."""
    path.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)


def append_line(path: Path, line: bytes) -> None:
    """Append one line (``line`` ends in a newline) whole, or leave the file as it was."""
    if not line.endswith(b"\n") or b"\n" in line[:-1]:
        raise ValueError("append_line takes exactly one line")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    try:
        start = os.fstat(fd).st_size
        try:
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])
            os.fsync(fd)
        except OSError:
            _cut_back(fd, start)
            raise
    finally:
        os.close(fd)


def _cut_back(fd: int, size: int) -> None:
    """Best effort: take a partial line off again (a full disk still allows truncation)."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        pass  # then recover_tail moves it aside at the next start


def recover_tail(path: Path) -> Path | None:
    """Move bytes after the last newline (a torn append) into a side file; returns it.

    The side file is ``<name>.torn-<offset>`` (a new name each time), so what a crash left
    half-written stays available for examination and the log itself ends on a whole line.
    """
    if not path.exists():
        return None
    with path.open("r+b") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return None
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return None
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        aside = path.with_name(f"{path.name}{TORN_SUFFIX}-{keep}")
        while aside.exists():
            aside = path.with_name(f"{path.name}{TORN_SUFFIX}-{keep}-{secrets.token_hex(3)}")
        write_new(aside, data[keep:])
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    return aside


def create_exclusive(path: Path) -> BinaryIO:
    """Open a new file for writing; ``FileExistsError`` if anything has that name."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    fsync_dir(path.parent)
    return os.fdopen(fd, "wb", buffering=0)  # what the muxer flushes reaches the OS


def write_new(path: Path, data: bytes) -> None:
    """Write a whole new file once (exclusive create, fsync)."""
    with create_exclusive(path) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_atomic(path: Path, data: bytes) -> None:
    """Replace a small document whole: readers see the old or the new one, never a part."""
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        write_new(tmp, data)
        tmp.replace(path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsync_file(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def fsync_dir(path: Path) -> None:
    """Make a new, linked or renamed name in ``path`` survive a power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
