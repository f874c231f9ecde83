"""Take-up figures for supervisors (and admins): JSON or a CSV download, audited."""

from __future__ import annotations

import asyncio

from aiohttp import web

from signalling.reports.takeup import TakeupReport, report_csv
from signalling.web.appkeys import TAKEUP
from signalling.web.errors import json_error
from signalling.web.openapi import documented
from signalling.web.requests import audit, query_date

routes = web.RouteTableDef()


@routes.get("/api/reports/takeup")
@documented(
    "Take-up figures (supervisors, admins) for sessions started between from and to (ISO dates "
    "or times, inclusive; either may be left out): links sent, opened, agreed, video, location "
    "only, declined, failed with the reasons, seconds from SMS to first frame (p50, p95); all "
    "sessions, then by browser and OS; format=json (default) or csv. No personal data",
    response=TakeupReport,
)
async def takeup(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise json_error(400, "format must be json or csv", fields={"format": "json or csv"})
    since, until = query_date(request, "from"), query_date(request, "to")
    if since and until and since > until:
        raise json_error(400, "from is after to", fields={"from": "on or before to"})
    report = await asyncio.to_thread(request.app[TAKEUP].report, since, until)
    await audit(
        request,
        "consultation.takeup_report",
        since=request.query.get("from") or None,
        until=request.query.get("to") or None,
        format=fmt,
    )
    if fmt == "csv":
        headers = {"Content-Disposition": 'attachment; filename="scenelink-takeup.csv"'}
        return web.Response(text=report_csv(report), content_type="text/csv", headers=headers)
    return web.json_response(report)
