"""``scenelink serve``: one worker process, or a supervisor of several on one machine.

A worker serves the public port (shared with its siblings through SO_REUSEPORT: the kernel
spreads connections) and, in a cluster, its own internal port for requests forwarded to it.
SIGTERM drains it (``Node.drain``) while it still serves, then it stops; SIGINT stops it at
once. The supervisor starts N workers, starts again one that dies, and passes SIGTERM and
SIGINT on. Each worker keeps its own data folder under ``<data dir>/workers/<n>`` (its own
evidence spool, node id, signing key and audit trail: a restarted worker recovers only its
own open bundles) and shares the console's token secret and the parent's accounts file.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import web

from signalling.config import Settings
from signalling.web.app import RUNNER_OPTIONS, make_app, operator_accounts, token_secret
from signalling.web.appkeys import NODE

logger = logging.getLogger("scenelink")

RESTART_WAIT_S = 1.0  # between a worker's death and its restart (no tight crash loop)


def default_workers(settings: Settings) -> int:
    """One per core with Redis (workers need it to find each other); one without."""
    if settings.workers is not None:
        return settings.workers
    return (os.cpu_count() or 1) if settings.redis_url else 1


async def run_worker(
    settings: Settings, ssl_context: ssl.SSLContext | None, reuse_port: bool
) -> None:
    app = make_app(settings)
    runner = web.AppRunner(app, handle_signals=False, **RUNNER_OPTIONS)
    await runner.setup()
    sites = [
        web.TCPSite(
            runner, settings.host, settings.port, ssl_context=ssl_context, reuse_port=reuse_port
        )
    ]
    if settings.internal_port:
        sites.append(web.TCPSite(runner, settings.host, settings.internal_port))
    stop = asyncio.Event()
    received: list[signal.Signals] = []

    def stop_on(signum: signal.Signals) -> None:
        received.append(signum)
        stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_on, signum)
    try:
        for site in sites:
            await site.start()
        # What start-up made (modules, aiortc's tables, the app) lives as long as the process:
        # out of the collector's sight, its full collections walk only what calls create, and
        # stop taking tens of milliseconds from the media under load.
        gc.freeze()
        logger.info("serving on %s (pid %d)", ", ".join(s.name for s in sites), os.getpid())
        await stop.wait()
        if received[0] == signal.SIGTERM:
            await app[NODE].drain(settings.drain_s)
    finally:
        await runner.cleanup()


def worker_environment(settings: Settings, index: int, base: dict[str, str]) -> dict[str, str]:
    """Worker ``index``'s settings: its names, data folder and internal port. Its node id
    (its name in the registry and in its evidence) is its data folder's own, or the
    configured one with ``-<index>``."""
    internal_base = settings.internal_port or settings.port + 1
    named = {"SCENELINK_NODE_ID": f"{settings.node_id}-{index}"} if settings.node_id else {}
    return (
        base
        | named
        | {
            "SCENELINK_WORKERS": "1",
            "SCENELINK_NODE_NAME": f"{settings.node_name}-{index}",
            "SCENELINK_DATA_DIR": str(Path(settings.data_dir) / "workers" / str(index)),
            "SCENELINK_INTERNAL_PORT": str(internal_base + index),
            "SCENELINK_TOKEN_SECRET": token_secret(settings).decode(),
            "SCENELINK_ACCOUNTS_FILE": str(settings.accounts_path.absolute()),
        }
    )


def first_run_operators(settings: Settings) -> dict[str, str]:
    """With no accounts at all, the first-run call handler made once, here (its one-off
    password logged once), and given to every worker: each making its own would give each
    worker another password."""
    if settings.operators or settings.accounts_path.exists():
        return {}
    accounts = [
        {"username": a.username, "password": a.password.get_secret_value(), "roles": a.roles}
        for a in operator_accounts(settings)
    ]
    return {"SCENELINK_OPERATORS": json.dumps(accounts)}


def supervise(settings: Settings, count: int, argv: list[str]) -> int:
    """Run ``count`` workers (``argv``: how to start one) until SIGTERM or SIGINT, which
    each worker is given in turn; a worker that dies meanwhile is started again."""
    children: dict[int, subprocess.Popen[bytes]] = {}
    stopping: list[int] = []
    base = dict(os.environ) | first_run_operators(settings)

    def start(index: int) -> None:
        env = worker_environment(settings, index, base)
        children[index] = subprocess.Popen([*argv, "--reuse-port"], env=env)
        logger.info("worker %d started (pid %d)", index, children[index].pid)

    def pass_on(signum: int, _: object) -> None:
        stopping.append(signum)
        for child in children.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    for index in range(count):
        start(index)
    while not stopping:
        time.sleep(0.2)
        for index, child in list(children.items()):
            if not stopping and child.poll() is not None:
                logger.error("worker %d exited with %s: starting it again", index, child.returncode)
                time.sleep(RESTART_WAIT_S)
                start(index)
    for child in children.values():
        child.wait()
    return 0


def worker_command(config: Path | None) -> list[str]:
    command = [sys.executable, "-m", "signalling.cli.main", "serve"]
    return command + (["--config", str(config)] if config else [])
