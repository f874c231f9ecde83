"""The console's single sign-on routes: off unless an OpenID Connect provider is configured.

A provider identity becomes the same console cookie a password gives, named by the ID
token's ``preferred_username`` (else ``sub``), with the roles its groups map to. A name
that is also a local account's is refused, so one name in the audit trail is one person.
"""

from __future__ import annotations

import logging
from importlib import resources

from aiohttp import web

from signalling.operators.auth import Operator
from signalling.operators.oidc import (
    FLOW_TTL_S,
    Flow,
    OidcClient,
    ProviderUnreachable,
    SignInRefused,
)
from signalling.web.appkeys import AUDIT, OIDC, OPERATORS, SETTINGS
from signalling.web.errors import json_error, page_error
from signalling.web.models import SsoConfig
from signalling.web.openapi import documented
from signalling.web.requests import base_url
from signalling.web.routes.signin import set_console_cookie

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

FLOW_COOKIE = "scenelink_oidc"
FLOW_PATH = "/api/oidc/"


def client_of(request: web.Request) -> OidcClient:
    client = request.app.get(OIDC)
    if client is None:
        raise json_error(404, "single sign-on is not configured")
    return client


async def refuse(
    request: web.Request, status: int, action: str, reason: str, actor: str = "anonymous"
) -> web.HTTPException:
    logger.warning("single sign-on refused for %s from %s: %s", actor, request.remote, reason)
    await request.app[AUDIT].record(actor, action, None, request.remote, via="oidc", reason=reason)
    return refusal(request, status, action, "single sign-on refused", reason)


REFUSAL_WORDS = {
    "sign_in_failed": "Signing in through your organisation's account did not complete. "
    "Please try again.",
    "sign_in_refused": "Your organisation's account is not set up to use SceneLink.",
    "provider_unreachable": "Your organisation's sign-in service cannot be reached just now. "
    "Please try again, or sign in with a password if you have one.",
}


def refusal(
    request: web.Request, status: int, kind: str, error: str, detail: str | None = None
) -> web.HTTPException:
    """A page in plain words for a browser back from the provider (the detail stays in the
    log and the audit trail); the JSON error for anything else."""
    if "text/html" not in request.headers.get("Accept", ""):
        return json_error(status, error, detail=detail)
    page = resources.files("operator_console").joinpath("signin-refused.html")
    text = page.read_text(encoding="utf-8")
    return page_error(
        status, text.replace("{reason}", kind).replace("{message}", REFUSAL_WORDS[kind])
    )


@routes.get("/api/oidc/config")
@documented("Whether the console offers single sign-on", response=SsoConfig)
async def sso_config(request: web.Request) -> web.Response:
    client = request.app.get(OIDC)
    return web.json_response(
        {"enabled": client is not None, "provider": client.provider_name if client else None}
    )


@routes.get("/api/oidc/login")
@documented("Start single sign-on: a redirect to the identity provider")
async def sso_login(request: web.Request) -> web.Response:
    client = client_of(request)
    redirect_uri = request.app[SETTINGS].oidc_redirect_url or (
        base_url(request) + "/api/oidc/callback"
    )
    flow = Flow.start(redirect_uri)
    try:
        location = await client.authorization_url(flow)
    except ProviderUnreachable as exc:
        logger.warning("identity provider unreachable: %s", exc)
        unreachable = "the identity provider cannot be reached"
        raise refusal(request, 502, "provider_unreachable", unreachable) from None
    response = web.HTTPFound(location)
    # Lax, not Strict: the provider's redirect back is a cross-site navigation.
    response.set_cookie(
        FLOW_COOKIE,
        client.seal(flow),
        httponly=True,
        samesite="Lax",
        secure=redirect_uri.startswith("https"),
        max_age=FLOW_TTL_S,
        path=FLOW_PATH,
    )
    raise response


@routes.get("/api/oidc/callback")
@documented("The identity provider's redirect back: signs the operator in")
async def sso_callback(request: web.Request) -> web.Response:
    client = client_of(request)
    query = request.query
    if "error" in query:
        raise await refuse(request, 403, "sign_in_failed", f"provider said {query['error'][:64]}")
    try:
        flow = client.unseal(request.cookies.get(FLOW_COOKIE), query.get("state", ""))
    except SignInRefused as exc:
        raise await refuse(request, 400, "sign_in_failed", str(exc)) from None
    try:
        identity = await client.sign_in(query.get("code", ""), flow)
    except SignInRefused as exc:
        raise await refuse(request, 401, "sign_in_failed", str(exc)) from None
    except ProviderUnreachable as exc:
        logger.warning("identity provider unreachable: %s", exc)
        unreachable = "the identity provider cannot be reached"
        raise refusal(request, 502, "provider_unreachable", unreachable) from None
    if not identity.roles:
        reason = f"no SceneLink role for groups {list(identity.groups)}"
        raise await refuse(request, 403, "sign_in_refused", reason, identity.username)
    local = {a.username.casefold() for a in request.app[OPERATORS].accounts.all()}
    if identity.username.casefold() in local:
        reason = "the name belongs to a local account"
        raise await refuse(request, 403, "sign_in_refused", reason, identity.username)
    operator = Operator(identity.username, identity.roles, via="oidc")
    logger.info("%s signed in through single sign-on from %s", operator.username, request.remote)
    await request.app[AUDIT].record(
        operator.username, "sign_in", None, request.remote, via="oidc", subject=identity.subject
    )
    response = web.HTTPFound("/console/")
    set_console_cookie(request, response, operator)
    response.del_cookie(FLOW_COOKIE, path=FLOW_PATH)
    raise response
