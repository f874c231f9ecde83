"""The console's JSON API: the same calls a control room's dispatch (CAD) system makes."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import WSMsgType, web
from aiortc import RTCSessionDescription

from .appkeys import (
    AUDIT,
    EVIDENCE,
    OPERATOR,
    OPERATORS,
    SERVICE,
    SETTINGS,
    SHARE,
    SHARING,
    THROTTLE,
)
from .audit import first_broken
from .auth import COOKIE_NAME, Operator
from .errors import json_error, parse_body
from .models import (
    Answer,
    AuditSearch,
    ConsoleConfig,
    CreateSessionRequest,
    IceConfig,
    LoginRequest,
    OperatorView,
    SessionDescription,
    SessionList,
    SessionView,
    SmsOutbox,
    Trail,
)
from .openapi import build_openapi, documented
from .permissions import needs_share
from .phone import InvalidPhoneNumber
from .service import CallerConnected, SessionEnded, SessionService
from .sessions import CallSession
from .sharing import AccessRefused, ending
from .sms import LogSmsSender
from .store import UnknownSession
from .throttle import Throttled

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def audit(
    request: web.Request, action: str, session_id: str | None = None, **detail: Any
) -> None:
    """Record who did it (the signed-in operator) and from where, before answering."""
    operator = request.get(OPERATOR)
    actor = operator.username if operator else "anonymous"
    await request.app[AUDIT].record(actor, action, session_id, request.remote, **detail)


def service_of(request: web.Request) -> SessionService:
    service: SessionService = request.app[SERVICE]
    return service


def base_url(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    if settings.public_url:
        return str(settings.public_url)
    scheme = request.scheme
    if settings.trust_forwarded_proto:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip()
    return f"{scheme}://{request.host}"


# The whole Host header: a loopback name or address and an optional port, nothing else.
LOOPBACK_HOST = re.compile(r"(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?")


def link_base(request: web.Request) -> str:
    """The base of links sent to callers and officers. Unconfigured, it is the request's Host
    header, which whoever sends the request chooses (any site, in a 999 caller's SMS), so it is
    used only when it names a loopback host (development, tests): such a link reaches no one."""
    if request.app[SETTINGS].public_url is None and not LOOPBACK_HOST.fullmatch(request.host):
        raise json_error(503, "no public URL configured: set SCENELINK_PUBLIC_URL to send links")
    return base_url(request)


def covering(request: web.Request, session: CallSession) -> dict[str, str]:
    """Call handlers cover for each other on shift, so anyone allowed may act on a session
    someone else created; the audit record then names the creator."""
    actor = request[OPERATOR].username
    return {} if actor == session.created_by else {"creator": session.created_by}


async def session_or_404(request: web.Request) -> Any:
    """The session a route names, if this operator may see it: an officer with no other
    role only through a live share (kept on the request, ``SHARE``)."""
    try:
        session = await service_of(request).store.get(request.match_info["session_id"])
    except UnknownSession:
        raise json_error(404, "unknown session id") from None
    operator = request.get(OPERATOR)
    if operator is not None and needs_share(operator.roles):
        try:
            request[SHARE] = await request.app[SHARING].for_officer(operator.username, session)
        except AccessRefused as exc:
            raise json_error(410 if exc.gone else 403, str(exc)) from None
    return session


def ice_servers(request: web.Request) -> list[dict[str, Any]]:
    return [s.model_dump(exclude_none=True) for s in request.app[SETTINGS].ice_servers]


# -- sign-in -------------------------------------------------------------------------


@routes.post("/api/login")
@documented("Sign in to the console", request=LoginRequest, response=OperatorView, auth="none")
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
    response = web.json_response({"username": operator.username, "roles": list(operator.roles)})
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
@documented("Sign out", auth="none")
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
    return web.json_response({"username": operator.username, "roles": list(operator.roles)})


@routes.get("/api/config")
@documented("Map tiles and force name for the console", response=ConsoleConfig)
async def console_config(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "tile_url": settings.tile_url,
            "tile_attribution": settings.tile_attribution,
            "force_name": settings.force_name,
        }
    )


# -- sessions ------------------------------------------------------------------------


@routes.post("/api/sessions")
@documented(
    "Create a session and send the caller a link by SMS",
    request=CreateSessionRequest,
    response=SessionView,
    status=201,
)
async def create_session(request: web.Request) -> web.Response:
    body = await parse_body(request, CreateSessionRequest)
    service = service_of(request)
    try:
        session = await service.create(
            body.phone, body.incident_ref, body.mode, request[OPERATOR].username, link_base(request)
        )
    except InvalidPhoneNumber as exc:
        raise json_error(422, "validation failed", fields={"phone": str(exc)}) from None
    await audit(
        request,
        "collection.session_created",
        session.id,
        incident_ref=session.incident_ref,
        mode=session.mode,
    )
    return web.json_response(await service.view(session), status=201)


@routes.get("/api/sessions")
@documented("Live and recent sessions, newest first", response=SessionList)
async def list_sessions(request: web.Request) -> web.Response:
    service = service_of(request)
    sessions = await service.store.recent()
    operator = request[OPERATOR]
    if needs_share(operator.roles):
        shared = await request.app[SHARING].shared_sessions(operator.username)
        sessions = [s for s in sessions if s.id in shared]
    return web.json_response({"sessions": [await service.view(s) for s in sessions]})


@routes.get("/api/sessions/{session_id}")
@documented("One session's state", response=SessionView)
async def get_session(request: web.Request) -> web.Response:
    return web.json_response(await service_of(request).view(await session_or_404(request)))


@routes.post("/api/sessions/{session_id}/end")
@documented(
    "End a session: the caller's stream stops and the recording is closed", response=SessionView
)
async def end_session(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    service = service_of(request)
    session = await service.end(session.id, by=request[OPERATOR].username)
    await audit(request, "session_ended", session.id, **covering(request, session))
    return web.json_response(await service.view(session))


@routes.post("/api/sessions/{session_id}/resend")
@documented(
    "Send the caller a fresh link (the SMS failed or never arrived); the old link stops working",
    response=SessionView,
)
async def resend_link(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    service = service_of(request)
    try:
        session = await service.resend(session.id, request[OPERATOR].username, link_base(request))
    except SessionEnded:
        raise json_error(409, "session has ended") from None
    except CallerConnected:
        raise json_error(409, "caller already connected") from None
    await audit(
        request,
        "collection.link_resent",
        session.id,
        sms_status=session.sms_status,
        **covering(request, session),
    )
    return web.json_response(await service.view(session))


@routes.get("/api/sessions/{session_id}/trail")
@documented("The session's location trail so far", response=Trail)
async def session_trail(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    await audit(request, "consultation.location_trail", session.id)
    return web.json_response({"fixes": await service_of(request).store.trail(session.id)})


@routes.get("/api/sessions/{session_id}/ice")
@documented("ICE servers for a viewer's peer connection", response=IceConfig)
async def viewer_ice(request: web.Request) -> web.Response:
    await session_or_404(request)
    return web.json_response({"ice_servers": ice_servers(request)})


@routes.post("/api/sessions/{session_id}/viewers")
@documented(
    "Watch the live video: send a recvonly SDP offer, get the answer",
    request=SessionDescription,
    response=Answer,
)
async def add_viewer(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    body = await parse_body(request, SessionDescription)
    share = request.get(SHARE)
    try:
        answer = await service_of(request).add_viewer(
            session.id,
            RTCSessionDescription(body.sdp, body.type),
            request[OPERATOR].username,
            share.id if share else None,
        )
    except SessionEnded:
        raise json_error(410, "session has ended") from None
    except ValueError as exc:
        raise json_error(400, "malformed SDP", detail=str(exc)) from None
    if share is not None:
        request.app[SHARING].guard(share)
    await audit(request, "consultation.live_view", session.id)
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


@routes.get("/api/sessions/{session_id}/ws")
@documented("WebSocket: the trail, then every new fix and state change")
async def session_feed(request: web.Request) -> web.WebSocketResponse:
    session = await session_or_404(request)
    origin = request.headers.get("Origin")
    if origin is not None and origin.split("://", 1)[-1] != request.host:
        raise json_error(403, "cross-origin WebSocket refused")
    service = service_of(request)
    share = request.get(SHARE)
    await audit(request, "consultation.live_location", session.id)
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    async with service.store.subscribe(session.id) as events:
        if share is not None:  # again, now subscribed: a withdrawal in between is not missed
            try:
                await session_or_404(request)
            except web.HTTPException:
                await ws.close(code=4403, message=b"access ended")
                return ws
        await ws.send_json({"type": "trail", "fixes": await service.store.trail(session.id)})
        await ws.send_json(
            {"type": "state", "session": await service.view(await service.store.get(session.id))}
        )

        async def forward() -> None:
            async for event in events:
                await ws.send_json(event)
                if share is not None and ending(event, share.id):
                    await ws.close(code=4403, message=b"access ended")

        forwarder = asyncio.ensure_future(forward())
        try:
            async for message in ws:  # the console only listens; reading notices the close
                if message.type == WSMsgType.ERROR:
                    break
        finally:
            forwarder.cancel()
    return ws


# -- SMS outbox (development provider only) ---------------------------------------------


@routes.get("/api/sms/outbox")
@documented(
    "Messages the development SMS provider would have sent for you (each holds a live link)",
    response=SmsOutbox,
)
async def sms_outbox(request: web.Request) -> web.Response:
    sms = service_of(request).sms
    if not isinstance(sms, LogSmsSender):
        raise json_error(404, "a real SMS provider is configured; there is no outbox")
    return web.json_response(
        {
            "messages": [
                {
                    "session_id": m.session_id,
                    "to_masked": m.to_masked,
                    "text": m.text,
                    "sent_at": m.sent_at.isoformat(),
                }
                for m in sms.sent_by(request[OPERATOR].username)
            ]
        }
    )


# -- recordings ----------------------------------------------------------------------


@routes.get("/.well-known/jwks.json")
@documented(
    "The public keys that sign evidence manifests (JWKS), for offline verification", auth="none"
)
async def jwks(request: web.Request) -> web.Response:
    return web.json_response(
        request.app[EVIDENCE].signer.jwks(), headers={"Cache-Control": "public, max-age=3600"}
    )


@routes.get("/api/evidence/status")
@documented("The evidence store, the upload backlog and the last fixity check")
async def evidence_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[EVIDENCE].stats())


@routes.get("/api/audit")
@documented(
    "Search the audit trail (supervisors); says whether the chain is intact", response=AuditSearch
)
async def audit_search(request: web.Request) -> web.Response:
    trail = request.app[AUDIT]
    query = request.query
    records = await trail.search(query.get("session_id"), query.get("actor"), query.get("action"))
    broken = first_broken(await asyncio.to_thread(trail.read))
    await audit(request, "consultation.audit_search", query.get("session_id"))
    return web.json_response(
        {"records": records, "chain_intact": broken is None, "first_broken_seq": broken}
    )


@routes.get("/api/openapi.json")
@documented("This document", auth="none")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(request.app, "SceneLink API", "0.1.0"))
