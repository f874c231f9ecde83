"""Playing a whole session back: its timeline, and its working copy (every part in one file).

The timeline is what the console draws under the player: parts with their wall-clock times
and offsets, the gaps, the events and fixes on the same clock. Opening it is a consultation
(audited once per opening; the console asks once). The working copy is made on first request
(``recorder.workingcopy``: remuxed, compared packet for packet with the master, kept once);
its making is audited as a ``derivative.working_copy`` record, and a playback once, at its
first request, as for the master's parts. The replay rules are the recordings' (``entry_or_404``).
"""

from __future__ import annotations

import asyncio
import logging

import av
from aiohttp import web

from recorder.catalogue import CatalogueEntry
from recorder.derivatives import MasterChanged
from recorder.timeline import Timeline, WorkingCopyLink, build_timeline
from recorder.workingcopy import CopyMismatch, copy_format
from signalling.web.appkeys import EVIDENCE, OPERATOR
from signalling.web.errors import json_error
from signalling.web.openapi import documented
from signalling.web.ranges import file_response, opens_playback
from signalling.web.requests import audit
from signalling.web.routes.evidence import entry_or_404

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()


def working_copy_link(entry: CatalogueEntry) -> WorkingCopyLink | None:
    if not entry.segments:
        return None
    return {
        "url": f"/api/recordings/{entry.session_id}/working-copy",
        "content_type": copy_format(entry.codecs).content_type,
    }


@routes.get("/api/recordings/{session_id}/timeline")
@documented(
    "One timeline over every part of a recorded session: parts with wall-clock times and "
    "offsets, gaps, events (connection, gaps, camera, chat, photos, snapshots) and fixes, on "
    "the working copy's clock",
    response=Timeline,
)
async def timeline(request: web.Request) -> web.Response:
    entry = await entry_or_404(request)
    catalogue = request.app[EVIDENCE].catalogue
    try:
        events = await asyncio.to_thread(catalogue.events, entry.session_id)
        fixes = await asyncio.to_thread(catalogue.trail, entry.session_id)
    except KeyError:
        raise json_error(404, "no longer in the evidence store") from None
    await audit(request, "consultation.timeline", entry.session_id)
    body = build_timeline(entry.session_id, entry.segments, events, fixes, working_copy_link(entry))
    return web.json_response(body)


@routes.get("/api/recordings/{session_id}/working-copy")
@documented(
    "The whole session in one file for playback: every part remuxed (never re-encoded) on one "
    "clock, MP4 for H.264 or WebM for VP8; made and checked against the master on first "
    "request; byte ranges as for the parts; a playback is audited once, at its first request"
)
async def working_copy(request: web.Request) -> web.StreamResponse:
    entry = await entry_or_404(request)
    if not entry.segments:
        raise json_error(404, "no media was recorded for this session")
    operator = request[OPERATOR].username
    try:
        path, record, made = await request.app[EVIDENCE].working_copies.get(entry, operator)
    except KeyError:
        raise json_error(404, "no longer in the evidence store") from None
    except (CopyMismatch, MasterChanged, av.FFmpegError) as exc:
        logger.error("working copy of %s not made: %s", entry.session_id, exc)
        raise json_error(500, "the working copy could not be made", detail=str(exc)) from None
    if made:
        await audit(
            request,
            "derivative.working_copy",
            entry.session_id,
            file=record["file"],
            sha256=record["sha256"],
            master_chain_head=record["master_chain_head"],
        )
    if opens_playback(request):
        await audit(request, "consultation.playback", entry.session_id, part="working-copy")
    return await file_response(request, path, record["content_type"], etag=record["sha256"])
