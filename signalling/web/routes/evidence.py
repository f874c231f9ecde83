"""Investigators' routes: search the stored evidence, play it back, download and export it.

Everything here reads the evidence store (never the live session state), so it keeps working
after a node's spool is pruned or lost. Every search, view, download and export is audited.
A call handler's search and playback reach only the sessions they took part in, for a while
after (``may_replay``).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from recorder.catalogue import Area, CatalogueEntry, Near, SearchQuery
from recorder.export import ExportRequest, build_package
from signalling.calls.place import parse_place
from signalling.calls.sessions import utcnow
from signalling.disclosure.exports import ExportJob, ExportJson
from signalling.sms.phone import InvalidPhoneNumber, mask, normalise_mobile
from signalling.web.appkeys import AUDIT, EVIDENCE, EXPORTS, OPERATOR, SETTINGS
from signalling.web.derivative_jobs import derivative_folders
from signalling.web.errors import json_error, parse_body
from signalling.web.models import ExportBody, RecordingList, RecordingView, Trail
from signalling.web.openapi import documented
from signalling.web.permissions import replays_own_only
from signalling.web.ranges import media_response, opens_playback
from signalling.web.requests import audit, query_date

routes = web.RouteTableDef()
MEDIA_TYPE = "video/x-matroska"
MAX_NEAR_RADIUS_M = 50_000.0  # a search "near" a place, not across a county


def _phone(request: web.Request, text: str) -> str:
    try:
        return normalise_mobile(text, request.app[SETTINGS].phone_region)
    except InvalidPhoneNumber as exc:
        raise json_error(422, "invalid phone number", fields={"phone": str(exc)}) from None


def search_query(request: web.Request) -> SearchQuery:
    q = request.query
    area = None
    if q.get("area"):
        try:
            area = Area.parse(q["area"])
        except ValueError as exc:
            raise json_error(400, "bad area", fields={"area": str(exc)}) from None
    return SearchQuery(
        incident_ref=q.get("incident_ref") or None,
        phone=_phone(request, q["phone"]) if q.get("phone") else None,
        since=query_date(request, "from"),
        until=query_date(request, "to"),
        area=area,
        near=_near(q.get("near"), q.get("radius_m")),
    )


def _near(place: str | None, radius: str | None) -> Near | None:
    """``near`` (an OS grid reference or "lat, lon") within ``radius_m`` metres."""
    if not place:
        if radius:
            raise json_error(400, "bad near", fields={"near": "radius_m needs a place"})
        return None
    try:
        lat, lon = parse_place(place)
    except ValueError as exc:
        raise json_error(400, "bad grid reference", fields={"near": str(exc)}) from None
    try:
        radius_m = float(radius or "nan")
    except ValueError:
        radius_m = -1.0
    if not 0 < radius_m <= MAX_NEAR_RADIUS_M:  # NaN too: no radius given
        raise json_error(
            400,
            "bad radius",
            fields={"radius_m": f"metres, more than 0 and at most {MAX_NEAR_RADIUS_M:g}"},
        )
    return Near(lat, lon, radius_m)


def recording_view(entry: CatalogueEntry) -> dict[str, Any]:
    base = f"/api/recordings/{entry.session_id}"
    summary = entry.summary()
    return summary | {
        "duration_s": entry.media_seconds,
        "parts": [
            {
                "url": f"{base}/media/{s['name']}",
                "content_type": MEDIA_TYPE,
                "duration_s": s["duration_s"],
                "first_frame_wall_clock": s["first_frame_wall_clock"],
            }
            for s in summary["segments"]
        ],
        "trail_url": f"{base}/trail",
        "timeline_url": f"{base}/timeline",
        "bundle_url": f"{base}/bundle",
    }


def may_replay(request: web.Request, entry: CatalogueEntry) -> bool:
    """Store-wide roles replay anything; a call handler what they took part in, until
    ``handler_replay_hours`` after the session ended (or, never ended, started)."""
    operator = request[OPERATOR]
    if not replays_own_only(operator.roles):
        return True
    window = timedelta(hours=request.app[SETTINGS].handler_replay_hours)
    return (
        operator.username in entry.participants
        and utcnow() <= (entry.ended_at or entry.started_at) + window
    )


async def entry_or_404(request: web.Request) -> CatalogueEntry:
    """The recording a route names, if this operator may replay it (refusals are audited)."""
    catalogue = request.app[EVIDENCE].catalogue
    try:
        entry = await asyncio.to_thread(catalogue.get, request.match_info["session_id"])
    except KeyError:
        raise json_error(404, "no recording for this session in the evidence store") from None
    if not may_replay(request, entry):
        await audit(
            request, "access_denied", entry.session_id, method=request.method, route=request.path
        )
        raise json_error(
            403,
            "call handlers replay only the sessions they took part in",
            detail=f"for {request.app[SETTINGS].handler_replay_hours:g} hours after the session",
        )
    return entry


async def audit_extracts(
    request: web.Request, entries: list[CatalogueEntry]
) -> dict[str, list[dict[str, Any]]]:
    trail = request.app[AUDIT]
    return {e.session_id: await trail.search(session_id=e.session_id, limit=10**6) for e in entries}


@routes.get("/api/recordings")
@documented(
    "Search recorded sessions (incident_ref, phone, from, to, area=south,west,north,east, "
    "near=an OS grid reference or 'lat, lon' with radius_m)",
    response=RecordingList,
)
async def recordings(request: web.Request) -> web.Response:
    query = search_query(request)
    found = await asyncio.to_thread(request.app[EVIDENCE].catalogue.search, query)
    found = [e for e in found if may_replay(request, e)]
    await audit(
        request,
        "consultation.search",
        incident_ref=query.incident_ref,
        phone=mask(query.phone) if query.phone else None,
        area=request.query.get("area"),
        near=request.query.get("near"),
        radius_m=request.query.get("radius_m"),
        results=len(found),
    )
    return web.json_response({"recordings": [recording_view(e) for e in found]})


@routes.get("/api/recordings/{session_id}")
@documented(
    "One recorded session's catalogue entry, as the search lists it", response=RecordingView
)
async def recording(request: web.Request) -> web.Response:
    entry = await entry_or_404(request)
    await audit(request, "consultation.view", entry.session_id)
    return web.json_response(recording_view(entry))


@routes.get("/api/recordings/{session_id}/media/{name}")
@documented(
    "One recorded segment, byte for byte as stored; one byte range per request (206, "
    "Accept-Ranges: bytes, 416 outside the part); a playback is audited once, at its first "
    "request (no Range, or a range from byte 0)"
)
async def recording_media(request: web.Request) -> web.Response:
    entry = await entry_or_404(request)
    name = request.match_info["name"]
    try:
        data = await asyncio.to_thread(
            request.app[EVIDENCE].catalogue.media, entry.session_id, name
        )
    except KeyError:
        raise json_error(404, "no such part in the evidence store") from None
    sha256 = next((s.sha256 for s in entry.segments if s.name == name), None)
    response = media_response(request, data, MEDIA_TYPE, etag=sha256)
    if opens_playback(request):
        await audit(request, "consultation.playback", entry.session_id, part=name)
    return response


@routes.get("/api/recordings/{session_id}/trail")
@documented("The recorded location trail, as stored", response=Trail)
async def recording_trail(request: web.Request) -> web.Response:
    entry = await entry_or_404(request)
    try:
        fixes = await asyncio.to_thread(request.app[EVIDENCE].catalogue.trail, entry.session_id)
    except KeyError:
        raise json_error(404, "no longer in the evidence store") from None
    await audit(request, "consultation.trail", entry.session_id)
    return web.json_response({"fixes": fixes})


@routes.get("/api/recordings/{session_id}/bundle")
@documented("Download the original bundle with its verification material (a zip)")
async def recording_bundle(request: web.Request) -> web.StreamResponse:
    entry = await entry_or_404(request)
    operator = request[OPERATOR]
    evidence = request.app[EVIDENCE]
    extracts = await audit_extracts(request, [entry])
    await audit(request, "disclosure.download", entry.session_id, recipient=operator.username)
    request_ = ExportRequest(
        f"download-{entry.session_id}", operator.username, operator.username, "download", utcnow()
    )
    with tempfile.TemporaryDirectory(prefix="scenelink-download-") as tmp:
        path = Path(tmp) / f"scenelink-{entry.session_id}.zip"
        await asyncio.to_thread(
            build_package, evidence.store, evidence.signer, request_, [entry], extracts, path
        )
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="{path.name}"',
                "Content-Length": str(path.stat().st_size),
            }
        )
        await response.prepare(request)
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                await response.write(chunk)
        await response.write_eof()
    return response


@routes.post("/api/exports")
@documented(
    "Export a disclosure package: sessions by id, or every recording for a phone number "
    "(right of access); runs in the background",
    request=ExportBody,
    response=ExportJson,
    status=202,
)
async def start_export(request: web.Request) -> web.Response:
    body = await parse_body(request, ExportBody)
    catalogue = request.app[EVIDENCE].catalogue
    if body.phone:
        query = SearchQuery(phone=_phone(request, body.phone))
        entries = await asyncio.to_thread(catalogue.search, query)
    else:
        entries = []
        for session_id in body.session_ids:
            try:
                entries.append(await asyncio.to_thread(catalogue.get, session_id))
            except KeyError:
                raise json_error(
                    404, "no recording for this session", fields={"session_ids": session_id}
                ) from None
    if not entries:
        raise json_error(404, "nothing to export: no recordings match")
    derivatives = derivative_folders(request, body.derivative_ids, {e.session_id for e in entries})
    extracts = await audit_extracts(request, entries)
    operator = request[OPERATOR]
    job = request.app[EXPORTS].start(
        operator.username, body.recipient, body.purpose, entries, extracts, derivatives
    )
    for entry in entries:
        await audit(
            request,
            "disclosure.export",
            entry.session_id,
            export_id=job.request.export_id,
            recipient=body.recipient,
            purpose=body.purpose,
            derivative_ids=body.derivative_ids,
        )
    return web.json_response(job.view(), status=202)


def job_or_404(request: web.Request) -> ExportJob:
    try:
        job = request.app[EXPORTS].get(request.match_info["export_id"])
    except KeyError:
        raise json_error(404, "unknown export id") from None
    if job.request.requested_by != request[OPERATOR].username:
        raise json_error(403, "this export belongs to another user")
    return job


@routes.get("/api/exports/{export_id}")
@documented("An export's progress", response=ExportJson)
async def export_status(request: web.Request) -> web.Response:
    return web.json_response(job_or_404(request).view())


@routes.get("/api/exports/{export_id}/download")
@documented("The finished disclosure package (a zip)")
async def export_download(request: web.Request) -> web.FileResponse:
    job = job_or_404(request)
    if job.state != "done":
        raise json_error(409, f"export is {job.state}", detail=job.error)
    for session_id in job.session_ids:
        await audit(
            request, "disclosure.export_downloaded", session_id, export_id=job.request.export_id
        )
    return web.FileResponse(
        job.path,
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="{job.path.name}"',
        },
    )


@routes.get("/.well-known/jwks.json")
@documented(
    "The public keys that sign evidence manifests (JWKS), for offline verification: this "
    "node's and every node's published in the evidence store"
)
async def jwks(request: web.Request) -> web.Response:
    keys = await asyncio.to_thread(request.app[EVIDENCE].trusted_jwks)
    return web.json_response(keys, headers={"Cache-Control": "public, max-age=3600"})


@routes.get("/api/evidence/status")
@documented("The evidence store, the upload backlog and the last fixity check")
async def evidence_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[EVIDENCE].stats())
