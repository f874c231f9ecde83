"""Take-up figures: synthetic sessions counted and grouped, percentiles, the CSV, and the route
over a real session's bundle in the store."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip
from recorder.catalogue import CatalogueEntry, Segment
from signalling.config import load_settings
from signalling.reports.takeup import (
    CSV_COLUMNS,
    percentile,
    report_csv,
    rows,
    session_takeup,
)
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT
from tests.client import Client, client_of
from tests.signalling.web.test_evidence_record import HEADERS, IPHONE, ended_call

ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.6478.122 Mobile Safari/537.36"
)
SENT_AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def entry(
    *, video: bool = False, fixes: int = 0, first_frame_after: float | None = None
) -> CatalogueEntry:
    first = SENT_AT.timestamp() + first_frame_after if first_frame_after is not None else None
    return CatalogueEntry(
        session_id="0123456789abcdef",
        prefix="2026/12/07/CAD-7/0123456789abcdef",
        status="closed",
        incident_ref="CAD-7",
        phone="+447700900123",
        started_at=SENT_AT,
        media_seconds=10.0 if video else 0.0,
        codecs=["H264", "opus"] if video else [],
        segments=[Segment("media-001.mkv", "ab" * 32, 1000, 10.0, first)] if video else [],
        positions=[(51.5, -0.1)] * fixes,
    )


def events(*names: str, ua: str = IPHONE, **extra: Any) -> list[dict[str, Any]]:
    """The session's events in order, with what each one carries."""
    out: list[dict[str, Any]] = []
    for name in names:
        event: dict[str, Any] = {"event": name, "at": SENT_AT.isoformat()}
        if name == "session_created":
            event |= {"mode": extra.get("mode", "video"), "phone": "+447700900123", "by": "al"}
        if name in ("link_opened", "consent_given"):
            event |= {"user_agent": ua}
        if name == "caller_state":
            event |= {
                "camera": extra.get("camera", "off"),
                "microphone": "off",
                "location": extra.get("location", "off"),
                "page": "visible",
                "network": "online",
                "webrtc": True,
                "declined": extra.get("declined", False),
            }
        if name == "link_refused":
            event |= {"reason": "not opened in time"}
        out.append(event)
    return out


def test_sessions_are_counted_by_what_the_caller_did() -> None:
    full = ("session_created", "link_sent", "link_opened", "consent_given")
    video = [
        session_takeup(entry(video=True, fixes=3, first_frame_after=d), events(*full))
        for d in (4.0, 6.0, 8.0, 30.0)
    ]
    android = session_takeup(entry(video=True, first_frame_after=12.0), events(*full, ua=ANDROID))
    location = session_takeup(entry(fixes=2), events(*full, mode="location"))
    declined = session_takeup(entry(), events(*full[:3], "caller_state", declined=True))
    blocked = session_takeup(entry(), events(*full, "caller_state", camera="refused"))
    late = session_takeup(entry(), events("session_created", "link_sent", "link_refused"))
    unsent = session_takeup(entry(), events("session_created", "link_not_sent"))

    assert video[0].outcome == "video" and video[0].first_frame_s == 4.0
    assert (video[0].browser, video[0].os) == ("Mobile Safari 17", "iOS 17")
    assert (android.browser, android.os) == ("Chrome Mobile 126", "Android 14")
    assert location.outcome == "location_only" and location.first_frame_s is None
    assert declined.outcome == "declined" and not declined.agreed
    assert (blocked.outcome, blocked.reason) == ("failed", "camera_blocked")
    assert (late.reason, late.browser, late.opened) == (
        "link refused: not opened in time",
        "not opened",
        False,
    )
    assert (unsent.reason, unsent.sent) == ("sms not delivered", False)

    table = rows([*video, android, location, declined, blocked, late, unsent])
    everyone, iphone = table[0], table[1]
    assert (everyone["browser"], everyone["os"], everyone["sessions"]) == ("all", "all", 10)
    assert everyone["links_sent"] == 9 and everyone["opened"] == 8 and everyone["agreed"] == 7
    assert (everyone["video"], everyone["location_only"]) == (5, 1)
    assert (everyone["declined"], everyone["failed"]) == (1, 3)
    assert everyone["failure_reasons"] == {
        "camera_blocked": 1,
        "link refused: not opened in time": 1,
        "sms not delivered": 1,
    }
    assert everyone["first_frame_p50_s"] == 8.0  # of 4, 6, 8, 12, 30
    assert everyone["first_frame_p95_s"] == 26.4  # 12 + 0.8 * (30 - 12)
    assert (iphone["browser"], iphone["sessions"], iphone["video"]) == ("Mobile Safari 17", 7, 4)
    assert iphone["first_frame_p50_s"] == 7.0

    text = report_csv({"since": None, "until": None, "rows": table})
    parsed = list(csv.reader(io.StringIO(text)))
    assert tuple(parsed[0]) == CSV_COLUMNS
    assert len(parsed) == 1 + len(table)
    assert parsed[1][CSV_COLUMNS.index("failure_reasons")] == (
        "camera_blocked=1; link refused: not opened in time=1; sms not delivered=1"
    )
    for secret in ("0123456789abcdef", "CAD-7", "7700", "al,"):
        assert secret not in text


def test_percentiles() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5


async def serve(aiohttp_client: AiohttpClient, tmp_path: Any) -> Client:
    accounts = [
        {"username": "alice", "password": "pw", "roles": ["call_handler"]},
        {"username": "sue", "password": "pw", "roles": ["supervisor"]},
    ]
    server = TestServer(make_app(load_settings(data_dir=tmp_path, operators=accounts)))
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    login = {"username": "alice", "password": "pw"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200
    return client


async def test_the_route_counts_a_real_session_for_supervisors_only(
    aiohttp_client: AiohttpClient, tmp_path: Any, clips: dict[str, Clip]
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id = await ended_call(client, clips["VP8"])
    assert (await client.get("/api/reports/takeup")).status == 403  # a call handler
    login = {"username": "sue", "password": "pw"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200

    report: dict[str, Any] = {}
    for _ in range(100):  # the bundle reaches the store in the background
        report = await (await client.get("/api/reports/takeup?from=2020-01-01")).json()
        if report["rows"][0]["video"] == 1:
            break
        await asyncio.sleep(0.1)
    everyone, iphone = report["rows"]
    assert everyone["sessions"] == everyone["links_sent"] == everyone["agreed"] == 1
    assert (iphone["browser"], iphone["os"], iphone["video"]) == ("Mobile Safari 17", "iOS 17", 1)
    assert 0 < iphone["first_frame_p50_s"] < 20

    answer = await client.get("/api/reports/takeup?format=csv&to=2099-12-31")
    assert answer.status == 200 and answer.content_type == "text/csv"
    text = await answer.text()
    assert text.splitlines()[0].startswith("browser,os,sessions,links_sent,opened,agreed")
    for secret in (session_id, "CAD-9", "7700", "alice"):
        assert secret not in text

    for bad, field in (("format=pdf", "format"), ("from=yesterday", "from")):
        refused = await client.get(f"/api/reports/takeup?{bad}")
        assert refused.status == 400 and field in (await refused.json())["fields"]
    early = await client.get("/api/reports/takeup?from=2027-01-02&to=2027-01-01")
    assert early.status == 400
    records = await client.app[AUDIT].search(None, "sue", "consultation.takeup_report")
    assert len(records) == 2
