"""The audit trail's search (supervisors)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from signalling.audit.trail import first_broken
from signalling.web.appkeys import AUDIT
from signalling.web.models import AuditSearch
from signalling.web.openapi import documented
from signalling.web.requests import audit

routes = web.RouteTableDef()


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
