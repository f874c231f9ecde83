"""The audit trail's search and one session's extract (supervisors)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from signalling.audit.extract import AuditExtract, extract_csv, make_extract
from signalling.audit.trail import first_broken
from signalling.calls.sessions import utcnow
from signalling.web.appkeys import AUDIT, CLUSTER, OPERATOR
from signalling.web.errors import json_error
from signalling.web.fanout import forwarded_by, from_other_workers
from signalling.web.models import AuditSearch
from signalling.web.openapi import documented
from signalling.web.requests import audit, query_date

routes = web.RouteTableDef()
SEARCH_LIMIT = 500  # records in one answer, the latest (each trail gives as many)


@routes.get("/api/audit")
@documented(
    "Search the audit trail (supervisors): session_id, actor, action, from, to (ISO dates or "
    "times, inclusive); says whether the chain is intact",
    response=AuditSearch,
)
async def audit_search(request: web.Request) -> web.Response:
    trail = request.app[AUDIT]
    query = request.query
    since, until = query_date(request, "from"), query_date(request, "to")
    if since and until and since > until:
        raise json_error(400, "from is after to", fields={"from": "on or before to"})
    records = await trail.search(
        query.get("session_id") or None,
        query.get("actor") or None,
        query.get("action") or None,
        since=since,
        until=until,
    )
    broken = first_broken(await asyncio.to_thread(trail.read))
    # Each worker chains its own trail: a search reads every live worker's (one hop).
    node = request.app[CLUSTER].worker_id
    nodes: list[dict[str, Any]] = [
        {"node": node, "answered": True, "chain_intact": broken is None, "first_broken_seq": broken}
    ]
    for record in records:
        record["node"] = node
    for worker, answer in await from_other_workers(request):
        if answer is None:
            nodes.append(
                {"node": worker, "answered": False, "chain_intact": None, "first_broken_seq": None}
            )
        else:
            records += answer["records"]
            nodes += answer["nodes"]
    records = sorted(records, key=lambda r: str(r["at"]))[-SEARCH_LIMIT:]
    if forwarded_by(request) is None:  # one consultation, where it was asked
        await audit(
            request,
            "consultation.audit_search",
            query.get("session_id") or None,
            person=query.get("actor") or None,
            what=query.get("action") or None,
            since=query.get("from") or None,
            until=query.get("to") or None,
        )
    intact = all(n["chain_intact"] for n in nodes if n["answered"])
    return web.json_response(
        {"records": records, "chain_intact": intact, "first_broken_seq": broken, "nodes": nodes}
    )


@routes.get("/api/audit/extract")
@documented(
    "One session's audit records with the chain proof (supervisors): session_id, "
    "format=json (default, with the proof) or csv; a download, itself audited",
    response=AuditExtract,
)
async def audit_extract(request: web.Request) -> web.Response:
    session_id = request.query.get("session_id", "").strip()
    fmt = request.query.get("format", "json")
    if not session_id:
        raise json_error(400, "session_id is required", fields={"session_id": "required"})
    if fmt not in ("json", "csv"):
        raise json_error(400, "format must be json or csv", fields={"format": "json or csv"})
    trail = await asyncio.to_thread(request.app[AUDIT].read)
    made = make_extract(trail, session_id, utcnow().isoformat(), request[OPERATOR].username)
    if not made["records"]:
        raise json_error(404, "no audit records for this session")
    await audit(
        request, "disclosure.audit_extract", session_id, format=fmt, records=len(made["records"])
    )
    name = f"audit-{session_id}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "csv":
        return web.Response(text=extract_csv(made), content_type="text/csv", headers=headers)
    return web.json_response(made, headers=headers)
