"""The caller's side: the link page, the offer, the end. Authenticated by the link's token."""

from __future__ import annotations

import html
import logging
from datetime import datetime
from importlib import resources

from aiohttp import web
from aiortc import RTCSessionDescription

from signalling.calls.invites import invite
from signalling.calls.location import InvalidFix
from signalling.calls.service import LinkNotUsable, SessionService, TooEarly
from signalling.config import Settings
from signalling.languages import language_codes
from signalling.web.appkeys import AUDIT, SERVICE, SETTINGS
from signalling.web.errors import json_error, parse_body
from signalling.web.models import Answer, CallerConfig, CallerFix, CallerOffer, CallerStateReport
from signalling.web.openapi import documented
from signalling.web.requests import ice_settings

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

CALLER_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _page(name: str) -> str:
    return resources.files("web_client").joinpath(name).read_text(encoding="utf-8")


def _languages_filled(page: str, settings: Settings) -> str:
    """The catalogues there are and the default: the page picks its language (i18n.js)."""
    return page.replace("{{languages}}", " ".join(language_codes())).replace(
        "{{default_language}}", settings.default_language
    )


def link_gone_page(settings: Settings) -> web.Response:
    """Friendly words, never an error code a frightened caller has to interpret."""
    return web.Response(
        text=_languages_filled(_page("expired.html"), settings),
        status=410,
        content_type="text/html",
        headers=CALLER_HEADERS,
    )


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise json_error(401, "missing link token (Authorization: Bearer)")
    return token.strip()


def too_early_page(settings: Settings, opens_at: datetime) -> web.Response:
    """A screening appointment's link before its time: when to come back (early.js puts the
    time in the phone's own zone and the page's language)."""
    page = _languages_filled(_page("early.html"), settings)
    return web.Response(
        text=page.replace("{{opens_at}}", opens_at.isoformat()),
        status=403,
        content_type="text/html",
        headers=CALLER_HEADERS,
    )


async def link_refused(request: web.Request, exc: LinkNotUsable) -> None:
    """Forged, expired, replaced or after-the-end links are audited (without the token)."""
    logger.info("caller link refused: %s", exc)
    await request.app[AUDIT].record(
        "caller",
        "caller_link_refused",
        None,
        request.remote,
        reason=str(exc),
        route=request.path if not request.path.startswith("/c/") else "/c/<token>",
    )
    # A real session's link (expired, replaced): its call handler sees it and can resend.
    await request.app[SERVICE].link_refused(exc)


async def caller_session_or_gone(request: web.Request, service: SessionService) -> str:
    try:
        session = await service.caller_session(bearer_token(request))
    except TooEarly as exc:
        raise json_error(
            403, "the appointment has not started", opens_at=exc.opens_at.isoformat()
        ) from None
    except LinkNotUsable as exc:
        await link_refused(request, exc)
        raise json_error(410, "this link no longer works", detail=str(exc)) from None
    return session.id


@routes.get("/c/{token}")
async def caller_page(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    try:
        session = await service.open_link(
            request.match_info["token"], request.headers.get("User-Agent", "")
        )
    except TooEarly as exc:
        await link_refused(request, exc)
        return too_early_page(request.app[SETTINGS], exc.opens_at)
    except LinkNotUsable as exc:
        await link_refused(request, exc)
        return link_gone_page(request.app[SETTINGS])
    settings = request.app[SETTINGS]
    page = (
        _languages_filled(_page("caller.html"), settings)
        .replace("{{mode}}", invite(session.mode).media)
        .replace("{{invite}}", session.mode)
        .replace("{{language}}", session.language or "")
        .replace("{{force}}", html.escape(settings.force_name))
    )
    return web.Response(text=page, content_type="text/html", headers=CALLER_HEADERS)


@routes.get("/api/caller/config")
@documented("What the caller's page should share, and its ICE servers", response=CallerConfig)
async def caller_config(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    session = await service.store.get(session_id)
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "mode": invite(session.mode).media,
            "invite": session.mode,
            "uploads_first": invite(session.mode).uploads_first,
            "codec": settings.preferred_codec,
            "language": session.language,
            **ice_settings(request, session.id),
        }
    )


@routes.post("/api/caller/offer")
@documented(
    "The caller's SDP offer (after consent); returns the server's answer",
    request=CallerOffer,
    response=Answer,
)
async def caller_offer(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    token = bearer_token(request)
    await caller_session_or_gone(request, service)
    body = await parse_body(request, CallerOffer)
    try:
        answer = await service.caller_offer(
            token,
            RTCSessionDescription(body.sdp, body.type),
            body.consent_version,
            request.headers.get("User-Agent", ""),
            body.language,
        )
    except LinkNotUsable as exc:
        await link_refused(request, exc)
        raise json_error(410, "this link no longer works", detail=str(exc)) from None
    except ValueError as exc:
        raise json_error(400, "malformed SDP", detail=str(exc)) from None
    session_id = (await service.caller_session(token)).id
    await request.app[AUDIT].record(
        "caller", "collection.caller_connected", session_id, request.remote
    )
    return web.json_response({"sdp": answer.sdp, "type": answer.type})


@routes.post("/api/caller/end")
@documented("The caller stops sharing")
async def caller_end(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    await service.end(session_id, by="caller")
    await request.app[AUDIT].record("caller", "session_ended", session_id, request.remote)
    return web.json_response({"state": "ended"})


@routes.post("/api/caller/state")
@documented(
    "The caller's page reports its state (when it has no data channel)",
    request=CallerStateReport,
    status=204,
)
async def caller_state(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    body = await parse_body(request, CallerStateReport)
    await service.caller_state(session_id, body.model_dump())
    return web.Response(status=204)


@routes.post("/api/caller/fixes")
@documented(
    "A location fix, for a page without WebRTC (as it would send it on the data channel)",
    request=CallerFix,
    status=204,
)
async def caller_fix(request: web.Request) -> web.Response:
    service: SessionService = request.app[SERVICE]
    session_id = await caller_session_or_gone(request, service)
    try:
        body = await parse_body(request, CallerFix)
    except web.HTTPException as exc:
        # A refused fix counts wherever it came from, as on the data channel.
        await service.fix_refused(session_id, f"fix over HTTPS refused ({exc.status})")
        raise
    try:
        await service.caller_fix(session_id, body.model_dump())
    except InvalidFix as exc:
        raise json_error(422, "fix refused", detail=str(exc)) from None
    return web.Response(status=204)
