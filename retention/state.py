"""What the rules require of one session now: its ledger folded against the schedule.

Pure functions of (ledger entries, schedule, now), so every rule can be tested with a clock
the test controls. The effective disposal date is the latest of the unassessed period and
every live link's requirement; any hold, or any link still waiting for an event, keeps the
session indefinitely (``disposal_at`` None).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from recorder.chain import GENESIS

from .schedule import LINKED, SESSION_START, UNASSESSED, Schedule

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Link:
    """A crime or incident reference the session is linked to, as last stated."""

    reference: str
    class_name: str
    events: dict[str, str]  # event name -> ISO date
    linked_at: datetime
    linked_by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Hold:
    hold_id: str
    kind: str
    placed_at: datetime
    placed_by: str
    reason: str


@dataclass(frozen=True, slots=True)
class Requirement:
    """How long one link (or the unassessed period) keeps the session, and by which rule."""

    source: str  # the link's reference, or "unassessed"
    class_name: str
    until: datetime | None  # None: until an event is recorded
    rule: str


@dataclass(frozen=True, slots=True)
class RetentionState:
    session_id: str
    started_at: datetime
    links: tuple[Link, ...]
    holds: tuple[Hold, ...]
    requirements: tuple[Requirement, ...]
    governing: Requirement
    disposal_at: datetime | None
    next_review: datetime | None
    head: str
    claimed_at: datetime | None = None  # a disposal run's claim, the latest (ledger "disposal")

    @property
    def class_names(self) -> list[str]:
        return sorted({link.class_name for link in self.links}) or [UNASSESSED]

    def lock_target(self, schedule: Schedule, now: datetime) -> datetime:
        """The retain-until date the store should hold: the disposal date, or a horizon that
        each retention run pushes on while the rules keep the session indefinitely."""
        if self.disposal_at is not None:
            return self.disposal_at
        return schedule.indefinite_lock.after(now)


def requirement(
    schedule: Schedule, class_name: str, source: str, started: datetime, link: Link | None
) -> Requirement:
    rule = schedule.get(class_name)
    ends: list[datetime] = []
    for term in rule.until:
        if term.anchor == SESSION_START:
            anchor: datetime | None = started
        elif term.anchor == LINKED:
            anchor = link.linked_at if link else started
        else:
            recorded = link.events.get(term.anchor) if link else None
            anchor = day_start(date.fromisoformat(recorded)) if recorded else None
        if anchor is None and not term.optional:
            return Requirement(source, class_name, None, f"{class_name}: until {term.anchor}")
        if anchor is not None:
            ends.append(term.period.after(anchor))
    terms = ", ".join(str(t) for t in rule.until)
    return Requirement(source, class_name, max(ends), f"{class_name}: {terms}")


def fold(
    session_id: str,
    entries: Iterable[dict[str, Any]],
    schedule: Schedule,
    started_at: datetime | None = None,
) -> RetentionState:
    """The state after every entry; ``started_at`` when the ledger has no "opened" entry."""
    links: dict[str, Link] = {}
    holds: dict[str, Hold] = {}
    head = GENESIS
    claimed_at = None
    for e in entries:
        head = e["hash"]
        at = datetime.fromisoformat(e["at"])
        if e["kind"] == "opened":
            started_at = datetime.fromisoformat(e["started_at"])
        elif e["kind"] == "link" and e.get("removed"):
            links.pop(e["reference"], None)
        elif e["kind"] == "link":
            links[e["reference"]] = Link(
                e["reference"], e["class"], dict(e.get("events", {})), at, e["by"], e["reason"]
            )
        elif e["kind"] == "hold":
            holds[e["hold_id"]] = Hold(e["hold_id"], e["hold_kind"], at, e["by"], e["reason"])
        elif e["kind"] == "release":
            holds.pop(e["hold_id"], None)
        elif e["kind"] == "disposal":
            claimed_at = at
    if started_at is None:
        raise ValueError(f"session {session_id}: no start date for retention")
    required = [requirement(schedule, UNASSESSED, UNASSESSED, started_at, None)]
    required += [
        requirement(schedule, link.class_name, ref, started_at, link) for ref, link in links.items()
    ]
    waiting = [r for r in required if r.until is None]
    governing = waiting[0] if waiting else max(required, key=lambda r: r.until or started_at)
    reviews = []
    for link in links.values():
        every = schedule.get(link.class_name).review_every
        if every is not None:
            reviews.append(every.after(link.linked_at))
    return RetentionState(
        session_id=session_id,
        started_at=started_at,
        links=tuple(links.values()),
        holds=tuple(holds.values()),
        requirements=tuple(required),
        governing=governing,
        disposal_at=None if holds or waiting else governing.until,
        next_review=min(reviews, default=None),
        head=head,
        claimed_at=claimed_at,
    )


Why = Literal["overdue", "expiring", "review"]


@dataclass(frozen=True, slots=True)
class QueueItem:
    why: Why
    due: datetime
    state: RetentionState


def review_queue(
    states: Iterable[RetentionState], schedule: Schedule, now: datetime
) -> list[QueueItem]:
    """What is overdue for disposal, what expires soon, and what is due for review."""
    soon = schedule.expiring_within.after(now)
    items: list[QueueItem] = []
    for state in states:
        if state.disposal_at is not None and state.disposal_at <= now:
            items.append(QueueItem("overdue", state.disposal_at, state))
        elif state.disposal_at is not None and state.disposal_at <= soon:
            items.append(QueueItem("expiring", state.disposal_at, state))
        if state.next_review is not None and state.next_review <= soon:
            items.append(QueueItem("review", state.next_review, state))
    return sorted(items, key=lambda i: (i.due, i.state.session_id))
