"""The OpenAPI document of the JSON API, built from the routes themselves so it cannot drift.

Each API handler carries its summary and pydantic models (``@documented``); a test fails
when an /api route is registered without them. Who may call a route is said once, in the
permission table (``permissions.RULES``): the document's security schemes come from it.
Messages that are not HTTP requests (WebSockets, the caller's data channel) are described by
``Channel``s, under the top-level ``x-channels`` and, for a WebSocket, its route's
``x-messages``; the event webhook's payloads are the OpenAPI 3.1 ``webhooks``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, get_args, get_type_hints

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from signalling.web.permissions import Rule, rule_for

Handler = TypeVar("Handler", bound=Callable[..., Any])
# A request or answer body: a pydantic model (requests are validated with it) or the
# TypedDict the code builds the answer as, so that the document is what is sent.
Body = type[BaseModel] | type[Any]
_DOC_ATTR = "__scenelink_api_doc__"


@dataclass(frozen=True, slots=True)
class ApiDoc:
    summary: str
    request: type[BaseModel] | None
    response: Body | None
    status: int
    media_type: str  # of the answer: JSON unless said (the metrics are Prometheus text)


def documented(
    summary: str,
    *,
    request: type[BaseModel] | None = None,
    response: Body | None = None,
    status: int = 200,
    media_type: str = "application/json",
) -> Callable[[Handler], Handler]:
    def mark(handler: Handler) -> Handler:
        setattr(handler, _DOC_ATTR, ApiDoc(summary, request, response, status, media_type))
        return handler

    return mark


def doc_of(handler: Any) -> ApiDoc | None:
    return getattr(handler, _DOC_ATTR, None)


# A union of message TypedDicts has no name of its own: it is given one.
Messages = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class Channel:
    """Messages that are not HTTP requests, each way: ``sends`` from the server to the
    client, ``receives`` from the client; ``route`` is the WebSocket's, None for the caller's
    data channel."""

    name: str
    summary: str
    route: str | None
    sends: Messages
    receives: Messages | None


def build_openapi(
    app: web.Application,
    title: str,
    version: str,
    channels: Sequence[Channel] = (),
    webhooks: Sequence[type[Any]] = (),
) -> dict[str, Any]:
    """``webhooks``: the event webhook's payloads, each a TypedDict named by its ``event``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}

    def ref(model: Body, name: str | None = None) -> dict[str, str]:
        template = "#/components/schemas/{model}"
        if isinstance(model, type) and issubclass(model, BaseModel):
            schema = model.model_json_schema(ref_template=template)
        else:
            schema = TypeAdapter(model).json_schema(ref_template=template, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        name = name or model.__name__
        schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    for route in app.router.routes():
        path = route.resource.canonical if route.resource else ""
        doc = doc_of(route.handler)
        if doc is None or route.method == "HEAD":  # every /api route has one (a test)
            continue
        operation: dict[str, Any] = {"summary": doc.summary, "responses": {}}
        operation["security"] = security(rule_for(route.method, path))
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if params:
            operation["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if doc.request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(doc.request)}},
            }
        ok: dict[str, Any] = {"description": "OK"}
        if doc.response is not None:
            ok["content"] = {doc.media_type: {"schema": ref(doc.response)}}
        elif doc.media_type != "application/json":
            ok["content"] = {doc.media_type: {"schema": {"type": "string"}}}
        operation["responses"][str(doc.status)] = ok
        operation["responses"]["4XX"] = {
            "description": "The request was refused; the body names the problem",
            "content": {"application/json": {"schema": ref(ErrorBody)}},
        }
        paths.setdefault(path, {})[route.method.lower()] = operation

    described: dict[str, Any] = {}
    for channel in channels:
        messages = {"server_to_client": ref(channel.sends[1], channel.sends[0])}
        if channel.receives is not None:
            messages["client_to_server"] = ref(channel.receives[1], channel.receives[0])
        described[channel.name] = {"summary": channel.summary, "route": channel.route, **messages}
        if channel.route is not None and channel.route in paths:
            paths[channel.route]["get"]["x-messages"] = messages
    hooks = {}
    for payload in webhooks:
        (event,) = get_args(get_type_hints(payload)["event"])
        hooks[event] = {
            "post": {
                "summary": (payload.__doc__ or event).strip(),
                "parameters": [
                    {
                        "name": "X-SceneLink-Signature",
                        "in": "header",
                        "required": True,
                        "description": "sha256=<hex HMAC-SHA256 of the exact body, keyed with "
                        "SCENELINK_WEBHOOK_SECRET>",
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(payload)}},
                },
                "responses": {"2XX": {"description": "Received; any other answer is retried"}},
            }
        }

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "webhooks": hooks,
        "x-channels": described,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "consoleCookie": {"type": "apiKey", "in": "cookie", "name": "scenelink_session"},
                "callerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "officerLinkToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "metricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "SCENELINK_METRICS_TOKEN",
                },
            },
        },
    }


def security(rule: Rule | None) -> list[dict[str, list[str]]]:
    """The OpenAPI security requirement of a permission rule."""
    if rule == "caller":
        return [{"callerToken": []}]
    if rule == "officer_link":
        return [{"officerLinkToken": []}]
    if rule == "metrics":
        return [{"metricsToken": []}]
    if isinstance(rule, frozenset):
        return [{"consoleCookie": []}]
    return []


class ErrorBody(BaseModel):
    error: str
    fields: dict[str, str] | None = None
    detail: str | None = None
