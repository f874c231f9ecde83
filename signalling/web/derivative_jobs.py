"""Which redaction and clip jobs a request may reach: only the asker's own (as exports)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from signalling.disclosure.derivatives import DerivativeJob
from signalling.web.appkeys import DERIVATIVES, OPERATOR
from signalling.web.errors import json_error


def derivative_of(request: web.Request, derivative_id: str, field: str) -> DerivativeJob:
    """A job of the signed-in operator's; 404 for an unknown id, 403 for someone else's."""
    try:
        job = request.app[DERIVATIVES].get(derivative_id)
    except KeyError:
        raise json_error(404, "unknown derivative id", fields={field: derivative_id}) from None
    if job.request.made_by != request[OPERATOR].username:
        raise json_error(403, "this derivative belongs to another user")
    return job


def derivative_folders(
    request: web.Request, derivative_ids: list[str], session_ids: set[str]
) -> list[Path]:
    """Finished derivatives of these sessions, to carry in a disclosure package."""
    folders = []
    for derivative_id in derivative_ids:
        job = derivative_of(request, derivative_id, "derivative_ids")
        if job.state != "done":
            raise json_error(
                409,
                f"derivative {derivative_id} is {job.state}",
                fields={"derivative_ids": derivative_id},
            )
        if job.request.session_id not in session_ids:
            raise json_error(
                400,
                "a derivative's session must be exported with it",
                fields={"derivative_ids": derivative_id},
            )
        folders.append(job.folder)
    return folders
