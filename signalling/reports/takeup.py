"""Take-up figures: of the links sent, how many were opened, agreed to, and gave video or
location, which failed and why, and how long from the SMS to the first frame; by browser and OS.

Read from the evidence store (the bundles' signed manifests and events), which outlives any
node and any restart, never from the state store. The figures hold no personal data: no phone
number, incident reference, operator or caller name, nor a session id; browsers and systems
are named by family and major version only. A closed bundle's figures never change, so they
are worked out once. Blocking: call from a thread.
"""

from __future__ import annotations

import csv
import io
import statistics
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from recorder.catalogue import Catalogue, CatalogueEntry, SearchQuery
from signalling.calls.caller_state import CallerState, summary_key
from signalling.calls.device import families
from signalling.calls.invites import media_of

Outcome = Literal["video", "location_only", "declined", "failed"]
VIDEO_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
NOT_OPENED = "not opened"
ALL = "all"


@dataclass(frozen=True, slots=True)
class SessionTakeup:
    """What one session's caller did, as the figures count it."""

    browser: str
    os: str
    sent: bool  # the SMS was accepted by the provider
    opened: bool
    agreed: bool  # consent given
    outcome: Outcome
    reason: str | None  # why it failed (the caller's side as far as the server knows)
    first_frame_s: float | None  # from the (last) SMS before it to the first video frame


def session_takeup(entry: CatalogueEntry, events: Sequence[dict[str, Any]]) -> SessionTakeup:
    """One bundle's manifest entry and events, counted. Video means a video frame was
    recorded; location only, fixes without video; declined, the caller pressed "No thanks"."""
    names = {str(e.get("event")) for e in events}
    mode = next((str(e["mode"]) for e in events if e.get("event") == "session_created"), "video")
    opened_by = next((e for e in events if e.get("event") == "link_opened"), None)
    browser, os = families(str(opened_by.get("user_agent", ""))) if opened_by else (None, None)
    states = [e for e in events if e.get("event") == "caller_state"]
    video = any(c.lower() in VIDEO_CODECS for c in entry.codecs) and bool(entry.segments)
    outcome: Outcome
    reason = None
    if video:
        outcome = "video"
    elif entry.positions:
        outcome = "location_only"
    elif any(s.get("declined") for s in states):
        outcome = "declined"
    else:
        outcome, reason = "failed", failure_reason(mode, events, states)
    return SessionTakeup(
        browser=browser or ("unknown" if opened_by else NOT_OPENED),
        os=os or ("unknown" if opened_by else NOT_OPENED),
        sent="link_sent" in names,
        opened=opened_by is not None,
        agreed="consent_given" in names,
        outcome=outcome,
        reason=reason,
        first_frame_s=first_frame_delay(entry, events) if video else None,
    )


def failure_reason(
    mode: str, events: Sequence[dict[str, Any]], states: Sequence[dict[str, Any]]
) -> str:
    """The first thing that stopped the session: the SMS, the link, or what the caller's page
    last said (the console's summary key, e.g. ``camera_blocked``, ``no_video_browser``)."""
    names = [e.get("event") for e in events]
    if "link_sent" not in names:
        return "sms not delivered"
    if "link_opened" not in names:
        refused = [e for e in events if e.get("event") == "link_refused"]
        return f"link refused: {refused[-1].get('reason')}" if refused else NOT_OPENED
    if not states:
        return "opened, nothing reported"
    last = states[-1]
    state: CallerState = {
        "camera": last.get("camera", "off"),
        "microphone": last.get("microphone", "off"),
        "location": last.get("location", "off"),
        "page": last.get("page", "visible"),
        "network": last.get("network", "online"),
        "webrtc": bool(last.get("webrtc", True)),
        "declined": False,
    }
    return summary_key(media_of(mode), True, state, False)


