"""The HTTP routes, one module per concern; each only turns requests into calls of the
HTTP-free domain (``signalling.calls``, ``signalling.operators``) and answers."""

from aiohttp import web

from signalling.web.routes import (
    accounts,
    audit,
    caller,
    chat,
    docs,
    evidence,
    files,
    officer,
    ops,
    playback,
    redactions,
    reports,
    retention,
    sessions,
    shares,
    signin,
    sso,
)

ROUTE_TABLES: tuple[web.RouteTableDef, ...] = (
    signin.routes,
    accounts.routes,
    sessions.routes,
    audit.routes,
    docs.routes,
    caller.routes,
    files.routes,
    chat.routes,
    evidence.routes,
    playback.routes,
    redactions.routes,
    shares.routes,
    officer.routes,
    retention.routes,
    reports.routes,
    sso.routes,
    ops.routes,
)
