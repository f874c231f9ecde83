"""Answers about the whole cluster: the same request asked of every other live worker (one
hop, signed like a forwarded request), e.g. an audit search over every worker's trail."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from signalling.cluster import hop
from signalling.cluster.forward import Unreachable
from signalling.web.appkeys import CLUSTER, FORWARDER

logger = logging.getLogger(__name__)


def forwarded_by(request: web.Request) -> str | None:
    """The worker that passed this request on (its hop verified by ``routing_middleware``)."""
    return request.headers.get(hop.FROM) if request.app[CLUSTER].clustered else None


async def from_other_workers(request: web.Request) -> list[tuple[str, Any | None]]:
    """This GET as every other live worker answers it (its JSON; None: it did not answer),
    for an answer about the whole cluster. Empty when alone or asked by another worker."""
    registry = request.app[CLUSTER]
    if forwarded_by(request) is not None:
        return []
    others = [w for w in await registry.workers() if w.id != registry.worker_id]

    async def ask(url: str) -> Any | None:
        try:
            return await request.app[FORWARDER].ask(request, url)
        except Unreachable as exc:
            logger.warning("%s not answered by %s", request.path, exc)
            return None

    answers = await asyncio.gather(*(ask(w.url) for w in others))
    return [(w.id, a) for w, a in zip(others, answers, strict=True)]