def first_frame_delay(entry: CatalogueEntry, events: Sequence[dict[str, Any]]) -> float | None:
    first = min(
        (s.first_frame_wall_clock for s in entry.segments if s.first_frame_wall_clock),
        default=None,
    )
    sent = [
        datetime.fromisoformat(str(e["at"])).timestamp()
        for e in events
        if e.get("event") == "link_sent" and e.get("at")
    ]
    before = [t for t in sent if first is not None and t <= first]
    return None if first is None or not before else round(first - max(before), 3)


def percentile(values: Sequence[float], p: int) -> float | None:
    """The ``p``th percentile (linear between the nearest ranks), None with no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=100, method="inclusive")[p - 1], 3)


class TakeupRow(TypedDict):
    """One browser and OS (or ``all``): counts of sessions, and seconds from SMS to video."""

    browser: str
    os: str
    sessions: int
    links_sent: int
    opened: int
    agreed: int
    video: int
    location_only: int
    declined: int
    failed: int
    failure_reasons: dict[str, int]
    first_frame_p50_s: float | None
    first_frame_p95_s: float | None


class TakeupReport(TypedDict):
    since: str | None
    until: str | None
    rows: list[TakeupRow]  # the first is every session (browser and os "all")


def row(browser: str, os: str, sessions: Sequence[SessionTakeup]) -> TakeupRow:
    reasons: dict[str, int] = {}
    for s in sessions:
        if s.reason is not None:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
    delays = [s.first_frame_s for s in sessions if s.first_frame_s is not None]
    return {
        "browser": browser,
        "os": os,
        "sessions": len(sessions),
        "links_sent": sum(s.sent for s in sessions),
        "opened": sum(s.opened for s in sessions),
        "agreed": sum(s.agreed for s in sessions),
        "video": sum(s.outcome == "video" for s in sessions),
        "location_only": sum(s.outcome == "location_only" for s in sessions),
        "declined": sum(s.outcome == "declined" for s in sessions),
        "failed": sum(s.outcome == "failed" for s in sessions),
        "failure_reasons": dict(sorted(reasons.items())),
        "first_frame_p50_s": percentile(delays, 50),
        "first_frame_p95_s": percentile(delays, 95),
    }


def rows(sessions: Iterable[SessionTakeup]) -> list[TakeupRow]:
    """All sessions first, then one row per browser and OS, most sessions first."""
    every = list(sessions)
    groups: dict[tuple[str, str], list[SessionTakeup]] = {}
    for s in every:
        groups.setdefault((s.browser, s.os), []).append(s)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [row(ALL, ALL, every)] + [row(b, o, group) for (b, o), group in ordered]


CSV_COLUMNS = tuple(TakeupRow.__annotations__)


def report_csv(report: TakeupReport) -> str:
    """One line per row of the report; failure reasons as ``reason=count`` joined by ``; ``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in report["rows"]:
        cells: list[Any] = []
        for column in CSV_COLUMNS:
            value = r[column]  # type: ignore[literal-required]
            if isinstance(value, dict):
                value = "; ".join(f"{k}={n}" for k, n in value.items())
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return out.getvalue()


class TakeupFigures:
    """The figures over the evidence store's catalogue, each closed bundle counted once."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._closed: dict[str, SessionTakeup] = {}
        self._lock = threading.Lock()

    def report(self, since: datetime | None, until: datetime | None) -> TakeupReport:
        entries = self.catalogue.search(SearchQuery(since=since, until=until))
        return {
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "rows": rows(self._session(e) for e in entries),
        }

    def _session(self, entry: CatalogueEntry) -> SessionTakeup:
        with self._lock:
            known = self._closed.get(entry.session_id)
        if known is not None:
            return known
        try:
            events = self.catalogue.events(entry.session_id)  # every node's, in time order
        except KeyError:  # disposed of since it was listed, or no events written yet
            events = []
        counted = session_takeup(entry, events)
        if entry.status == "closed":
            with self._lock:
                self._closed[entry.session_id] = counted
        return counted
