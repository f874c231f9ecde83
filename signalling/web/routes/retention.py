"""Retention routes: the review queue, a session's state, links, holds and the admin's shortening.

Each decision is recorded in the session's ledger in the evidence store (shared by every
node), the store's locks are brought in line, and the decision is audited with its reason.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any, TypedDict

from aiohttp import web
from pydantic import BaseModel, Field

from recorder.store import LockRefused
from retention.book import LockReport, RetentionBook, RetentionError, UnknownSession
from retention.ledger import DisposalUnderway, LedgerError
from retention.schedule import ScheduleError
from retention.state import RetentionState
from signalling.calls.state import SessionNotFound
from signalling.web.appkeys import EVIDENCE, OPERATOR
from signalling.web.errors import json_error, parse_body
from signalling.web.openapi import documented
from signalling.web.requests import audit, service_of

routes = web.RouteTableDef()


class LinkRequest(BaseModel):
    reference: str = Field(min_length=1, max_length=80, description="Crime or incident ref")
    class_name: str = Field(min_length=1, max_length=64, description="A schedule class")
    reason: str = Field(min_length=3, max_length=1000)
    events: dict[str, date] = Field(
        default_factory=dict, description="Dated events the class waits for (decision, ...)"
    )
    removed: bool = Field(default=False, description="Remove this link instead")


class HoldRequest(BaseModel):
    kind: str = Field(min_length=1, max_length=32, description="court, ccrc, iopc, ...")
    reason: str = Field(min_length=3, max_length=1000)


class ReasonRequest(BaseModel):
    reason: str = Field(min_length=3, max_length=1000)


class RetentionView(BaseModel):
    session_id: str
    started_at: str
    classes: list[str]
    disposal_at: str | None = Field(description="None: kept (a hold, or an awaited event)")
    rule: str
    next_review: str | None
    links: list[dict[str, Any]]
    holds: list[dict[str, Any]]
    requirements: list[dict[str, Any]]


class DecisionView(BaseModel):
    state: RetentionView
    locks: dict[str, Any] | None = None
    hold_id: str | None = None


class QueueView(BaseModel):
    now: str
    items: list[dict[str, Any]]
    classes: list[dict[str, Any]]
    hold_kinds: list[str]


class LinkJson(TypedDict):
    reference: str
    class_name: str
    events: dict[str, str]  # event name -> ISO date
    linked_at: str
    linked_by: str
    reason: str


class HoldJson(TypedDict):
    hold_id: str
    kind: str
    placed_at: str
    placed_by: str
    reason: str


class RequirementJson(TypedDict):
    source: str  # the link's reference, or "unassessed"
    class_name: str
    until: str | None  # None: until an event is recorded
    rule: str


class RetentionJson(TypedDict):
    """A session's retention as the API shows it (``RetentionView`` documents it)."""

    session_id: str
    started_at: str
    classes: list[str]
    disposal_at: str | None
    rule: str
    next_review: str | None
    links: list[LinkJson]
    holds: list[HoldJson]
    requirements: list[RequirementJson]


class LocksJson(TypedDict):
    versions: int
    extended: int
    legal_hold: bool
    locked_beyond_rules: int


def iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def state_view(state: RetentionState) -> RetentionJson:
    return {
        "session_id": state.session_id,
        "started_at": state.started_at.isoformat(),
        "classes": state.class_names,
        "disposal_at": iso(state.disposal_at),
        "rule": state.governing.rule,
        "next_review": iso(state.next_review),
        "links": [
            {
                "reference": link.reference,
                "class_name": link.class_name,
                "events": link.events,
                "linked_at": link.linked_at.isoformat(),
                "linked_by": link.linked_by,
                "reason": link.reason,
            }
            for link in state.links
        ],
        "holds": [
            {
                "hold_id": h.hold_id,
                "kind": h.kind,
                "placed_at": h.placed_at.isoformat(),
                "placed_by": h.placed_by,
                "reason": h.reason,
            }
            for h in state.holds
        ],
        "requirements": [
            {"source": r.source, "class_name": r.class_name, "until": iso(r.until), "rule": r.rule}
            for r in state.requirements
        ],
    }


def locks_view(report: LockReport) -> LocksJson:
    return {
        "versions": report.versions,
        "extended": report.extended,
        "legal_hold": report.legal_hold,
        "locked_beyond_rules": report.locked_beyond_rules,
    }


def book_of(request: web.Request) -> RetentionBook:
    return request.app[EVIDENCE].retention


async def live_start(request: web.Request, session_id: str) -> datetime | None:
    """When a session not yet in the store began (it may still be live)."""
    try:
        session = await service_of(request).store.get(session_id)
    except SessionNotFound:
        return None
    started: datetime = session.created_at
    return started


