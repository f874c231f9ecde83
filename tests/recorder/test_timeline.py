"""The session's timeline: parts on one clock with the gaps between, events and fixes placed
at their offsets, markers by kind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from recorder.catalogue import Segment
from recorder.timeline import build_timeline, part_offsets

T0 = 1_800_000_000.0  # the first part's time zero (server epoch seconds)


def iso(offset: float) -> str:
    return datetime.fromtimestamp(T0 + offset, UTC).isoformat()


def part(name: str, start: float | None, duration: float) -> Segment:
    return Segment(name, f"sha-{name}", 1000, duration, None if start is None else T0 + start)


def test_parts_sit_at_their_wall_clock_offsets_and_never_overlap() -> None:
    parts = [part("a", 0.0, 10.0), part("b", 14.2504, 5.0), part("c", 18.0, 2.0)]
    # c's clock says it began before b ended: it goes right after b instead.
    assert part_offsets(parts) == [0.0, 14.25, 19.252]
    # A part with no wall-clock time follows the one before it.
    assert part_offsets([part("a", 0.0, 10.0), part("b", None, 3.0)]) == [0.0, 10.002]
    assert part_offsets([]) == []


def test_gaps_events_and_fixes_on_the_session_clock() -> None:
    parts = [part("media-001.mkv", 0.0, 10.0), part("media-002.mkv", 14.0, 6.0)]
    events = [
        {"event": "session_created", "at": iso(-30.0), "by": "handler"},  # not drawn
        {"event": "live", "at": iso(-0.5)},
        {
            "event": "caller_state",
            "at": iso(5.0),
            "camera": "lost",
            "summary": "Camera lost",
        },
        {"event": "caller_state", "at": iso(6.0), "camera": "on", "summary": "Camera back"},
        {"event": "reconnecting", "at": iso(10.2)},
        {"event": "chat_message", "at": iso(15.5), "sender": "caller", "text": "by the bus stop"},
        {"event": "caller_file", "at": iso(16.0), "name": "file-001.jpg", "kind": "photo"},
        {"event": "snapshot", "at": iso(17.0), "name": "snapshot-001.jpg"},
        {
            "event": "media_gap_ended",
            "at": iso(18.5),
            "started_at": iso(16.5),
            "ended_at": iso(18.5),
            "seconds": 2.0,
            "resumed": True,
            "part": 2,
        },
        {"event": "ended", "at": iso(20.5), "by": "handler"},
    ]
    fixes = [
        {"lat": 51.5, "lon": -0.12, "accuracy": 5, "received_at": iso(1.0)},
        {"lat": 51.6, "lon": -0.13, "accuracy": None, "received_at": iso(15.0)},
        {"received_at": iso(15.1), "w3w": "a.b.c"},  # a place line, not a fix
    ]
    link = {"url": "/api/recordings/s/working-copy", "content_type": "video/mp4"}
    timeline = build_timeline("s", parts, events, fixes, link)  # type: ignore[arg-type]
    assert timeline["origin_wall_clock"] == T0 and timeline["duration_s"] == 20.0
    assert [(p["name"], p["offset_s"], p["end_wall_clock"]) for p in timeline["parts"]] == [
        ("media-001.mkv", 0.0, T0 + 10.0),
        ("media-002.mkv", 14.0, T0 + 20.0),
    ]
    assert timeline["gaps"] == [
        {"start_s": 10.0, "end_s": 14.0, "cause": "between_parts"},
        {"start_s": 16.5, "end_s": 18.5, "cause": "no_media"},
    ]
    kinds = [(e["event"], e["offset_s"], e["kind"]) for e in timeline["events"]]
    assert kinds == [
        ("live", -0.5, "connection"),
        ("caller_state", 5.0, "camera"),
        ("caller_state", 6.0, "caller"),
        ("reconnecting", 10.2, "connection"),
        ("chat_message", 15.5, "chat"),
        ("caller_file", 16.0, "photo"),
        ("snapshot", 17.0, "snapshot"),
        ("media_gap_ended", 18.5, "gap"),
        ("ended", 20.5, "connection"),
    ]
    chat = timeline["events"][4]
    assert chat["label"] == "Caller: by the bus stop" and chat["sender"] == "caller"
    assert timeline["events"][5]["name"] == "file-001.jpg"
    assert timeline["events"][1]["label"] == "Camera lost"
    assert [(f["offset_s"], f["lat"], f["accuracy"]) for f in timeline["fixes"]] == [
        (1.0, 51.5, 5.0),
        (15.0, 51.6, None),
    ]
    assert timeline["working_copy"] == link


def test_a_gap_between_parts_already_drawn_as_no_media_is_not_drawn_twice() -> None:
    parts = [part("a", 0.0, 10.0), part("b", 14.0, 1.0)]
    gap = {
        "event": "media_gap_ended",
        "at": iso(14.0),
        "started_at": iso(10.0),
        "ended_at": iso(14.0),
        "seconds": 4.0,
        "resumed": True,
        "part": 2,
    }
    timeline = build_timeline("s", parts, [gap], [], None)
    assert [g["cause"] for g in timeline["gaps"]] == ["no_media"]
    assert timeline["gaps"][0]["end_s"] == pytest.approx(14.0)


def test_a_bail_check_is_drawn_with_its_verdict() -> None:
    check = {
        "event": "bail_check",
        "at": iso(3.0),
        "verdict": "outside",
        "distance_m": 412.5,
        "accuracy_m": 9.0,
    }
    timeline = build_timeline("s", [part("media-001.mkv", 0.0, 10.0)], [check], [], None)
    [drawn] = timeline["events"]
    assert (drawn["offset_s"], drawn["kind"]) == (3.0, "caller")
    assert drawn["label"] == "Bail check: outside, 412.5 m from the place (fix ±9.0 m)"
