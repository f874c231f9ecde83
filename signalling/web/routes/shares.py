"""The call handler's side of sharing: share with an officer, make an officer link, withdraw.

Every share made or withdrawn is a disclosure in the audit trail, naming its recipient (and
the session's creator when someone else shares). Officer links go out on the same base URL
as caller links, under the same rule (``link_base``).
"""

from __future__ import annotations

from aiohttp import web

from signalling.calls.sessions import utcnow
from signalling.calls.shares import CreatedShareJson, ShareJson
from signalling.calls.sharing import AccessRefused, AlreadyShared, NotAnOfficer
from signalling.calls.state import ShareNotFound
from signalling.web.appkeys import OPERATOR, SHARING
from signalling.web.errors import json_error, parse_body
from signalling.web.models import ShareList, ShareRequest
from signalling.web.openapi import documented
from signalling.web.requests import audit, covering, link_base, session_or_404

routes = web.RouteTableDef()


@routes.post("/api/sessions/{session_id}/shares")
@documented(
    "Share the live session with an officer's account, or make a time-limited officer link",
    request=ShareRequest,
    response=CreatedShareJson,
    status=201,
)
async def create_share(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    body = await parse_body(request, ShareRequest)
    sharing = request.app[SHARING]
    by = request[OPERATOR].username
    link = None
    try:
        if body.kind == "account":
            assert body.username is not None  # the model requires it for accounts
            share = await sharing.share_with(session.id, body.username, by)
        else:
            minutes = body.minutes * 60 if body.minutes else None
            base = link_base(request)
            share, token = await sharing.create_link(session.id, body.label, by, minutes)
            link = f"{base.rstrip('/')}/o/{token}"
    except AccessRefused as exc:
        raise json_error(410, str(exc)) from None
    except NotAnOfficer as exc:
        raise json_error(422, "validation failed", fields={"username": str(exc)}) from None
    except AlreadyShared as exc:
        raise json_error(409, str(exc)) from None
    await audit(
        request,
        "disclosure.share_created",
        session.id,
        share_id=share.id,
        kind=share.kind,
        recipient=share.recipient,
        expires_at=share.expires_at.isoformat() if share.expires_at else None,
        **covering(request, session),
    )
    created: CreatedShareJson = {**share.view(utcnow()), "link": link}
    return web.json_response(created, status=201)


@routes.get("/api/sessions/{session_id}/shares")
@documented("The session's shares with officers, oldest first", response=ShareList)
async def list_shares(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    shares = await request.app[SHARING].shares(session.id)
    return web.json_response({"shares": [s.view(utcnow()) for s in shares]})


@routes.delete("/api/sessions/{session_id}/shares/{share_id}")
@documented(
    "Withdraw a share: the officer's access ends and their live view is cut off",
    response=ShareJson,
)
async def withdraw_share(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    try:
        share = await request.app[SHARING].withdraw(
            session.id, request.match_info["share_id"], request[OPERATOR].username
        )
    except ShareNotFound:
        raise json_error(404, "unknown share id") from None
    await audit(
        request,
        "disclosure.share_withdrawn",
        session.id,
        share_id=share.id,
        kind=share.kind,
        recipient=share.recipient,
        **covering(request, session),
    )
    return web.json_response(share.view(utcnow()))
