"""The console's JSON API for live sessions: the same calls a control room's dispatch (CAD)
system makes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiohttp import WSMsgType, web
from aiortc import RTCSessionDescription

from recorder.events import RequiredPlace
from signalling.calls.bail import required_place
from signalling.calls.feed import ConsoleMessage, ConsoleSession
from signalling.calls.invites import invite
from signalling.calls.service import CallerConnected, SessionEnded, SessionService
from signalling.calls.sessions import utcnow
from signalling.calls.sharing import ending
from signalling.sms import LogSmsSender
from signalling.sms.phone import InvalidPhoneNumber
from signalling.web.appkeys import (
    OPERATOR,
    SHARE,
    SHARING,
)
from signalling.web.errors import json_error, parse_body
from signalling.web.models import (
    Answer,
    CreateSessionRequest,
    IceConfig,
    SessionDescription,
    SessionList,
    SmsOutbox,
    Trail,
)
from signalling.web.openapi import documented
from signalling.web.permissions import needs_share
from signalling.web.requests import (
    audit,
    covering,
    ice_settings,
    link_base,
    service_of,
    session_or_404,
)

routes = web.RouteTableDef()


@routes.post("/api/sessions")
@documented(
    "Create a session and send the caller a link by SMS",
    request=CreateSessionRequest,
    response=ConsoleSession,
    status=201,
)
async def create_session(request: web.Request) -> web.Response:
    body = await parse_body(request, CreateSessionRequest)
    service = service_of(request)
    place, appointment = await invite_details(body, service)
    try:
        session = await service.create(
            body.phone,
            body.incident_ref,
            body.mode,
            request[OPERATOR].username,
            link_base(request),
            required_place=place,
            appointment=appointment,
            language=body.language,
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


async def invite_details(
    body: CreateSessionRequest, service: SessionService
) -> tuple[RequiredPlace | None, tuple[datetime, datetime] | None]:
    """What the invite type needs beside the number (calls.invites): a bail check's place
    and tolerance, a screening appointment's time; 422 naming the field otherwise."""
    kind = invite(body.mode)

    def refuse(field: str, why: str) -> web.HTTPException:
        return json_error(422, "validation failed", fields={field: why})

    place = None
    if kind.required_place:
        if body.place is None:
            raise refuse("place", f"a {kind.label.lower()} needs the place the person must be at")
        if body.tolerance_m is None:
            raise refuse("tolerance_m", f"a {kind.label.lower()} needs a tolerance in metres")
        try:
            place = await required_place(body.place, body.tolerance_m, service.geocoder)
        except ValueError as exc:
            raise refuse("place", str(exc)) from None
    elif body.place is not None or body.tolerance_m is not None:
        raise refuse("place", "only a bail or court-order check has a required place")
    appointment = None
    if kind.appointment:
        if body.appointment_at is None:
            raise refuse("appointment_at", "a screening appointment needs its time")
        ends_at = body.appointment_at + timedelta(minutes=body.window_minutes)
        if ends_at <= utcnow():
            raise refuse("appointment_at", "the appointment's window has already passed")
        appointment = (body.appointment_at.astimezone(UTC), ends_at.astimezone(UTC))
    elif body.appointment_at is not None:
        raise refuse("appointment_at", "only a screening appointment has a time")
    return place, appointment


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
@documented("One session's state", response=ConsoleSession)
async def get_session(request: web.Request) -> web.Response:
    return web.json_response(await service_of(request).view(await session_or_404(request)))


@routes.post("/api/sessions/{session_id}/end")
@documented(
    "End a session: the caller's stream stops and the recording is closed", response=ConsoleSession
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
    response=ConsoleSession,
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
    session = await session_or_404(request)
    return web.json_response(ice_settings(request, f"{session.id}.viewer"))


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


async def send(ws: web.WebSocketResponse, message: ConsoleMessage) -> None:
    await ws.send_json(message)


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
        await send(ws, {"type": "trail", "fixes": await service.store.trail(session.id)})
        await send(
            ws,
            {"type": "state", "session": await service.view(await service.store.get(session.id))},
        )

        async def forward() -> None:
            async for event in events:
                await send(ws, event)
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
