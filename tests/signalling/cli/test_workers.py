"""`scenelink serve --workers 2` with a real redis-server: two workers on one public port,
each registered under its own node id with its own internal address; a worker that dies is
started again (the same node id: its own data folder); SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.cluster import workers_of
from signalling.cli.workers import first_run_operators, worker_environment
from signalling.config import Settings
from tests.harness import free_port, free_ports, running


def registered(url: str) -> dict[str, Any]:
    """Each registered worker's record, by node id."""
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        values = [client.get(k) for k in client.scan_iter(match="scenelink:worker:*")]
        return {w["id"]: w for w in (json.loads(str(v)) for v in values if v is not None)}
    finally:
        client.close()


def listening(base: str) -> bool:
    try:
        socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=0.2).close()
    except OSError:
        return False
    return True


def wait_until(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_a_supervisor_keeps_its_workers(tmp_path: Path, redis_url: str) -> None:
    url = redis_url.rsplit("/", 1)[0] + "/6"  # a database of this test's own
    redis.Redis.from_url(url).flushdb()
    port = free_port()
    env = os.environ | {
        "REDIS_URL": url,
        "SCENELINK_HOST": "127.0.0.1",
        "SCENELINK_PORT": str(port),
        "SCENELINK_INTERNAL_PORT": str(free_ports(2)),  # worker i listens on the base + i
        "SCENELINK_DATA_DIR": str(tmp_path / "data"),
        "SCENELINK_CLUSTER_LEASE_S": "2",
    }
    command = [sys.executable, "-m", "signalling.cli.main", "serve", "--workers", "2"]
    with running(command, port, tmp_path / "serve.log", env=env) as supervisor:
        wait_until(lambda: len(registered(url)) == 2)
        workers = registered(url)
        assert len({w["url"] for w in workers.values()}) == 2  # an internal port each
        first = workers_of(supervisor.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        wait_until(lambda: first[0] not in workers_of(supervisor.pid))
        wait_until(lambda: len(workers_of(supervisor.pid)) == 2)
        # Started again: the same node (its data folder's id) on the same internal port.
        wait_until(lambda: registered(url).keys() == workers.keys())
        wait_until(lambda: all(listening(w["url"]) for w in workers.values()))
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=60) == 0
        assert registered(url) == {}  # each worker left the registry as it stopped


def test_workers_share_the_parents_accounts(tmp_path: Path) -> None:
    """Every worker reads the parent's accounts file (``scenelink users`` edits that one), and
    with no accounts at all they share one first-run call handler, not one each."""
    settings = Settings(data_dir=tmp_path / "data")
    first = first_run_operators(settings)
    generated = json.loads(first["SCENELINK_OPERATORS"])
    assert [(a["username"], a["roles"]) for a in generated] == [("handler", ["call_handler"])]
    envs = [worker_environment(settings, i, first) for i in range(2)]
    assert {e["SCENELINK_OPERATORS"] for e in envs} == {first["SCENELINK_OPERATORS"]}
    accounts = str((tmp_path / "data" / "accounts.json").absolute())
    assert {e["SCENELINK_ACCOUNTS_FILE"] for e in envs} == {accounts}
    assert {e["SCENELINK_DATA_DIR"] for e in envs} == {
        str(tmp_path / "data" / "workers" / str(i)) for i in range(2)
    }
    worker = Settings(data_dir=Path(envs[1]["SCENELINK_DATA_DIR"]), accounts_file=Path(accounts))
    assert worker.accounts_path == Path(accounts)
    Path(accounts).write_text("[]")  # the data folder holds the token key by now
    assert first_run_operators(settings) == {}  # accounts exist: none made
