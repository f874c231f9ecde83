"""One writer per session folder: a live recorder, or recovery after a crash.

An exclusive ``flock`` on ``.recorder.lock`` in the folder, held until the writer is done (or
its process dies, which releases it). With a shared spool (``SCENELINK_SHARED_SPOOL``) this is
what keeps a node that rescues a dead node's folder from touching one still being recorded.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .durable import FILE_MODE

LOCK_FILE = ".recorder.lock"


class RecorderBusy(RuntimeError):
    """Another recorder (in this process or another) is writing this session's folder."""


def lock_folder(folder: Path) -> int:
    """The lock's file descriptor (close it to release); ``RecorderBusy`` if held."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RecorderBusy(f"another recorder is writing {folder}") from None
    return fd
