"""Every request for a session is served by the worker that owns it (signalling.cluster).

The one place that decides: a middleware finds the session a request is about (the route's
session id, the caller's link, the officer's link) and, when another worker owns it, forwards
the request there; a new session goes to the least-loaded worker. A session nobody owns
(new, or its worker gone) is claimed by the worker placement chooses. Media then flows
straight between the browser and the owner (its answer carries the owner's candidates).
Console feeds (WebSockets) stay where they arrive: they follow the state store's pub/sub.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from signalling.calls.links import link_hash, well_formed
from signalling.calls.service import NotOwner
from signalling.calls.sharing import AccessRefused
from signalling.cluster import hop
from signalling.cluster.forward import Forwarder, Unreachable
from signalling.cluster.node import Node
from signalling.cluster.registry import LocalRegistry, RedisRegistry, Registry
from signalling.web.appkeys import (
    CLUSTER,
    EVIDENCE,
    FORWARDER,
    NODE,
    SECRET,
    SERVICE,
    SETTINGS,
    SHARING,
    STATE,
)
from signalling.web.errors import json_error
from signalling.web.routes.caller import bearer_token

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_ROUTES = "/api/sessions/{session_id}"
CALLER_PREFIXES = ("/api/caller/", "/c/")
OFFICER_MEDIA = "/api/officer/viewers"  # the officer link's live view
DEV_OUTBOX = "/api/sms/outbox"  # the development SMS provider's, in each worker's memory


def cluster_secret(app: web.Application) -> bytes:
    configured = app[SETTINGS].cluster_secret
    if configured is not None:
        return configured.get_secret_value().encode()
    return app[SECRET] + b":cluster"


def internal_url(app: web.Application) -> str:
    settings = app[SETTINGS]
    port = settings.internal_port or settings.port
    return settings.internal_url or f"http://127.0.0.1:{port}"


async def session_of(request: web.Request) -> str | None:
    """The live session a request is about (None: not session-scoped, a WebSocket, or a
    credential that opens nothing: the handler here refuses it as usual)."""
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return None
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    if canonical.startswith(SESSION_ROUTES):
        return request.match_info["session_id"]
    if request.path.startswith(CALLER_PREFIXES):
        token = request.match_info.get("token")
        if token is None:
            try:
                token = bearer_token(request)
            except web.HTTPException:
                return None
        link = await request.app[STATE].find_link(link_hash(token)) if well_formed(token) else None
        return link.session_id if link is not None else None
    if canonical == DEV_OUTBOX:  # kept by the worker that sent the session's SMS
        return request.query.get("session_id")
    if canonical == OFFICER_MEDIA:
        try:
            share, _ = await request.app[SHARING].by_link(bearer_token(request))
        except (AccessRefused, web.HTTPException):
            return None
        return share.session_id
    return None


async def _live(request: web.Request, session_id: str) -> bool:
    try:
        return (await request.app[STATE].get(session_id)).state != "ended"
    except KeyError:
        return False


@web.middleware
async def routing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    registry = request.app[CLUSTER]
    if not registry.clustered:
        return await handler(request)
    try:
        came = hop.verify(
            cluster_secret(request.app), request.method, request.raw_path, dict(request.headers)
        )
    except hop.HopRefused as exc:
        logger.warning("forwarded request refused: %s", exc)
        raise json_error(403, "forwarded request not authenticated") from None
    if came is not None:
        request = request.clone(remote=came.remote or request.remote or "")
    try:
        return await _route(request, handler, registry, forwarded=came is not None)
    except NotOwner:
        raise json_error(503, "this session is moving to another worker: try again") from None
    except Unreachable:
        raise json_error(503, "this session's worker does not answer: try again") from None


async def _route(
    request: web.Request, handler: Handler, registry: Registry, forwarded: bool
) -> web.StreamResponse:
    me = registry.worker_id
    if request.method == "POST" and request.path == "/api/sessions" and not forwarded:
        chosen = await registry.place()
        if chosen is None:
            raise json_error(503, "no worker takes new sessions now: try again")
        if chosen.id == me:
            return await handler(request)
        return await request.app[FORWARDER].forward(request, chosen.url)
    session_id = await session_of(request)
    if session_id is None or not await _live(request, session_id):
        return await handler(request)
    owner = await registry.owner(session_id)
    if owner == me:
        if not registry.holds(session_id):  # held under this name by its previous run
            await request.app[SERVICE].adopt(session_id)
        return await handler(request)
    if forwarded:
        # One hop only: sent here as the owner or the chosen one; take it if still free.
        if owner is None and await request.app[SERVICE].adopt(session_id):
            return await handler(request)
        raise NotOwner(session_id)
    workers = {w.id: w for w in await registry.workers()}
    if owner is not None and owner in workers:
        return await request.app[FORWARDER].forward(request, workers[owner].url)
    chosen = await registry.place()
    if chosen is None or chosen.id == me:
        if await request.app[SERVICE].adopt(session_id):
            return await handler(request)
        raise NotOwner(session_id)
    return await request.app[FORWARDER].forward(request, chosen.url)


async def cluster(app: web.Application) -> AsyncIterator[None]:
    """The registry (Redis with ``REDIS_URL``, else this process alone) and the client that
    forwards requests; registered before serving, gone after the calls have closed."""
    settings = app[SETTINGS]
    url = internal_url(app)
    worker = app[EVIDENCE].node_id  # one name for a worker: in the registry and its parts
    registry: Registry
    if settings.redis_url is None:
        registry = LocalRegistry(worker, url)
    else:
        registry = RedisRegistry(settings.redis_url, worker, url, settings.cluster_lease_s)
        await registry.heartbeat()
    app[CLUSTER] = registry
    app[FORWARDER] = Forwarder(cluster_secret(app), worker)
    yield
    await app[FORWARDER].close()
    if isinstance(registry, RedisRegistry):
        for session_id in list(registry.owned):
            await registry.release(session_id)
    await registry.close()


async def heartbeat(app: web.Application) -> AsyncIterator[None]:
    """After the calls: the heartbeat and take-over need the session service."""
    settings = app[SETTINGS]
    node = Node(app[CLUSTER], app[SERVICE], app[STATE], settings.cluster_lease_s)
    app[NODE] = node
    node.start()
    yield
    await node.close()
