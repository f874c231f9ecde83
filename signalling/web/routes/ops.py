"""The probes an orchestrator polls and the metrics Prometheus scrapes; neither is audited
(no person, nothing personal: counts only)."""

from __future__ import annotations

import hmac
from typing import Literal

from aiohttp import web
from typing_extensions import TypedDict

from signalling.ops.metrics import CONTENT_TYPE
from signalling.ops.readiness import ReadyReport
from signalling.web.appkeys import METRICS, READINESS, SETTINGS
from signalling.web.errors import json_error
from signalling.web.openapi import documented

routes = web.RouteTableDef()


class Health(TypedDict):
    status: Literal["ok"]


@routes.get("/healthz")
@documented("Liveness: the process answers (checks nothing else; no sign-in)", response=Health)
async def healthz(request: web.Request) -> web.Response:
    health: Health = {"status": "ok"}
    return web.json_response(health)


@routes.get("/readyz")
@documented(
    "Readiness: 200 when this node can take sessions, else 503; the body names each check "
    "(accepting, evidence_spool, evidence_store, disk, and redis when configured) with ok and "
    "a short reason (no sign-in)",
    response=ReadyReport,
)
async def readyz(request: web.Request) -> web.Response:
    report = await request.app[READINESS].check()
    return web.json_response(report, status=200 if report["ready"] else 503)


@routes.get("/metrics")
@documented(
    "Prometheus metrics (text format), with Authorization: Bearer SCENELINK_METRICS_TOKEN; "
    "403 while no token is configured",
    media_type=CONTENT_TYPE,
)
async def metrics(request: web.Request) -> web.Response:
    token = request.app[SETTINGS].metrics_token
    if token is None:
        raise json_error(403, "metrics are off: set SCENELINK_METRICS_TOKEN")
    expected = f"Bearer {token.get_secret_value()}".encode()
    if not hmac.compare_digest(request.headers.get("Authorization", "").encode(), expected):
        raise json_error(401, "metrics need Authorization: Bearer <SCENELINK_METRICS_TOKEN>")
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
