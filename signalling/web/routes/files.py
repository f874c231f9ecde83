"""Photos, videos and stills: the caller's resumable uploads (authenticated by the link's
token), the console's list of a live session's files (from its spool folder), the files
themselves, snapshots and requests for a photo, and a recording's files from the evidence store
(for investigators, under the recordings' replay rules). Every file served is a consultation in
the audit trail."""

from __future__ import annotations

import asyncio
import json
import logging
import re

from aiohttp import web

from signalling.calls.caller_files import CallerFiles, NoLiveVideo
from signalling.calls.files import SessionFile, kept_names, list_files, session_files
from signalling.calls.service import SessionEnded
from signalling.calls.uploads import Upload, UploadRefused
from signalling.web.appkeys import AUDIT, EVIDENCE, FILES, OPERATOR, SERVICE
from signalling.web.errors import json_error, parse_body
from signalling.web.models import FileList, StillsPace, StillsSwitch, UploadStart, UploadStatus
from signalling.web.openapi import documented
from signalling.web.requests import audit, service_of, session_or_404
from signalling.web.routes.caller import caller_session_or_gone
from signalling.web.routes.evidence import entry_or_404

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def _status(
    files: CallerFiles, upload: Upload, file: SessionFile | None = None, status: int = 200
) -> web.Response:
    body: dict[str, object] = {
        "upload_id": upload.id,
        "size": upload.size,
        "received": upload.received,
        "chunk_max": files.uploads.chunk_max,
    }
    if file is not None:
        body["file"] = file
    return web.json_response(body, status=status)


def _refused(session_id: str, filename: str, exc: UploadRefused) -> web.HTTPException:
    """Every refusal is logged (the page shows its message to the caller)."""
    logger.info("session %s: upload of %r refused: %s", session_id, filename, exc)
    return json_error(exc.status, str(exc), received=exc.received)


async def _upload(request: web.Request) -> tuple[CallerFiles, Upload]:
    """The upload a route names; one already kept answers 201 with its file again (the page
    lost the answer to its last piece and asks, or sends it again)."""
    session_id = await caller_session_or_gone(request, request.app[SERVICE])
    files = request.app[FILES]
    upload_id = request.match_info["upload_id"]
    kept = files.kept(session_id, upload_id)
    if kept is not None:
        status = {"upload_id": upload_id, "size": kept["size"], "received": kept["size"]}
        body = status | {"chunk_max": files.uploads.chunk_max, "file": kept}
        raise web.HTTPCreated(text=json.dumps(body), content_type="application/json")
    try:
        return files, files.uploads.get(session_id, upload_id)
    except UploadRefused as exc:
        raise _refused(session_id, "", exc) from None


@routes.post("/api/caller/uploads")
@documented(
    "Start sending a photo or video (then PUT its bytes in pieces)",
    request=UploadStart,
    response=UploadStatus,
    status=201,
)
async def start_upload(request: web.Request) -> web.Response:
    session_id = await caller_session_or_gone(request, request.app[SERVICE])
    body = await parse_body(request, UploadStart)
    files = request.app[FILES]
    try:
        await files.service.live_recorder(session_id)
        upload = files.uploads.start(session_id, body.filename, body.size, body.origin)
    except SessionEnded:
        raise json_error(410, "the session has ended") from None
    except UploadRefused as exc:
        raise _refused(session_id, body.filename, exc) from None
    return _status(files, upload, status=201)


@routes.get("/api/caller/uploads/{upload_id}")
@documented("How much of an upload has arrived (to resume it)", response=UploadStatus)
async def upload_status(request: web.Request) -> web.Response:
    files, upload = await _upload(request)
    return _status(files, upload)


@routes.put("/api/caller/uploads/{upload_id}")
@documented(
    "One piece of an upload, in order (Content-Range: bytes first-last/size); 201 with the "
    "file once the last piece is in and kept",
    response=UploadStatus,
)
async def upload_piece(request: web.Request) -> web.Response:
    files, upload = await _upload(request)
    match = CONTENT_RANGE.fullmatch(request.headers.get("Content-Range", ""))
    if match is None:
        raise json_error(400, "Content-Range must be 'bytes first-last/size'")
    first, last, total = (int(g) for g in match.groups())
    length = last - first + 1
    if length <= 0 or length > files.uploads.chunk_max:
        raise json_error(
            400 if length <= 0 else 413,
            f"a piece holds 1 to {files.uploads.chunk_max} bytes",
            received=upload.received,
        )
    if request.content_length != length:
        raise json_error(400, "the body's length differs from its Content-Range")
    try:
        data = await request.content.readexactly(length)
    except asyncio.IncompleteReadError:
        raise json_error(
            400,
            "the piece was cut short: ask how much arrived and resume",
            received=upload.received,
        ) from None
    try:
        file = await files.put(upload, first, total, data)
    except UploadRefused as exc:
        raise _refused(upload.session_id, upload.filename, exc) from None
    return _status(files, upload, file, 201 if file is not None else 200)


