"""Spread a load over processes, so that the load generator is not what is measured.

One Python process packetizing and reassembling for many aiortc peers saturates a core at a
few callers; beyond that, frames queue in the load generator and the figures describe it,
not the server. Each worker process runs ``run`` (bench.load.run_load) for its share of the
callers;
all connect, meet at a barrier, and the parent marks the steady state (``on_steady``) and
then tells them to stop. Their reports come back as JSON and are merged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import multiprocessing
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path
from typing import Any

import uvloop

from .report import LoadReport

LoadRunner = Callable[..., Coroutine[Any, Any, LoadReport]]
"""bench.load.run_load, or anything called like it."""

CONNECT_S_PER_CALLER = 5.0  # generous: a caller and its viewers connect in well under 1 s


@dataclass(frozen=True)
class Plan:
    """What to run: ``callers`` (each with ``viewers``) against ``server``."""

    server: str
    username: str
    password: str
    callers: int
    viewers: int
    seconds: float
    codec: str
    cache_dir: Path
    warmup: float = 0.0


def shares(callers: int, processes: int) -> list[tuple[int, int]]:
    """(first caller index, caller count) per process, as even as possible."""
    n = max(1, min(processes, callers))
    base, extra = divmod(callers, n)
    out, first = [], 0
    for i in range(n):
        count = base + (1 if i < extra else 0)
        out.append((first, count))
        first += count
    return out


def _worker(
    run: LoadRunner,
    plan: Plan,
    first: int,
    count: int,
    ready: Barrier,
    stop: Event,
    results: Queue[str],
) -> None:
    async def hold() -> None:
        await asyncio.to_thread(ready.wait)
        await asyncio.to_thread(stop.wait)

    try:
        report = uvloop.run(
            run(
                plan.server,
                plan.username,
                plan.password,
                callers=count,
                viewers=plan.viewers,
                seconds=plan.seconds,
                codec=plan.codec,
                cache_dir=plan.cache_dir,
                first_index=first,
                hold=hold,
            )
        )
        results.put(json.dumps(dataclasses.asdict(report)))
    except BaseException as exc:
        ready.abort()  # nobody waits for a worker that will never arrive
        results.put(json.dumps({"error": f"callers {first}..{first + count - 1}: {exc!r}"}))


def merge(parts: list[dict[str, Any]], plan: Plan) -> LoadReport:
    """One report from the workers' JSON (a failed worker's error becomes a report error)."""
    report = LoadReport([], plan.seconds, plan.codec)
    for part in parts:
        if "error" in part:
            report.errors.append(part["error"])
            continue
        report.callers.extend(LoadReport.from_dict(part).callers)
        report.errors.extend(part["errors"])
    return report


def spread_load(
    run: LoadRunner, plan: Plan, processes: int, on_steady: Callable[[str], None] | None = None
) -> LoadReport:
    """Run ``plan`` with ``run`` in up to ``processes`` worker processes; merge their reports."""
    split = shares(plan.callers, processes)
    ctx = multiprocessing.get_context("spawn")  # no inherited event loop or aiortc state
    ready = ctx.Barrier(len(split) + 1)
    stop = ctx.Event()
    results: Queue[str] = ctx.Queue()
    workers = [
        ctx.Process(target=_worker, args=(run, plan, first, count, ready, stop, results))
        for first, count in split
    ]
    for worker in workers:
        worker.start()
    try:
        ready.wait(timeout=30 + CONNECT_S_PER_CALLER * max(count for _, count in split))
        time.sleep(plan.warmup)
        if on_steady is not None:
            on_steady("start")
        time.sleep(plan.seconds)
        if on_steady is not None:
            on_steady("stop")
    except Exception:  # a worker failed (its error comes with its result) or never arrived
        ready.abort()
    finally:
        stop.set()
        parts = [json.loads(results.get(timeout=120)) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
    return merge(parts, plan)
