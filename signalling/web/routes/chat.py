"""Chat and silent mode: the console's side (call handlers write; anyone watching live
reads) and the caller's HTTPS fallback for a page without an open data channel."""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from signalling.calls.chat import (
    CallerChatRecord,
    CallerChatState,
    ChatRecord,
    ChatRefused,
    Sender,
    caller_view,
    check_language,
)
from signalling.calls.feed import ConsoleSession
from signalling.calls.service import SessionEnded, SessionService
from signalling.web.appkeys import OPERATOR, SERVICE, SETTINGS
from signalling.web.errors import json_error, parse_body
from signalling.web.models import ChatList, ChatReceipts, ChatSend, SilentSwitch
from signalling.web.openapi import documented
from signalling.web.requests import audit, service_of, session_or_404
from signalling.web.routes.caller import caller_session_or_gone

routes = web.RouteTableDef()


def refused(exc: ChatRefused) -> web.HTTPException:
    """422 naming the limit; 429 with Retry-After for the rate."""
    if exc.limit != "chat_rate":
        return json_error(422, "message refused", detail=exc.error, limit=exc.limit)
    error = json_error(429, "message refused", detail=exc.error, limit=exc.limit)
    error.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s or 1)))
    return error


async def send(
    service: SessionService,
    session_id: str,
    sender: Sender,
    body: ChatSend,
    by: str | None,
) -> ChatRecord:
    try:
        return await service.chat_send(
            session_id, sender, body.text, by, check_language(body.language)
        )
    except ChatRefused as exc:
        raise refused(exc) from None
    except SessionEnded:
        raise json_error(409, "session has ended") from None


# -- the console ----------------------------------------------------------------------------


@routes.get("/api/sessions/{session_id}/chat")
@documented("The session's chat so far, and the call handler's canned phrases", response=ChatList)
async def chat_list(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    settings = request.app[SETTINGS]
    await audit(request, "consultation.chat", session.id)
    return web.json_response(
        {
            "messages": await service_of(request).store.chat(session.id),
            "phrases": settings.chat_phrases,
            "max_chars": settings.chat_max_chars,
        }
    )


@routes.post("/api/sessions/{session_id}/chat")
@documented(
    "Send the caller a chat message (limits: SCENELINK_CHAT_MAX_CHARS, control characters, "
    "SCENELINK_CHAT_RATE_MESSAGES per SCENELINK_CHAT_RATE_WINDOW_S)",
    request=ChatSend,
    response=ChatRecord,
    status=201,
)
async def chat_send(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    body = await parse_body(request, ChatSend)
    operator = request[OPERATOR].username
    message = await send(service_of(request), session.id, "handler", body, operator)
    await audit(request, "contact.chat_sent", session.id, message_id=message["message_id"])
    return web.json_response(message, status=201)


@routes.post("/api/sessions/{session_id}/chat/receipts")
@documented(
    "The console has the caller's messages (delivered) or showed them (read)",
    request=ChatReceipts,
    status=204,
)
async def chat_receipts(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    body = await parse_body(request, ChatReceipts)
    await service_of(request).chat_receipt(
        session.id, "handler", body.message_ids, body.receipt, request[OPERATOR].username
    )
    return web.Response(status=204)


@routes.post("/api/sessions/{session_id}/silent")
@documented(
    "Silent mode on or off: the caller's page makes no sound, dims, hides the preview, puts "
    "the chat in front and keeps the microphone off",
    request=SilentSwitch,
    response=ConsoleSession,
)
async def silent(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    body = await parse_body(request, SilentSwitch)
    service = service_of(request)
    try:
        session = await service.set_silent(session.id, body.on, request[OPERATOR].username)
    except SessionEnded:
        raise json_error(409, "session has ended") from None
    await audit(request, "contact.silent_mode", session.id, on=body.on)
    return web.json_response(await service.view(session))


@routes.post("/api/sessions/{session_id}/microphone")
@documented(
    "Ask the caller (in silent mode) to turn the microphone on; they accept or not",
    response=ConsoleSession,
)
async def microphone(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    service = service_of(request)
    try:
        session = await service.request_microphone(session.id)
    except SessionEnded:
        raise json_error(409, "session has ended") from None
    await audit(request, "contact.microphone_requested", session.id)
    return web.json_response(await service.view(session))


# -- the caller, without an open data channel ----------------------------------------------


@routes.post("/api/caller/chat")
@documented(
    "A chat message from the caller's page (when it has no open data channel)",
    request=ChatSend,
    response=CallerChatRecord,
    status=201,
)
async def caller_chat_send(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    body = await parse_body(request, ChatSend)
    message = await send(service, session_id, "caller", body, None)
    return web.json_response(caller_view(message), status=201)


@routes.get("/api/caller/chat")
@documented(
    "The chat and silent mode as the caller's page shows them; with ?version= (the last "
    "answer's), waits up to SCENELINK_CHAT_POLL_S for a change (long poll)",
    response=CallerChatState,
)
async def caller_chat_state(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    service.chat.caller_language(session_id, check_language(request.query.get("language")))
    seen = request.query.get("version")
    async with service.store.subscribe(session_id) as events:  # first: no change is missed
        state = await service.caller_chat_state(session_id)
        if seen is not None and seen == state["version"]:
            try:
                async with asyncio.timeout(request.app[SETTINGS].chat_poll_s):
                    async for event in events:
                        if event["type"] in ("chat", "state"):
                            break
            except TimeoutError:
                pass
            state = await service.caller_chat_state(session_id)
    return web.json_response(state)


@routes.post("/api/caller/chat/receipts")
@documented(
    "The caller's page has the call handler's messages (delivered) or showed them (read)",
    request=ChatReceipts,
    status=204,
)
async def caller_chat_receipts(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    body = await parse_body(request, ChatReceipts)
    await service.chat_receipt(session_id, "caller", body.message_ids, body.receipt, None)
    return web.Response(status=204)


@routes.post("/api/caller/silent")
@documented('The caller chose "I can\'t talk" (or talks again)', request=SilentSwitch, status=204)
async def caller_silent(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    body = await parse_body(request, SilentSwitch)
    try:
        await service.set_silent(session_id, body.on, "caller")
    except SessionEnded:
        raise json_error(409, "session has ended") from None
    return web.Response(status=204)
