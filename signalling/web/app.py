"""Assembles the server from its configuration."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from pydantic import SecretStr

from recorder.evidence import EvidenceSettings
from retention.wiring import open_evidence
from signalling.audit.archive import AuditArchiver
from signalling.audit.trail import AuditTrail
from signalling.calls.caller_files import CallerFiles, StillsFloor
from signalling.calls.service import SessionService
from signalling.calls.sharing import ShareService
from signalling.calls.state import open_state_store
from signalling.calls.tokens import OfficerTokens
from signalling.calls.uploads import Uploads
from signalling.config import OperatorAccount, Settings
from signalling.disclosure.derivatives import DerivativeJobs
from signalling.disclosure.exports import ExportJobs
from signalling.operators.accounts import AccountBook
from signalling.operators.auth import COOKIE_NAME, OperatorDirectory
from signalling.operators.oidc import OidcClient
from signalling.operators.throttle import LoginThrottle
from signalling.ops.metrics import LiveCounters, Metrics
from signalling.ops.readiness import Readiness
from signalling.reports.takeup import TakeupFigures
from signalling.sms import sms_sender
from signalling.web.appkeys import (
    AUDIT,
    AUDIT_ARCHIVE,
    CLUSTER,
    DERIVATIVES,
    EVIDENCE,
    EXPORTS,
    FILES,
    METRICS,
    NODE,
    OIDC,
    OPERATOR,
    OPERATORS,
    READINESS,
    SECRET,
    SERVICE,
    SETTINGS,
    SHARING,
    STATE,
    TAKEUP,
    THROTTLE,
    WEBHOOKS,
)
from signalling.web.errors import LINK_PREFIXES, error_middleware, json_error, loggable_path
from signalling.web.permissions import rule_for
from signalling.web.routes import ROUTE_TABLES
from signalling.web.routing import cluster, heartbeat, routing_middleware
from signalling.webhooks import Webhooks
from streamserver import patches

logger = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
UPLOAD_EXPIRY_CHECK_S = 60.0

# Requests that change state from a cookie-authenticated console must carry this header,
# which a cross-site form cannot set (CSRF); caller routes use bearer tokens instead.
CSRF_HEADER = "X-Requested-With"
CSRF_EXEMPT = ("/api/caller/",)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SERVER_NAME = "SceneLink"  # not aiohttp's default, which names its and Python's versions


class RedactingAccessLogger(AbstractAccessLogger):
    """Caller and officer links carry their token in the path; the access log never sees it."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %s %.1fms',
            request.remote,
            request.method,
            loggable_path(request.path),
            response.status,
            time * 1000,
        )


# How every runner of the app must be set up (``scenelink serve`` and the tests alike).
RUNNER_OPTIONS: dict[str, Any] = {"access_log_class": RedactingAccessLogger}


