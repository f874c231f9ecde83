"""Signing in and out of the console, and who is signed in."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from signalling.calls.location import FIX_STALE_S
from signalling.languages import languages
from signalling.operators.auth import COOKIE_NAME, Operator
from signalling.operators.throttle import Throttled
from signalling.web.appkeys import (
    AUDIT,
    OPERATOR,
    OPERATORS,
    SETTINGS,
    THROTTLE,
)
from signalling.web.errors import json_error, parse_body
from signalling.web.models import (
    ConsoleSetup,
    LoginRequest,
    OperatorView,
)
from signalling.web.openapi import documented
from signalling.web.permissions import allowed
from signalling.web.requests import base_url

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


@routes.post("/api/login")
@documented("Sign in to the console", request=LoginRequest, response=OperatorView)
async def login(request: web.Request) -> web.Response:
    body = await parse_body(request, LoginRequest)
    directory = request.app[OPERATORS]
    throttle = request.app[THROTTLE]
    try:
        attempt = await throttle.attempt(body.username, request.remote)
    except Throttled as exc:
        await request.app[AUDIT].record(body.username, "sign_in_throttled", None, request.remote)
        wait = f"{exc.retry_after_s:.0f} s"
        raise json_error(429, "too many failed sign-ins; try again later", detail=wait) from None
    operator = await asyncio.to_thread(directory.authenticate, body.username, body.password)
    if operator is None:
        logger.warning("failed sign-in for %r from %s", body.username, request.remote)
        await request.app[AUDIT].record(body.username, "sign_in_failed", None, request.remote)
        raise json_error(401, "wrong username or password")
    logger.info("%s signed in from %s", operator.username, request.remote)
    await throttle.succeeded(attempt)
    await request.app[AUDIT].record(operator.username, "sign_in", None, request.remote)
    response = web.json_response(operator_view(operator))
    set_console_cookie(request, response, operator)
    return response


def set_console_cookie(request: web.Request, response: web.Response, operator: Operator) -> None:
    """The console's sign-in, however the operator proved who they are."""
    response.set_cookie(
        COOKIE_NAME,
        request.app[OPERATORS].issue_cookie(operator),
        httponly=True,
        samesite="Strict",
        secure=base_url(request).startswith("https"),
        max_age=request.app[SETTINGS].console_login_ttl_s,
        path="/",
    )


@routes.post("/api/logout")
@documented("Sign out")
async def logout(request: web.Request) -> web.Response:
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie:
        await request.app[OPERATORS].revoke_cookie(cookie)
    response = web.json_response({})
    response.del_cookie(COOKIE_NAME, path="/")
    return response


@routes.get("/api/me")
@documented("Who is signed in", response=OperatorView)
async def me(request: web.Request) -> web.Response:
    operator: Operator = request[OPERATOR]
    return web.json_response(operator_view(operator))


def operator_view(operator: Operator) -> dict[str, object]:
    """Who is signed in, and what the permission table lets them call (the console shows and
    polls only that)."""
    return {
        "username": operator.username,
        "roles": list(operator.roles),
        "allowed": allowed(operator.roles),
    }


@routes.get("/api/config")
@documented(
    "Map tiles, force name and the caller page's languages for the console",
    response=ConsoleSetup,
)
async def console_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "tile_url": settings.tile_url,
            "tile_attribution": settings.tile_attribution,
            "force_name": settings.force_name,
            "fix_stale_s": FIX_STALE_S,
            "languages": [{"code": lang.code, "name": lang.name} for lang in languages()],
            "default_language": settings.default_language,
        }
    )
