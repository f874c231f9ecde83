"""Every refusal is a JSON body naming the problem (a page, where a person navigated there),
and is logged; nothing else changes."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from signalling.audit.trail import AuditUnavailable
from signalling.safejson import BadJson, parse_json
from signalling.web.appkeys import SETTINGS

logger = logging.getLogger(__name__)
Model = TypeVar("Model", bound=BaseModel)


def json_error(status: int, error: str, **extra: Any) -> web.HTTPException:
    body = json.dumps({"error": error, **{k: v for k, v in extra.items() if v is not None}})
    return _error(status, body, "application/json")


def page_error(status: int, page: str) -> web.HTTPException:
    """The same refusal as an HTML page, for a browser that navigated to the URL."""
    error = _error(status, page, "text/html")
    error.scenelink_page = True  # type: ignore[attr-defined]  # see error_middleware
    return error


def _error(status: int, text: str, content_type: str) -> web.HTTPException:
    cls = {c.status_code: c for c in _STATUS_CLASSES}[status]
    if cls is web.HTTPRequestEntityTooLarge:
        return web.HTTPRequestEntityTooLarge(
            max_size=0, actual_size=0, text=text, content_type=content_type
        )
    return cls(text=text, content_type=content_type)


_STATUS_CLASSES: tuple[type[web.HTTPException], ...] = (
    web.HTTPBadRequest,
    web.HTTPUnauthorized,
    web.HTTPForbidden,
    web.HTTPNotFound,
    web.HTTPConflict,
    web.HTTPGone,
    web.HTTPRequestEntityTooLarge,
    web.HTTPUnsupportedMediaType,
    web.HTTPUnprocessableEntity,
    web.HTTPTooManyRequests,
    web.HTTPInternalServerError,
    web.HTTPBadGateway,
    web.HTTPServiceUnavailable,
)


async def parse_body(request: web.Request, model: type[Model]) -> Model:
    """Read and validate a JSON body; 415/400/413/422 with the problem named."""
    if request.content_type != "application/json":
        raise json_error(415, "expected a JSON body (Content-Type: application/json)")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise json_error(
            413,
            "request body too large",
            detail=f"limit {request.app[SETTINGS].max_body_bytes} bytes",
        ) from None
    try:
        data = parse_json(raw)
    except BadJson as exc:
        raise json_error(400, "body is not valid JSON", detail=str(exc)) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        fields = {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()}
        raise json_error(422, "validation failed", fields=fields) from None


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            logger.info(
                "%s %s refused: %s %s",
                request.method,
                loggable_path(request.path),
                exc.status,
                exc.text if exc.content_type == "application/json" else exc.reason,
            )
            # API clients get JSON, whatever raised: only a page made on purpose for a
            # browser (``page_error``) goes out as it is.
            ours = exc.content_type == "application/json" or getattr(exc, "scenelink_page", False)
            if request.path.startswith("/api/") and not ours:
                # Rewritten in place, so the headers aiohttp gave it go out too (a 405's Allow).
                exc.text = json.dumps({"error": exc.reason.lower()})
                exc.content_type = "application/json"
        raise
    except AuditUnavailable as exc:
        # Nothing is done that the trail cannot record (DPA 2018 s.62).
        raise json_error(
            503, "the audit trail cannot be written; try again", detail=str(exc)
        ) from None
    except Exception:
        logger.exception("%s %s failed", request.method, loggable_path(request.path))
        if request.path.startswith("/api/"):
            raise json_error(500, "internal error") from None
        raise


LINK_PREFIXES = ("/c/", "/o/")  # caller and officer links: the path is a credential


def loggable_path(path: str) -> str:
    """A link's path carries its token: never log it."""
    for prefix in LINK_PREFIXES:
        if path.startswith(prefix):
            return prefix + "<token>"
    return path
