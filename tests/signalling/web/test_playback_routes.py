"""The whole-session playback routes against a real server app: the timeline of a two-part
recording, and its working copy made once, served in byte ranges, equal to the master."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip
from recorder.manifest import KEY_FILE, Signer
from recorder.workingcopy import compare
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, EVIDENCE
from tests.client import Client, client_of
from tests.recorder.feed import record_reconnected
from tests.signalling.web.test_evidence_routes import OPERATORS, sign_in

GAP_S = 4.0
FIXES = ((0.5, 51.5010, -0.1262), (8.0, 51.5020, -0.1250))


@pytest.fixture
async def app_client(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> tuple[web.Application, Client]:
    """A server whose store holds one session recorded in two parts, GAP_S apart."""
    signer = Signer.load_or_create(tmp_path / KEY_FILE)
    await record_reconnected(
        tmp_path / "evidence" / "sess-2p", clips["H264"], signer, None, GAP_S, FIXES
    )
    app = make_app(load_settings(data_dir=tmp_path, operators=OPERATORS))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    assert await asyncio.to_thread(app[EVIDENCE].spool.wait_idle, 30)
    return app, await client_of(aiohttp_client, server)


def actions(app: web.Application, action: str) -> list[str]:
    return [r["actor"] for r in app[AUDIT].read() if r["action"] == action]


async def test_timeline_of_a_two_part_recording(
    app_client: tuple[web.Application, Client], clips: dict[str, Clip]
) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    listed = await (await client.get("/api/recordings/sess-2p")).json()
    answer = await client.get(listed["timeline_url"])
    assert answer.status == 200
    timeline = await answer.json()
    parts = timeline["parts"]
    assert [p["name"] for p in parts] == [s["name"] for s in listed["segments"]]
    assert len(parts) == 2 and parts[0]["offset_s"] == 0.0
    assert parts[1]["offset_s"] == pytest.approx(clips["H264"].duration_s + GAP_S, abs=0.05)
    assert parts[1]["start_wall_clock"] == pytest.approx(
        listed["segments"][1]["first_frame_wall_clock"], abs=0.002
    )
    [gap] = timeline["gaps"]
    assert gap["cause"] == "between_parts" and gap["end_s"] == parts[1]["offset_s"]
    assert [(f["offset_s"], f["lat"]) for f in timeline["fixes"]] == [
        (pytest.approx(o, abs=0.002), lat) for o, lat, _ in FIXES
    ]
    assert [e["event"] for e in timeline["events"]] == ["ended"]
    assert timeline["working_copy"] == {
        "url": "/api/recordings/sess-2p/working-copy",
        "content_type": "video/mp4",
    }
    assert actions(app, "consultation.timeline") == ["ivan"]

    await sign_in(client, "hugo")  # a call handler who took no part
    assert (await client.get(listed["timeline_url"])).status == 403
    assert (await client.get("/api/recordings/sess-2p/working-copy")).status == 403
    assert (await client.get("/api/recordings/nope/timeline")).status == 404

    openapi = await (await client.get("/api/openapi.json")).json()
    operation = openapi["paths"]["/api/recordings/{session_id}/timeline"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Timeline"
    }
    assert "/api/recordings/{session_id}/working-copy" in openapi["paths"]


async def test_working_copy_made_once_served_in_ranges_and_equal_to_the_master(
    app_client: tuple[web.Application, Client], tmp_path: Path
) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    url = "/api/recordings/sess-2p/working-copy"
    # A player's first requests arrive together: one copy is made.
    first = await asyncio.gather(
        *(client.get(url, headers={"Range": "bytes=0-"}) for _ in range(3))
    )
    assert {r.status for r in first} == {206}
    whole = await first[0].read()
    assert all([await r.read() == whole for r in first[1:]])
    assert first[0].headers["Content-Type"] == "video/mp4"
    assert first[0].headers["Accept-Ranges"] == "bytes"
    assert first[0].headers["Content-Range"] == f"bytes 0-{len(whole) - 1}/{len(whole)}"
    assert actions(app, "derivative.working_copy") == ["ivan"]

    middle = await client.get(url, headers={"Range": "bytes=1000-1999"})
    assert middle.status == 206 and await middle.read() == whole[1000:2000]
    outside = await client.get(url, headers={"Range": f"bytes={len(whole)}-"})
    assert outside.status == 416
    bad = await client.get(url, headers={"Range": "bytes=0-1,5-9"})
    assert bad.status == 400 and "one byte range" in (await bad.json())["error"]
    assert actions(app, "consultation.playback") == ["ivan"] * 3  # the three opening requests

    # The copy served is the master's packets, at the master's times, gap kept.
    entry = app[EVIDENCE].catalogue.get("sess-2p")
    master = app[EVIDENCE].working_copies.master(entry, tmp_path)
    served = tmp_path / "served.mp4"
    served.write_bytes(whole)
    assert compare(master, served) > 0
    record = app[EVIDENCE].working_copies.find(entry)
    assert record is not None and record[1]["master_chain_head"] == entry.chain_head
    assert first[0].headers["ETag"] == f'"{record[1]["sha256"]}"'
