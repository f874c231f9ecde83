"""``bench.media --workers N``: SceneLink as N worker processes (``serve --workers``), which
need a Redis of their own, and each worker's share of the load."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def redis(folder: Path) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port (nothing saved)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("--workers needs redis-server (apt-get install redis-server)")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder]
    process = subprocess.Popen([str(c) for c in command], stdout=subprocess.DEVNULL)
    try:
        wait_listening(process, port, 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()


def wait_listening(
    process: subprocess.Popen[bytes], port: int, timeout_s: float, what: str
) -> None:
    """Return once ``process`` listens on loopback ``port``; raise if it exits or takes longer."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


def workers_of(supervisor: int) -> list[int]:
    """The worker processes a ``serve --workers`` supervisor has started (their pids)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def wait_for_workers(supervisor: int, port: int, count: int, timeout_s: float = 60) -> list[int]:
    """The workers' pids once each listens on its internal port (``port`` + 1 + n)."""
    deadline = time.monotonic() + timeout_s
    for n in range(count):
        while True:
            try:
                socket.create_connection(("127.0.0.1", port + 1 + n), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker {n} did not start") from None
                time.sleep(0.1)
    return workers_of(supervisor)


def worker_sessions(data: Path) -> list[int]:
    """Sessions each worker recorded (``<data>/workers/<n>/evidence/<session>``)."""
    folders = sorted((data / "workers").iterdir(), key=lambda p: int(p.name))
    return [sum(1 for s in f.glob("evidence/*") if s.is_dir()) for f in folders]


def merged_evidence(data: Path) -> Path:
    """One folder of every worker's session folders (links), for counting what was recorded."""
    merged = data / "all-workers-evidence"
    merged.mkdir()
    for session in (data / "workers").glob("*/evidence/*"):
        if session.is_dir():
            (merged / session.name).symlink_to(session)
    return merged
