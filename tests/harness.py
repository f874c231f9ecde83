"""Real services for tests, started here on free ports and stopped afterwards (never the
machine's own Redis or coturn)."""

from __future__ import annotations

import errno
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (a server that numbers its listeners
    from a base). Chosen below the kernel's ephemeral range: ``free_port()``'s neighbour may
    be any outgoing connection's local port, and a listener cannot take it until that ends."""
    low = int(EPHEMERAL_RANGE.read_text().split()[0]) if EPHEMERAL_RANGE.exists() else 32768
    for _ in range(200):
        base = secrets.randbelow(low - 10_000 - count) + 10_000
        socks = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(socks):
                sock.bind(("127.0.0.1", base + offset))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        return base
    raise RuntimeError(f"no {count} consecutive free ports below {low}")


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port}")


@contextmanager
def running(
    command: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for_port(port, process)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def redis_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """``port``: a stopped one's again (a test that takes Redis away and brings it back)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (the README's test command installs it)")
    port = port or free_port()
    command = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(folder),
    ]
    with running(command, port, folder / "redis.log"):
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def moto_server(folder: Path, port: int | None = None) -> Iterator[str]:
    """moto's server: every AWS API it mocks (S3 with Object Lock, SNS)."""
    port = port or free_port()
    binary = str(Path(sys.executable).parent / "moto_server")
    with running([binary, "-p", str(port)], port, folder / "moto.log"):
        yield f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class TurnServer:
    """A coturn of the tests' own on loopback, checking TURN REST credentials."""

    port: int
    secret: str
    log: Path
    pid: int  # the turnserver process: a test may freeze it (SIGSTOP) to drop the network

    @property
    def urls(self) -> list[str]:
        return [
            f"turn:127.0.0.1:{self.port}?transport=udp",
            f"turn:127.0.0.1:{self.port}?transport=tcp",
        ]


@contextmanager
def turn_server(folder: Path) -> Iterator[TurnServer]:
    """Debian's coturn on 127.0.0.1 only (listening and relaying), with a fresh shared secret
    (``use-auth-secret``), no TLS or DTLS, no CLI, relay ports from a free range, its log in
    ``folder``."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise RuntimeError("coturn is not installed (the README's test command installs it)")
    port = free_port()
    relay_from = free_port()
    secret = secrets.token_urlsafe(24)
    log = folder / "turnserver.log"
    command = [
        binary,
        "-n",  # no configuration file: only what is said here
        "--listening-ip=127.0.0.1",
        f"--listening-port={port}",
        "--relay-ip=127.0.0.1",
        f"--min-port={relay_from}",
        f"--max-port={relay_from + 50}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        "--realm=scenelink.test",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-software-attribute",
        "--verbose",
        "--simple-log",
        f"--log-file={log}",
        f"--pidfile={folder / 'turnserver.pid'}",
        f"--userdb={folder / 'turndb'}",
    ]
    with running(command, port, folder / "turnserver.out") as process:
        yield TurnServer(port, secret, log, process.pid)


@contextmanager
def small_tmpfs(folder: Path, size_mb: int) -> Iterator[Path | str]:
    """A tmpfs of ``size_mb`` mounted at ``folder`` (root only): yields the folder, or the
    reason it could not be mounted."""
    folder.mkdir(parents=True, exist_ok=True)
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        yield f"cannot mount a tmpfs here (needs root): {made.stderr.strip()}"
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill_disk(folder: Path, leave: int) -> Path:
    """Take every free byte of the file system under ``folder`` but ``leave``."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as f:
        for block in (256 * 1024, 512):
            try:
                while True:
                    f.write(b"\0" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        f.truncate(max(0, f.tell() - leave))
    return filler
