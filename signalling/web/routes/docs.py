"""The OpenAPI document of every route."""

from __future__ import annotations

from aiohttp import web

from signalling.web.messages import CHANNELS
from signalling.web.openapi import build_openapi, documented
from signalling.webhooks import WEBHOOK_PAYLOADS

routes = web.RouteTableDef()


@routes.get("/api/openapi.json")
@documented("This document")
async def openapi(request: web.Request) -> web.Response:
    document = build_openapi(request.app, "SceneLink API", "0.1.0", CHANNELS, WEBHOOK_PAYLOADS)
    return web.json_response(document)
