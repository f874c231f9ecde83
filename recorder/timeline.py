"""One session's timeline: every part in order on one clock, the gaps between, and what happened.

A session can be several parts (the caller reconnected, the picture changed size) with gaps
between them. Each part's time zero has a server wall-clock time (``first_frame_wall_clock``),
so the session's timeline is wall-clock time less the first part's: the working copy
(``workingcopy``) puts each part's packets at that offset, and events and fixes are placed on
the same clock from their own server times. Offsets are whole milliseconds (Matroska's unit),
and a part never starts before the one before it has ended, whatever the clocks say, so the
copy's timestamps only ever increase.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from .catalogue import Segment

# A part starts at least this long after the last timestamp of the one before (a duration is
# rounded to the millisecond, the packets' times too).
PART_MARGIN_S = 0.002
# A pause between parts shorter than this is not drawn as a gap.
MIN_GAP_S = 0.5

MarkerKind = Literal["connection", "gap", "camera", "caller", "chat", "photo", "snapshot", "other"]

# Events placed on the timeline, and the marker each is drawn as.
CONNECTION = frozenset(
    {"link_opened", "consent_given", "connecting", "live", "reconnecting", "ended"}
)
KINDS: Mapping[str, MarkerKind] = {
    **{name: "connection" for name in CONNECTION},
    "media_gap_started": "gap",
    "media_gap_ended": "gap",
    "chat_message": "chat",
    "caller_file": "photo",
    "snapshot": "snapshot",
    "silent_mode": "caller",
    "bail_check": "caller",
    "stills_fallback": "caller",
    "recording_failed": "other",
    "recording_resumed": "other",
}
CAMERA_LOST = frozenset({"lost", "off", "refused", "unavailable", "muted"})


class TimelinePart(TypedDict):
    name: str
    sha256: str
    offset_s: float  # where the part's time zero sits on the session's timeline
    duration_s: float
    start_wall_clock: float | None  # server epoch seconds of the part's time zero
    end_wall_clock: float | None


class TimelineGap(TypedDict):
    start_s: float
    end_s: float
    cause: Literal["between_parts", "no_media"]


class TimelineEvent(TypedDict):
    event: str
    at: str
    offset_s: float  # before the first frame is negative
    kind: MarkerKind
    label: str
    sender: NotRequired[str]  # chat: "caller" or "handler"
    name: NotRequired[str]  # photos and snapshots: the file in the bundle


class TimelineFix(TypedDict):
    offset_s: float
    lat: float
    lon: float
    accuracy: float | None
    received_at: str


class WorkingCopyLink(TypedDict):
    url: str
    content_type: str


class Timeline(TypedDict):
    """``GET /api/recordings/{id}/timeline``: everything the player draws, on one clock."""

    session_id: str
    origin_wall_clock: float | None  # server epoch seconds at offset 0
    duration_s: float
    parts: list[TimelinePart]
    gaps: list[TimelineGap]
    events: list[TimelineEvent]
    fixes: list[TimelineFix]
    working_copy: WorkingCopyLink | None  # None: nothing was recorded


def part_offsets(segments: Sequence[Segment]) -> list[float]:
    """Each part's time zero on the session's clock, in whole milliseconds, never overlapping."""
    walls = [s.first_frame_wall_clock for s in segments]
    origin = next((w for w in walls if w is not None), None)
    offsets: list[float] = []
    earliest = 0.0
    for segment, wall in zip(segments, walls, strict=True):
        at = earliest if wall is None or origin is None else max(earliest, wall - origin)
        at = round(at, 3)
        offsets.append(at)
        earliest = at + segment.duration_s + PART_MARGIN_S
    return offsets


def _epoch(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _label(event: Mapping[str, Any]) -> str:
    name = str(event.get("event"))
    if name == "chat_message":
        who = "Caller" if event.get("sender") == "caller" else (event.get("by") or "Handler")
        return f"{who}: {event.get('text', '')}"
    if name == "caller_file":
        return f"{str(event.get('kind') or 'file').capitalize()} from the caller"
    if name == "snapshot":
        return "Snapshot taken"
    if name == "caller_state":
        return str(event.get("summary") or "Caller's page changed")
    if name == "media_gap_started":
        return "No media from the caller"
    if name == "media_gap_ended":
        return "Media again" if event.get("resumed") else "Media ended during a gap"
    if name == "ended":
        return f"Ended by {event.get('by')}"
    if name == "silent_mode":
        return "Silent mode " + ("on" if event.get("on") else "off")
    if name == "stills_fallback":
        return "Stills instead of video " + ("on" if event.get("on") else "off")
    if name == "bail_check":
        return (
            f"Bail check: {event.get('verdict')}, {event.get('distance_m')} m from the place "
            f"(fix ±{event.get('accuracy_m')} m)"
        )
    return name.replace("_", " ").capitalize()


def _marker(event: Mapping[str, Any]) -> MarkerKind | None:
    name = str(event.get("event"))
    if name == "caller_state":
        return "camera" if event.get("camera") in CAMERA_LOST else "caller"
    return KINDS.get(name)


def build_timeline(
    session_id: str,
    segments: Sequence[Segment],
    events: Iterable[Mapping[str, Any]],
    fixes: Iterable[Mapping[str, Any]],
    working_copy: WorkingCopyLink | None,
) -> Timeline:
    """The timeline from the catalogue's parts and the bundle's events and fixes."""
    offsets = part_offsets(segments)
    origin = next((s.first_frame_wall_clock for s in segments if s.first_frame_wall_clock), None)
    parts: list[TimelinePart] = []
    for segment, offset in zip(segments, offsets, strict=True):
        start = None if origin is None else origin + offset
        parts.append(
            {
                "name": segment.name,
                "sha256": segment.sha256,
                "offset_s": offset,
                "duration_s": segment.duration_s,
                "start_wall_clock": start,
                "end_wall_clock": None if start is None else start + segment.duration_s,
            }
        )
    base = origin or 0.0

    def offset_of(at: object) -> float | None:
        epoch = _epoch(at)
        return None if epoch is None else round(epoch - base, 3)

    placed: list[TimelineEvent] = []
    gaps: list[TimelineGap] = []
    for event in events:
        kind = _marker(event)
        when = offset_of(event.get("at"))
        if kind is None or when is None:
            continue
        record: TimelineEvent = {
            "event": str(event["event"]),
            "at": str(event["at"]),
            "offset_s": when,
            "kind": kind,
            "label": _label(event),
        }
        if event.get("sender") in ("caller", "handler"):
            record["sender"] = str(event["sender"])
        if isinstance(event.get("name"), str):
            record["name"] = str(event["name"])
        placed.append(record)
        if event.get("event") == "media_gap_ended":
            began, ended = offset_of(event.get("started_at")), offset_of(event.get("ended_at"))
            if began is not None and ended is not None and ended > began:
                gaps.append({"start_s": began, "end_s": ended, "cause": "no_media"})
    for before, after in zip(parts, parts[1:], strict=False):
        start = round(before["offset_s"] + before["duration_s"], 3)
        end = after["offset_s"]
        covered = any(g["start_s"] < end and start < g["end_s"] for g in gaps)
        if end - start >= MIN_GAP_S and not covered:
            gaps.append({"start_s": start, "end_s": end, "cause": "between_parts"})
    placed.sort(key=lambda e: e["offset_s"])
    gaps.sort(key=lambda g: g["start_s"])
    placed_fixes: list[TimelineFix] = []
    for fix in fixes:
        at = offset_of(fix.get("received_at"))
        if at is None or "lat" not in fix or "lon" not in fix:
            continue
        accuracy = fix.get("accuracy")
        placed_fixes.append(
            {
                "offset_s": at,
                "lat": float(fix["lat"]),
                "lon": float(fix["lon"]),
                "accuracy": float(accuracy) if isinstance(accuracy, int | float) else None,
                "received_at": str(fix["received_at"]),
            }
        )
    end = max((p["offset_s"] + p["duration_s"] for p in parts), default=0.0)
    return {
        "session_id": session_id,
        "origin_wall_clock": origin,
        "duration_s": round(end, 3),
        "parts": parts,
        "gaps": gaps,
        "events": placed,
        "fixes": placed_fixes,
        "working_copy": working_copy,
    }