def token_secret(settings: Settings) -> bytes:
    """A configured secret, else one generated once and kept with the data, so links
    survive a restart."""
    if settings.token_secret is not None:
        return settings.token_secret.get_secret_value().encode()
    path = settings.layout.token_key
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def operator_accounts(settings: Settings) -> list[OperatorAccount]:
    """With no accounts at all, one call handler with a one-off password, printed once."""
    if settings.operators or settings.accounts_path.exists():
        return settings.operators
    password = secrets.token_urlsafe(12)
    logger.warning(
        "no operators configured: sign in to the console as 'handler' with password %s "
        "(set SCENELINK_OPERATORS for real accounts)",
        password,
    )
    return [
        OperatorAccount(username="handler", password=SecretStr(password), roles=["call_handler"])
    ]


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request meets the permission table before its handler; refusals are audited."""
    cookie = request.cookies.get(COOKIE_NAME)
    operator = await request.app[OPERATORS].from_cookie(cookie) if cookie else None
    if operator is not None:
        request[OPERATOR] = operator
    route = request.match_info.route
    if route.resource is not None:  # None: no such route, the router answers 404
        rule = rule_for(request.method, route.resource.canonical)
        if rule is None:
            logger.error("no permission rule for %s %s", request.method, route.resource.canonical)
            raise json_error(403, "no access rule for this route")
        if isinstance(rule, frozenset):
            if operator is None:
                raise json_error(401, "sign in required")
            if not operator.has_any(rule):
                await request.app[AUDIT].record(
                    operator.username,
                    "access_denied",
                    request.match_info.get("session_id"),
                    request.remote,
                    method=request.method,
                    route=route.resource.canonical,
                )
                raise json_error(403, "your role does not allow this")
    if (
        request.method not in ("GET", "HEAD", "OPTIONS")
        and request.path.startswith("/api/")
        and not request.path.startswith(CSRF_EXEMPT)
        and request.headers.get(CSRF_HEADER) != "scenelink"
    ):
        await request.app[AUDIT].record(
            operator.username if operator else "anonymous",
            "csrf_refused",
            request.match_info.get("session_id"),
            request.remote,
            method=request.method,
            route=request.path,
        )
        raise json_error(403, f"missing {CSRF_HEADER} header (CSRF protection)")
    return await handler(request)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On every answer, errors and redirects (raised as exceptions) included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _add_security_headers(request, exc.headers)
        raise
    _add_security_headers(request, response.headers)
    return response


def _add_security_headers(request: web.Request, headers: MutableMapping[str, str]) -> None:
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.secure or request.headers.get("X-Forwarded-Proto") == "https":
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith(("/api/", *LINK_PREFIXES)):
        headers["Cache-Control"] = "no-store"  # personal data; link pages carry a token


async def name_server(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp sets Server while preparing any answer (500s of its own included): replace it."""
    response.headers["Server"] = SERVER_NAME


def _static_dir(package: str) -> Path:
    return Path(str(resources.files(package))) / "static"


async def console_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(Path(str(resources.files("operator_console"))) / "console.html")


async def to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")


