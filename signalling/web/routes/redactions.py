"""Redacted copies and clips of a recording, for disclosure: face proposals, the jobs that
make them, their progress, cancelling, and their files. Every step is audited; a job and its
files belong to whoever asked for it (as exports do)."""

from __future__ import annotations

from aiohttp import web

from recorder.catalogue import CatalogueEntry
from recorder.derivatives import media_end_s
from recorder.redaction import Box, Mute, Plan, PlanError, Track, check_range
from signalling.disclosure.derivatives import DerivativeJson
from signalling.web.appkeys import DERIVATIVES, OPERATOR
from signalling.web.derivative_jobs import derivative_of
from signalling.web.errors import json_error, parse_body
from signalling.web.models import (
    ClipRequest,
    FacesFound,
    FacesRequest,
    RangeBody,
    RedactionRequest,
)
from signalling.web.openapi import documented
from signalling.web.ranges import file_response, opens_playback
from signalling.web.requests import audit
from signalling.web.routes.evidence import entry_or_404

routes = web.RouteTableDef()


def plan_error(exc: PlanError) -> web.HTTPException:
    return json_error(400, str(exc), fields={exc.field: str(exc)})


def time_range(entry: CatalogueEntry, body: RangeBody) -> tuple[float, float]:
    """The range asked for; no end, or an end past the recording's, is the recording's end."""
    end = media_end_s(entry.segments)
    wanted = end if body.end_s is None else min(body.end_s, end)
    try:
        check_range(body.start_s, wanted, end)
    except PlanError as exc:
        raise plan_error(exc) from None
    return body.start_s, wanted


def required_reason(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise json_error(
            400,
            "a reason is required: it goes in the log disclosed with the copy",
            fields={"reason": "required"},
        )
    return reason


@routes.post("/api/recordings/{session_id}/faces")
@documented(
    "Propose face tracks in a time range of a recording (OpenCV's bundled detector), as "
    "regions a redaction can take",
    request=FacesRequest,
    response=FacesFound,
)
async def propose_faces(request: web.Request) -> web.Response:
    body = await parse_body(request, FacesRequest)
    entry = await entry_or_404(request)
    start, end = time_range(entry, body)
    tracks = await request.app[DERIVATIVES].propose_faces(entry, start, end, body.every_s)
    await audit(
        request, "consultation.faces", entry.session_id, start_s=start, end_s=end, found=len(tracks)
    )
    return web.json_response({"tracks": [t.json() for t in tracks]})


@routes.post("/api/recordings/{session_id}/redactions")
@documented(
    "Make a redacted copy of a time range: regions blurred (boxes at keyframes, moved "
    "linearly between them) and audio ranges muted, with a required reason; runs in the "
    "background (a new H.264 MP4 derivative; the master never changes)",
    request=RedactionRequest,
    response=DerivativeJson,
    status=202,
)
async def start_redaction(request: web.Request) -> web.Response:
    body = await parse_body(request, RedactionRequest)
    entry = await entry_or_404(request)
    start, end = time_range(entry, body)
    plan = Plan(
        start,
        end,
        tuple(
            Track(tuple(Box(k.t, k.x, k.y, k.w, k.h) for k in t.keyframes), t.label or "region")
            for t in body.tracks
        ),
        tuple(Mute(m.start_s, m.end_s) for m in body.mutes),
    )
    try:
        plan.check(media_end_s(entry.segments))
    except PlanError as exc:
        raise plan_error(exc) from None
    reason = required_reason(body.reason)
    job = request.app[DERIVATIVES].start_redaction(request[OPERATOR].username, entry, plan, reason)
    await audit(
        request,
        "disclosure.redaction",
        entry.session_id,
        derivative_id=job.derivative_id,
        reason=reason,
        start_s=start,
        end_s=end,
        regions=len(plan.tracks),
        mutes=len(plan.mutes),
    )
    return web.json_response(job.view(), status=202)


@routes.post("/api/recordings/{session_id}/clips")
@documented(
    "Make a clip of a time range: the master's packets remuxed, never re-encoded, cut at "
    "the keyframe at or before the start; runs in the background",
    request=ClipRequest,
    response=DerivativeJson,
    status=202,
)
async def start_clip(request: web.Request) -> web.Response:
    body = await parse_body(request, ClipRequest)
    entry = await entry_or_404(request)
    start, end = time_range(entry, body)
    reason = required_reason(body.reason)
    job = request.app[DERIVATIVES].start_clip(request[OPERATOR].username, entry, start, end, reason)
    await audit(
        request,
        "disclosure.clip",
        entry.session_id,
        derivative_id=job.derivative_id,
        reason=reason,
        start_s=start,
        end_s=end,
    )
    return web.json_response(job.view(), status=202)


@routes.get("/api/derivatives/{derivative_id}")
@documented("A redaction's or clip's progress, and its files once done", response=DerivativeJson)
async def derivative_status(request: web.Request) -> web.Response:
    job = derivative_of(request, request.match_info["derivative_id"], "derivative_id")
    return web.json_response(job.view())


@routes.post("/api/derivatives/{derivative_id}/cancel")
@documented("Cancel a redaction or clip still queued or running", response=DerivativeJson)
async def cancel_derivative(request: web.Request) -> web.Response:
    job = derivative_of(request, request.match_info["derivative_id"], "derivative_id")
    if job.state not in ("queued", "running"):
        raise json_error(409, f"the {job.kind} is already {job.state}")
    request.app[DERIVATIVES].cancel(job)
    await audit(
        request,
        f"disclosure.{job.kind}_cancelled",
        job.request.session_id,
        derivative_id=job.derivative_id,
    )
    return web.json_response(job.view())


@routes.get("/api/derivatives/{derivative_id}/files/{name}")
@documented(
    "A finished redacted copy's or clip's file (or its derivative-log.json), in byte ranges; "
    "audited once per download or playback"
)
async def derivative_file(request: web.Request) -> web.StreamResponse:
    job = derivative_of(request, request.match_info["derivative_id"], "derivative_id")
    if job.state != "done":
        raise json_error(409, f"the {job.kind} is {job.state}", detail=job.error)
    name = request.match_info["name"]
    try:
        path, output = job.file(name)
    except KeyError:
        raise json_error(404, f"no file {name!r} in this {job.kind}") from None
    if opens_playback(request):
        await audit(
            request,
            "disclosure.derivative_downloaded",
            job.request.session_id,
            derivative_id=job.derivative_id,
            file=name,
        )
    content_type = output["content_type"] if output else "application/json"
    return await file_response(
        request, path, content_type, etag=output["sha256"] if output else None
    )