@routes.post("/api/caller/stills")
@documented(
    "The caller's page sends stills instead of video (or goes back to video); the answer "
    "says how often to send one",
    request=StillsSwitch,
    response=StillsPace,
)
async def caller_stills(request: web.Request) -> web.Response:
    session_id = await caller_session_or_gone(request, request.app[SERVICE])
    body = await parse_body(request, StillsSwitch)
    files = request.app[FILES]
    try:
        await files.stills(session_id, body.on, body.reason)
    except SessionEnded:
        raise json_error(410, "the session has ended") from None
    return web.json_response({"interval_s": files.stills_interval_s})


@routes.get("/api/sessions/{session_id}/files")
@documented("The photos, videos, stills and snapshots of a session", response=FileList)
async def live_files(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    files = request.app[FILES]
    listing, stills = await asyncio.to_thread(session_files, files.folder(session.id))
    await audit(request, "consultation.files", session.id)
    return web.json_response(
        {"files": listing, "stills": stills, "stills_interval_s": files.stills_interval_s}
    )


@routes.get("/api/sessions/{session_id}/files/{name}")
@documented("One file of a session as kept in its evidence (an original or a derivative)")
async def get_file(request: web.Request) -> web.StreamResponse:
    session = await session_or_404(request)
    folder = request.app[FILES].folder(session.id)
    name = request.match_info["name"]
    if name not in await asyncio.to_thread(kept_names, folder):
        raise json_error(404, "no such file in this session")
    await audit(request, "consultation.file", session.id, name=name)
    return web.FileResponse(
        folder / name, headers={"Content-Disposition": f'inline; filename="{name}"'}
    )


@routes.post("/api/sessions/{session_id}/snapshot")
@documented(
    "A still of the live picture (the next keyframe), kept as evidence",
    response=SessionFile,
    status=201,
)
async def take_snapshot(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    operator = request[OPERATOR].username
    try:
        file = await request.app[FILES].snapshot(session.id, operator)
    except SessionEnded:
        raise json_error(409, "the session has ended") from None
    except NoLiveVideo as exc:
        raise json_error(409, str(exc)) from None
    await audit(request, "collection.snapshot", session.id, name=file["name"])
    return web.json_response(file, status=201)


@routes.post("/api/sessions/{session_id}/photo-request")
@documented("Ask the caller's page for a full-resolution photo", status=202)
async def request_photo(request: web.Request) -> web.Response:
    session = await session_or_404(request)
    if session.state == "ended":
        raise json_error(409, "the session has ended")
    media = service_of(request).live_media(session.id)
    if media is None or media.closed:
        raise json_error(409, "the caller's page is not connected")
    await media.send_to_caller(json.dumps({"type": "photo_request"}))
    await request.app[AUDIT].record(
        request[OPERATOR].username, "collection.photo_requested", session.id, request.remote
    )
    return web.Response(status=202)


@routes.get("/api/recordings/{session_id}/files")
@documented("The photos, videos, stills and snapshots of a recording, as stored", response=FileList)
async def recording_files(request: web.Request) -> web.Response:
    entry = await entry_or_404(request)
    catalogue = request.app[EVIDENCE].catalogue
    try:
        events = await asyncio.to_thread(catalogue.events, entry.session_id)
    except KeyError:
        raise json_error(404, "no longer in the evidence store") from None
    derivatives = [k for k in entry.kept if "role" in k]
    listing, stills = list_files(events, derivatives)
    await audit(request, "consultation.files", entry.session_id)
    return web.json_response(
        {
            "files": listing,
            "stills": stills,
            "stills_interval_s": request.app[FILES].stills_interval_s,
        }
    )


@routes.get("/api/recordings/{session_id}/files/{name}")
@documented("One original or derivative of a recording, byte for byte as stored")
async def recording_file(request: web.Request) -> web.Response:
    entry = await entry_or_404(request)
    name = request.match_info["name"]
    try:
        data = await asyncio.to_thread(
            request.app[EVIDENCE].catalogue.kept_file, entry.session_id, name
        )
    except KeyError:
        raise json_error(404, "no such file in this recording") from None
    [kept] = [k for k in entry.kept if k["name"] == name]
    await audit(request, "consultation.file", entry.session_id, name=name)
    content_type = str(kept.get("content_type", "image/jpeg"))
    return web.Response(
        body=data,
        content_type=content_type,
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            "ETag": f'"{kept["sha256"]}"',
        },
    )
