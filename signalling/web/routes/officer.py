"""An officer link's page and API, for an in-vehicle tablet: live video, the caller's trail,
and the distance and bearing from the tablet to the caller.

Authenticated by the link's token: a bearer header on HTTP calls, the first message on the
WebSocket (browsers cannot put headers on one), never a query string, so it stays out of logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
from importlib import resources

from aiohttp import WSMsgType, web
from aiortc import RTCSessionDescription

from signalling.calls.bearing import bearing_to
from signalling.calls.feed import ConsoleSession, FeedEvent, OfficerMessage, OfficerSession
from signalling.calls.invites import invite
from signalling.calls.location import FIX_STALE_S, FixRecord, GpsFix, InvalidFix, parse_fix
from signalling.calls.service import SessionEnded
from signalling.calls.sessions import CallSession, utcnow
from signalling.calls.shares import Share
from signalling.calls.sharing import AccessRefused
from signalling.safejson import parse_json
from signalling.web.appkeys import AUDIT, SERVICE, SETTINGS, SHARING
from signalling.web.errors import json_error, parse_body
from signalling.web.models import Answer, OfficerShareView, SessionDescription
from signalling.web.openapi import documented
from signalling.web.requests import ice_settings
from signalling.web.routes.caller import CALLER_HEADERS, bearer_token

routes = web.RouteTableDef()

AUTH_WAIT_S = 10.0


def actor(share: Share) -> str:
    """Who the audit trail names: the link itself (its holder is the share's label)."""
    return f"officer-link:{share.id}"


def session_view(
    session: CallSession | ConsoleSession, last_fix: FixRecord | None
) -> OfficerSession:
    """What an officer link shows of a session: no phone number, no console detail."""
    if isinstance(session, CallSession):
        return {
            "id": session.id,
            "incident_ref": session.incident_ref,
            "mode": session.mode,
            "media": invite(session.mode).media,
            "state": session.state,
            "last_fix": last_fix,
            "silent": session.silent,
        }
    return {
        "id": session["id"],
        "incident_ref": session["incident_ref"],
        "mode": session["mode"],
        "media": invite(session["mode"]).media,
        "state": session["state"],
        "last_fix": last_fix,
        "silent": session["silent"],
    }


async def send(ws: web.WebSocketResponse, message: OfficerMessage) -> None:
    await ws.send_json(message)


async def share_by_link(request: web.Request, token: str) -> tuple[Share, CallSession]:
    """The share a link opens; a refused link (forged, expired, withdrawn) is audited."""
    try:
        return await request.app[SHARING].by_link(token)
    except AccessRefused as exc:
        await request.app[AUDIT].record(
            "officer-link", "officer_link_refused", None, request.remote, reason=str(exc)
        )
        raise


async def link_share(request: web.Request) -> tuple[Share, CallSession]:
    try:
        return await share_by_link(request, bearer_token(request))
    except AccessRefused as exc:
        raise json_error(410 if exc.gone else 403, str(exc)) from None


@routes.get("/o/{token}")
async def officer_page(request: web.Request) -> web.Response:
    status, reason = 200, ""
    try:
        await share_by_link(request, request.match_info["token"])
    except AccessRefused as exc:
        status, reason = (410 if exc.gone else 403), str(exc)
    page = (
        resources.files("operator_console")
        .joinpath("officer.html")
        .read_text(encoding="utf-8")
        .replace("{{access}}", "ended" if reason else "ok")
        .replace("{{reason}}", html.escape(reason))
    )
    return web.Response(text=page, status=status, content_type="text/html", headers=CALLER_HEADERS)


@routes.get("/api/officer/share")
@documented(
    "What an officer link opens: the session, the link's expiry, map and ICE settings",
    response=OfficerShareView,
)
async def officer_share(request: web.Request) -> web.Response:
    share, session = await link_share(request)
    settings = request.app[SETTINGS]
    _, last_fix = await request.app[SERVICE].store.trail_summary(session.id)
    return web.json_response(
        {
            "share_id": share.id,
            "label": share.recipient,
            "expires_at": share.expires_at.isoformat() if share.expires_at else None,
            "server_time": utcnow().isoformat(),
            "session": session_view(session, last_fix),
            **ice_settings(request, f"{session.id}.share.{share.id}"),
            "tile_url": settings.tile_url,
            "tile_attribution": settings.tile_attribution,
            "force_name": settings.force_name,
            "fix_stale_s": FIX_STALE_S,
        },
        headers={"Cache-Control": "no-store"},
    )


@routes.post("/api/officer/viewers")
@documented(
    "Watch the live video through an officer link: recvonly SDP offer in, answer out",
    request=SessionDescription,
    response=Answer,
)
async def officer_viewer(request: web.Request) -> web.Response:
    share, session = await link_share(request)
    body = await parse_body(request, SessionDescription)
    try:
        answer = await request.app[SERVICE].add_viewer(
            session.id, RTCSessionDescription(body.sdp, body.type), actor(share), share.id
        )
    except SessionEnded:
        raise json_error(410, "the session has ended") from None
    except ValueError as exc:
        raise json_error(400, "malformed SDP", detail=str(exc)) from None
    request.app[SHARING].guard(share)
    await request.app[AUDIT].record(
        actor(share),
        "consultation.live_view",
        session.id,
        request.remote,
        recipient=share.recipient,
    )
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


class OfficerFeed:
    """One officer link's WebSocket: the trail and fixes out, the tablet's position in,
    distance and bearing back whenever either end moves."""

    def __init__(self, ws: web.WebSocketResponse, last_fix: FixRecord | None) -> None:
        self.ws = ws
        self.caller = last_fix
        self.officer: GpsFix | None = None

    async def on_event(self, event: FeedEvent) -> None:
        if event["type"] == "fix":
            self.caller = event["fix"]
            await send(self.ws, event)
            await self.send_bearing()
        elif event["type"] in ("place", "chat"):  # the chat read-only
            await send(self.ws, event)
        elif event["type"] == "state":
            await send(
                self.ws, {"type": "state", "session": session_view(event["session"], self.caller)}
            )

    async def on_position(self, text: str, limit: int) -> None:
        try:
            if len(text) > limit:
                raise InvalidFix("message too large")
            message = parse_json(text)
            if not isinstance(message, dict) or message.get("type") != "position":
                raise InvalidFix("not a position message")
            self.officer = parse_fix(message, utcnow())
        except (InvalidFix, ValueError) as exc:
            await send(self.ws, {"type": "error", "error": f"position refused: {exc}"})
            return
        await self.send_bearing()

    async def send_bearing(self) -> None:
        if self.officer is None or self.caller is None:
            return
        line = bearing_to(
            (self.officer.lat, self.officer.lon), (self.caller["lat"], self.caller["lon"])
        )
        await send(
            self.ws,
            {
                "type": "bearing",
                "distance_m": round(line.distance_m, 1),
                "bearing_deg": round(line.bearing_deg, 1),
                "officer_accuracy_m": self.officer.accuracy,
                "caller_accuracy_m": self.caller["accuracy"],
                "caller_fix_at": self.caller["received_at"],
            },
        )


async def end_feed(ws: web.WebSocketResponse, reason: str) -> None:
    with contextlib.suppress(ConnectionResetError):  # the tablet has gone already
        await send(ws, {"type": "access_ended", "reason": reason})
        await ws.close(code=4403, message=b"access ended")


async def first_message_token(ws: web.WebSocketResponse) -> str | None:
    """The token the first message carries ("" if none); None if the socket closed first,
    which is no attempt to use a link: nothing to refuse or audit."""
    try:
        message = await ws.receive(timeout=AUTH_WAIT_S)
    except TimeoutError:
        return ""
    if message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        return None
    try:
        token = parse_json(message.data)["token"] if message.type == WSMsgType.TEXT else None
    except (ValueError, KeyError, TypeError):
        token = None
    return token if isinstance(token, str) else ""


@routes.get("/api/officer/ws")
@documented(
    "WebSocket for an officer link: send {type: auth, token} first; then the trail, fixes, "
    "state and, after each {type: position}, distance and bearing to the caller",
)
async def officer_feed(request: web.Request) -> web.WebSocketResponse:
    origin = request.headers.get("Origin")
    if origin is not None and origin.split("://", 1)[-1] != request.host:
        raise json_error(403, "cross-origin WebSocket refused")
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    sharing = request.app[SHARING]
    token = await first_message_token(ws)
    if token is None:
        return ws
    try:
        share, session = await share_by_link(request, token)
    except AccessRefused as exc:
        await end_feed(ws, str(exc))
        return ws
    store = request.app[SERVICE].store
    limit = request.app[SETTINGS].max_message_bytes
    async with store.subscribe(session.id) as events:
        try:  # again, now subscribed: an end in between is not missed
            share, session = await share_by_link(request, token)
        except AccessRefused as exc:
            await end_feed(ws, str(exc))
            return ws
        await request.app[AUDIT].record(
            actor(share),
            "consultation.live_location",
            session.id,
            request.remote,
            recipient=share.recipient,
        )
        trail = await store.trail(session.id)
        feed = OfficerFeed(ws, trail[-1] if trail else None)
        await send(ws, {"type": "trail", "fixes": trail})
        await send(ws, {"type": "state", "session": session_view(session, feed.caller)})
        for said in await store.chat(session.id):  # the chat so far, read-only
            await send(ws, {"type": "chat", "message": said})

        async def follow() -> None:
            await end_feed(ws, await sharing.follow(share, events, feed.on_event))

        follower = asyncio.ensure_future(follow())
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await feed.on_position(message.data, limit)
                elif message.type == WSMsgType.ERROR:
                    break
        finally:
            follower.cancel()
    return ws