def make_app(settings: Settings) -> web.Application:
    """The application: middleware and routes only. Building it touches nothing (no file,
    no connection, no patch): every resource is made at start-up by ``RESOURCES``, in order,
    and torn down at cleanup in reverse order (aiohttp's ``cleanup_ctx``)."""
    app = web.Application(
        middlewares=[security_headers, error_middleware, routing_middleware, access_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    for table in ROUTE_TABLES:
        app.add_routes(table)
    app.router.add_get("/", to_console)
    app.router.add_get("/console/", console_page)
    app.router.add_static("/console/static/", _static_dir("operator_console"))
    app.router.add_static("/caller/static/", _static_dir("web_client"))
    app.on_response_prepare.append(name_server)
    app.cleanup_ctx.extend(RESOURCES)
    return app


async def media_plane(app: web.Application) -> AsyncIterator[None]:
    patches.install()  # aiortc forwards encoded frames instead of decoding them
    yield


async def state_store(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = await asyncio.to_thread(
        open_state_store, settings.redis_url, settings.layout.state_file
    )
    app[STATE] = store
    yield
    await store.close()


async def operators(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    secret = await asyncio.to_thread(token_secret, settings)  # read once
    app[SECRET] = secret
    app[THROTTLE] = LoginThrottle(
        app[STATE],
        settings.login_failures_per_address,
        settings.login_failures_per_account,
        settings.login_window_s,
    )
    app[AUDIT] = AuditTrail(settings.layout.audit_trail)
    accounts = await asyncio.to_thread(operator_accounts, settings)
    app[OPERATORS] = OperatorDirectory(
        AccountBook(settings.accounts_path, accounts),
        secret + b":console",
        settings.console_login_ttl_s,
        app[STATE],
    )
    if settings.oidc_issuer is not None:
        app[OIDC] = OidcClient(settings, secret + b":oidc")
    yield


async def evidence(app: web.Application) -> AsyncIterator[None]:
    store = open_evidence(EvidenceSettings.from_settings(app[SETTINGS]))
    await store.start()
    app[EVIDENCE] = store
    yield
    await store.stop()  # after every recorder has closed (calls' cleanup runs first)


async def audit_archive(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    archiver = AuditArchiver(
        app[AUDIT], app[EVIDENCE].store, settings.node_name, settings.audit_retention_days
    )
    app[AUDIT_ARCHIVE] = archiver
    archiver.start()
    yield
    await archiver.stop()


async def webhooks(app: web.Application) -> AsyncIterator[None]:
    """Before the evidence, so that it is drained after it: a bundle the spool stores while
    the server stops is still announced."""
    hooks = Webhooks.from_settings(app[SETTINGS])
    if hooks is None:
        yield
        return
    hooks.start()
    app[WEBHOOKS] = hooks
    yield
    await hooks.close()


async def calls(app: web.Application) -> AsyncIterator[None]:
    settings, secret, evidence = app[SETTINGS], app[SECRET], app[EVIDENCE]
    hooks = app.get(WEBHOOKS)
    app[EXPORTS] = ExportJobs(
        evidence, settings.layout.exports_dir, hooks.export_ready if hooks else None
    )
    app[TAKEUP] = TakeupFigures(evidence.catalogue)
    app[SERVICE] = SessionService(
        settings,
        app[STATE],
        sms_sender(settings),
        evidence,
        app[AUDIT],
        registry=app[CLUSTER],
    )
    if hooks is not None:
        app[SERVICE].listeners.append(hooks.session_event)
        evidence.spool.on_stored = hooks.bundle_stored
    app[SHARING] = ShareService(
        app[SERVICE],
        OfficerTokens(secret, lifetime_s=settings.officer_link_ttl_s),
        app[OPERATORS].accounts,
    )
    yield
    await app[SHARING].close()
    await app[SERVICE].close()
    await app[EXPORTS].close()


async def caller_files(app: web.Application) -> AsyncIterator[None]:
    """Uploads staged outside the evidence; unfinished ones expire (checked every minute)."""
    settings = app[SETTINGS]
    uploads = Uploads(
        settings.layout.upload_staging,
        settings.upload_max_mb * 1024 * 1024,
        settings.upload_chunk_max_kb * 1024,
        settings.upload_idle_s,
    )
    await asyncio.to_thread(uploads.open)
    floor = StillsFloor(settings.stills_bitrate_floor_kbps, settings.stills_floor_s)
    app[FILES] = CallerFiles(app[SERVICE], uploads, settings.stills_interval_s, floor)

    async def expire() -> None:
        while True:
            await asyncio.sleep(UPLOAD_EXPIRY_CHECK_S)
            uploads.expire()

    task = asyncio.ensure_future(expire())
    yield
    task.cancel()


async def derivative_jobs(app: web.Application) -> AsyncIterator[None]:
    """Redacted copies and clips: a bounded worker pool; jobs still running at shutdown are
    cancelled (their partial files removed) before the evidence closes."""
    settings, evidence = app[SETTINGS], app[EVIDENCE]
    app[DERIVATIVES] = DerivativeJobs(
        evidence, settings.layout.exports_dir, settings.redaction_workers
    )
    yield
    await app[DERIVATIVES].close()


async def operations(app: web.Application) -> AsyncIterator[None]:
    """Readiness and metrics read everything above, so they come last."""
    settings, evidence = app[SETTINGS], app[EVIDENCE]
    registry = app[NODE].registry  # its accepting flag: off while the node drains
    readiness = Readiness(
        app[STATE],
        evidence,
        settings.redis_url is not None,
        settings.ready_timeout_s,
        lambda: registry.accepting,
    )
    app[READINESS] = readiness
    app[METRICS] = Metrics(LiveCounters(app[SERVICE], evidence, readiness))
    app[METRICS].start()
    yield
    await app[METRICS].stop()


# Made in this order at start-up, torn down in the reverse order at cleanup.
RESOURCES = (
    media_plane,
    state_store,
    operators,
    webhooks,
    evidence,
    audit_archive,
    cluster,
    calls,
    heartbeat,
    caller_files,
    derivative_jobs,
    operations,
)
