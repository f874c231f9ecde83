"""What every route module needs of a request: who is acting (and the audit record of it),
the session a route names, the services, and the base of links sent out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal, NotRequired, TypedDict

from aiohttp import web

from signalling.calls.service import SessionService
from signalling.calls.sessions import CallSession
from signalling.calls.sharing import AccessRefused
from signalling.calls.state import SessionNotFound
from signalling.calls.turn import ice_servers_for
from signalling.config import IceServer
from signalling.web.appkeys import (
    AUDIT,
    OPERATOR,
    SERVICE,
    SETTINGS,
    SHARE,
    SHARING,
)
from signalling.web.errors import json_error
from signalling.web.permissions import needs_share

# Set by the console on the requests its timers make by themselves (``consult``'s refresh).
REFRESH_HEADER = "X-SceneLink-Refresh"


async def audit(
    request: web.Request, action: str, session_id: str | None = None, **detail: Any
) -> None:
    """Record who did it (the signed-in operator) and from where, before answering. A
    ``consultation.*`` marked as a background refresh is not recorded again (``consult``)."""
    operator = request.get(OPERATOR)
    actor = operator.username if operator else "anonymous"
    trail = request.app[AUDIT]
    if action.startswith("consultation."):
        refresh = request.headers.get(REFRESH_HEADER) == "1"
        await trail.consult(actor, action, session_id, request.remote, refresh=refresh, **detail)
    else:
        await trail.record(actor, action, session_id, request.remote, **detail)


def query_date(request: web.Request, name: str) -> datetime | None:
    """The query parameter ``name`` as an ISO 8601 date or time (local time if it names no
    zone), None if absent; anything else is refused with a 400 naming it."""
    text = request.query.get(name)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise json_error(400, f"{name} is not an ISO date", fields={name: "ISO 8601"}) from None
    return when if when.tzinfo else when.astimezone()


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


async def session_or_404(request: web.Request) -> CallSession:
    """The session a route names, if this operator may see it: an officer with no other
    role only through a live share (kept on the request, ``SHARE``)."""
    try:
        session = await service_of(request).store.get(request.match_info["session_id"])
    except SessionNotFound:
        raise json_error(404, "unknown session id") from None
    operator = request.get(OPERATOR)
    if operator is not None and needs_share(operator.roles):
        try:
            request[SHARE] = await request.app[SHARING].for_officer(operator.username, session)
        except AccessRefused as exc:
            raise json_error(410 if exc.gone else 403, str(exc)) from None
    return session


class IceServerJson(TypedDict):
    """An ICE server as a browser's RTCPeerConnection takes it (no nulls)."""

    urls: list[str]
    username: NotRequired[str]
    credential: NotRequired[str]


def ice_server_json(server: IceServer) -> IceServerJson:
    shown: IceServerJson = {"urls": server.urls}
    if server.username is not None:
        shown["username"] = server.username
    if server.credential is not None:
        shown["credential"] = server.credential
    return shown


class IceSettingsJson(TypedDict):
    """What a browser's RTCPeerConnection is made with: its ICE servers and whether it may
    use only TURN relays."""

    ice_servers: list[IceServerJson]
    ice_transport_policy: Literal["all", "relay"]


def ice_settings(request: web.Request, peer: str) -> IceSettingsJson:
    """The static ICE servers and, with TURN configured, a TURN credential minted for this
    peer (``<session id>`` for its caller, a viewer's own label for a viewer)."""
    settings = request.app[SETTINGS]
    return {
        "ice_servers": [ice_server_json(s) for s in ice_servers_for(settings, peer)],
        "ice_transport_policy": settings.ice_transport_policy,
    }
