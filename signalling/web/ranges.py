"""Byte ranges (RFC 9110 §14) for evidence media, in memory or in a file: what lets a player seek.

The evidence store hands back a part's bytes, not a file, so ``web.FileResponse``'s own range
support does not apply; every media route answers through ``media_response`` instead. One
byte range per request (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) as aiohttp parses it
(``request.http_range``): 206 with ``Content-Range``; 416 with ``Content-Range: bytes */size``
when the range lies outside the part; 400 for a header that is not one byte range (several
ranges, other units, last before first); 200 with the whole part when there is no Range, or
an ``If-Range`` names another version. Every answer carries ``Accept-Ranges: bytes``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiohttp import web

from signalling.web.errors import json_error

ACCEPT_RANGES = {"Accept-Ranges": "bytes"}
CHUNK = 1 << 20


def byte_range(request: web.Request, size: int) -> tuple[int, int] | None:
    """The ``[start, stop)`` a request's Range asks of ``size`` bytes; None for the whole.

    Raises 400 for a malformed Range header and 416 for one that no byte of the part meets.
    """
    header = request.headers.get("Range")
    if header is None:
        return None
    try:
        asked = request.http_range
    except ValueError:
        raise json_error(
            400,
            "Range must be one byte range: bytes=first-last, bytes=first- or bytes=-length",
            detail=header[:100],
        ) from None
    if _is_suffix(header):  # the last n bytes (aiohttp reads "bytes=-0" as "from byte 0")
        length = -int(asked.start or 0)
        start, stop = (size - min(length, size), size) if length else (size, size)
    else:
        start = int(asked.start or 0)
        stop = size if asked.stop is None else min(int(asked.stop), size)
    if start >= size:
        raise web.HTTPRequestRangeNotSatisfiable(
            text=json.dumps({"error": "the range asked for lies outside the part", "bytes": size}),
            content_type="application/json",
            headers={"Content-Range": f"bytes */{size}", **ACCEPT_RANGES},
        )
    return start, stop


def _is_suffix(header: str) -> bool:
    return header.partition("=")[2].strip().startswith("-")


def _answer(
    request: web.Request, size: int, etag: str | None
) -> tuple[int, int, int, dict[str, str]]:
    """(status, start, stop, headers): the whole (200) or the range asked for (206)."""
    headers = dict(ACCEPT_RANGES)
    if etag:
        headers["ETag"] = f'"{etag}"'
    wanted = byte_range(request, size)
    if_range = request.headers.get("If-Range")
    if wanted is None or (if_range is not None and (not etag or if_range != f'"{etag}"')):
        return 200, 0, size, headers
    start, stop = wanted
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return 206, start, stop, headers


def media_response(
    request: web.Request, data: bytes, content_type: str, etag: str | None = None
) -> web.Response:
    """The whole part (200) or the range asked for (206), always with Accept-Ranges."""
    status, start, stop, headers = _answer(request, len(data), etag)
    return web.Response(
        status=status, body=data[start:stop], content_type=content_type, headers=headers
    )


async def file_response(
    request: web.Request, path: Path, content_type: str, etag: str | None = None
) -> web.StreamResponse:
    """As ``media_response`` for a file too large to hold in memory (a session's working
    copy): the bytes asked for are read off the event loop and streamed."""
    size = (await asyncio.to_thread(path.stat)).st_size
    status, start, stop, headers = _answer(request, size, etag)
    headers |= {"Content-Type": content_type, "Content-Length": str(stop - start)}
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    with path.open("rb") as f:
        f.seek(start)
        left = stop - start
        while left > 0 and (chunk := await asyncio.to_thread(f.read, min(CHUNK, left))):
            await response.write(chunk)
            left -= len(chunk)
    await response.write_eof()
    return response


def opens_playback(request: web.Request) -> bool:
    """Whether this request starts a playback (and so is a consultation to audit).

    A player asks for one part many times while it plays and seeks; its first request has no
    Range or a range from byte 0 (``bytes=0-``), the others start later or ask for the tail.
    So one playback is one audit record, and a download of the whole part is one too.
    """
    header = request.headers.get("Range")
    if header is None:
        return True
    try:
        return request.http_range.start == 0 and not _is_suffix(header)
    except ValueError:
        return False
