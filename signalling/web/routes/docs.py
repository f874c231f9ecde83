"""The OpenAPI document of every route."""

from __future__ import annotations

from aiohttp import web

from signalling.web.openapi import build_openapi, documented

routes = web.RouteTableDef()


@routes.get("/api/openapi.json")
@documented("This document")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(request.app, "SceneLink API", "0.1.0"))