async def decide(request: web.Request, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking book call, turning its refusals into precise 4xx answers."""
    try:
        return await asyncio.to_thread(action, *args, **kwargs)
    except UnknownSession:
        raise json_error(404, "unknown session id") from None
    except (RetentionError, ScheduleError) as exc:
        raise json_error(422, "retention rules refuse this", detail=str(exc)) from None
    except LockRefused as exc:
        raise json_error(409, "the evidence store refuses this", detail=str(exc)) from None
    except DisposalUnderway as exc:
        raise json_error(409, "the session is being disposed of", detail=str(exc)) from None
    except LedgerError as exc:
        raise json_error(409, "retention ledger is broken", detail=str(exc)) from None


@routes.get("/api/retention/queue")
@documented("Retention review queue: overdue, expiring soon, due for review", response=QueueView)
async def retention_queue(request: web.Request) -> web.Response:
    book = book_of(request)
    items = await decide(request, book.queue)
    schedule = book.schedule
    return web.json_response(
        {
            "now": book.clock().isoformat(),
            "items": [
                {"why": i.why, "due": i.due.isoformat(), **state_view(i.state)} for i in items
            ],
            "classes": [
                {"name": c.name, "title": c.title, "events": list(c.events)}
                for c in schedule.classes.values()
            ],
            "hold_kinds": list(schedule.hold_kinds),
        }
    )


@routes.get("/api/retention/{session_id}")
@documented("A session's retention: class, links, holds, disposal date", response=RetentionView)
async def retention_state(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    book = book_of(request)
    state = await decide(request, book.state, session_id, await live_start(request, session_id))
    await audit(request, "consultation.retention_state", session_id)
    return web.json_response(state_view(state))


@routes.post("/api/retention/{session_id}/links")
@documented(
    "Link a session to a crime or incident reference with a class (or remove a link)",
    request=LinkRequest,
    response=DecisionView,
)
async def retention_link(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    body = await parse_body(request, LinkRequest)
    events = {name: day.isoformat() for name, day in body.events.items()}
    state, report = await decide(
        request,
        book_of(request).link,
        session_id,
        body.reference,
        body.class_name,
        body.reason,
        request[OPERATOR].username,
        events,
        body.removed,
        await live_start(request, session_id),
    )
    await audit(
        request,
        "alteration.retention_unlink" if body.removed else "alteration.retention_link",
        session_id,
        reference=body.reference,
        retention_class=body.class_name,
        events=events,
        reason=body.reason,
        disposal_at=iso(state.disposal_at),
        locks_extended=report.extended,
    )
    return web.json_response({"state": state_view(state), "locks": locks_view(report)})


@routes.post("/api/retention/{session_id}/holds")
@documented(
    "Place a hold (court, CCRC, IOPC, inquiry, access request): nothing is disposed of",
    request=HoldRequest,
    response=DecisionView,
    status=201,
)
async def retention_hold(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    body = await parse_body(request, HoldRequest)
    state, report, hold_id = await decide(
        request,
        book_of(request).hold,
        session_id,
        body.kind,
        body.reason,
        request[OPERATOR].username,
        await live_start(request, session_id),
    )
    await audit(
        request,
        "alteration.retention_hold",
        session_id,
        hold_id=hold_id,
        kind=body.kind,
        reason=body.reason,
    )
    return web.json_response(
        {"state": state_view(state), "locks": locks_view(report), "hold_id": hold_id}, status=201
    )


@routes.post("/api/retention/{session_id}/holds/{hold_id}/release")
@documented("Release a hold, with the reason", request=ReasonRequest, response=DecisionView)
async def retention_release(request: web.Request) -> web.Response:
    session_id, hold_id = request.match_info["session_id"], request.match_info["hold_id"]
    body = await parse_body(request, ReasonRequest)
    state, report = await decide(
        request,
        book_of(request).release,
        session_id,
        hold_id,
        body.reason,
        request[OPERATOR].username,
    )
    await audit(
        request, "alteration.retention_release", session_id, hold_id=hold_id, reason=body.reason
    )
    return web.json_response({"state": state_view(state), "locks": locks_view(report)})


@routes.post("/api/retention/{session_id}/shorten")
@documented(
    "Bring retain-until dates down to what the rules now allow (admins; GOVERNANCE only)",
    request=ReasonRequest,
    response=DecisionView,
)
async def retention_shorten(request: web.Request) -> web.Response:
    session_id = request.match_info["session_id"]
    body = await parse_body(request, ReasonRequest)
    state, count = await decide(
        request, book_of(request).shorten, session_id, body.reason, request[OPERATOR].username
    )
    await audit(
        request,
        "alteration.retention_shortened",
        session_id,
        reason=body.reason,
        retain_until=iso(state.disposal_at),
        versions=count,
    )
    return web.json_response({"state": state_view(state)})
