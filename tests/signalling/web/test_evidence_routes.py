"""Investigators' routes against a real server app: search, playback, trail, download and
export, all read from the evidence store and all audited."""

from __future__ import annotations

import asyncio
import io
import zipfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip
from recorder.export import verify_package
from recorder.manifest import KEY_FILE, Signer
from signalling.calls.sessions import utcnow
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, EVIDENCE, EXPORTS
from signalling.web.routes import evidence as evidence_routes
from tests.client import Client, client_of
from tests.recorder.feed import record_session

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [
    {"username": "ivan", "password": "ivan-pass", "roles": ["investigator"]},
    {"username": "iris", "password": "iris-pass", "roles": ["investigator"]},
    # The recorded session was ended by "handler"; "hugo" took no part in it.
    {"username": "handler", "password": "handler-pass", "roles": ["call_handler"]},
    {"username": "hugo", "password": "hugo-pass", "roles": ["call_handler"]},
]
TRAIL = ((51.5010, -0.1262), (51.5013, -0.1260))


@pytest.fixture
async def app_client(
    aiohttp_client: AiohttpClient, tmp_path: Path, clips: dict[str, Clip]
) -> tuple[web.Application, Client]:
    """A server whose spool holds one finished session from before a restart."""
    signer = Signer.load_or_create(tmp_path / KEY_FILE)
    await record_session(
        tmp_path / "evidence" / "sess-1",
        clips["H264"],
        signer,
        None,
        incident_ref="CAD-99",
        phone="+447700900123",
        fixes=TRAIL,
    )
    app = make_app(load_settings(data_dir=tmp_path, operators=OPERATORS))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    assert await asyncio.to_thread(app[EVIDENCE].spool.wait_idle, 30)
    client = await client_of(aiohttp_client, server)
    return app, client


async def sign_in(client: Client, user: str) -> None:
    client.session.cookie_jar.clear()
    response = await client.post(
        "/api/login", json={"username": user, "password": f"{user}-pass"}, headers=HEADERS
    )
    assert response.status == 200


async def test_search_play_and_trail(app_client: tuple[web.Application, Client]) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    found = await (await client.get("/api/recordings", params={"phone": "07700 900123"})).json()
    assert [r["session_id"] for r in found["recordings"]] == ["sess-1"]
    assert "phone" not in found["recordings"][0]
    none = await (await client.get("/api/recordings", params={"incident_ref": "CAD-1"})).json()
    assert none["recordings"] == []
    far = await client.get("/api/recordings", params={"area": "53.0,-2.0,54.0,-1.0"})
    assert (await far.json())["recordings"] == []
    assert (await client.get("/api/recordings", params={"area": "1,2"})).status == 400
    assert (await client.get("/api/recordings", params={"from": "yesterday"})).status == 400
    assert (await client.get("/api/recordings", params={"phone": "12"})).status == 422

    recording = found["recordings"][0]
    part = recording["parts"][0]
    media = await client.get(part["url"])
    assert media.status == 200
    assert len(await media.read()) == recording["segments"][0]["bytes"]
    assert (await client.get("/api/recordings/sess-1/media/events.jsonl")).status == 404
    assert (await client.get("/api/recordings/nope/trail")).status == 404
    trail = await (await client.get(recording["trail_url"])).json()
    assert [(f["lat"], f["lon"]) for f in trail["fixes"]] == list(TRAIL)

    actions = [(r["actor"], r["action"]) for r in app[AUDIT].read()]
    for action in ("consultation.search", "consultation.playback", "consultation.trail"):
        assert ("ivan", action) in actions
    searches = [r for r in app[AUDIT].read() if r["action"] == "consultation.search"]
    assert all("900123" not in str(r["detail"].get("phone")) for r in searches)


async def test_call_handlers_replay_only_their_sessions_for_a_while(
    app_client: tuple[web.Application, Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = app_client
    await sign_in(client, "handler")
    found = await (await client.get("/api/recordings")).json()
    [recording] = found["recordings"]
    media, trail = recording["parts"][0]["url"], recording["trail_url"]
    assert (await client.get(media)).status == 200
    assert (await client.get(trail)).status == 200

    await sign_in(client, "hugo")
    assert (await (await client.get("/api/recordings")).json())["recordings"] == []
    for path in (media, trail):
        refused = await client.get(path)
        assert refused.status == 403
        assert "took part" in (await refused.json())["error"]
    assert [r["session_id"] for r in app[AUDIT].read() if r["action"] == "access_denied"] == [
        "sess-1",
        "sess-1",
    ]

    later = utcnow() + timedelta(hours=24, minutes=1)  # SCENELINK_HANDLER_REPLAY_HOURS: 24
    monkeypatch.setattr(evidence_routes, "utcnow", lambda: later)
    await sign_in(client, "handler")
    assert (await (await client.get("/api/recordings")).json())["recordings"] == []
    assert (await client.get(media)).status == 403
    await sign_in(client, "ivan")  # investigators search the whole store, at any time
    assert (await client.get(media)).status == 200


async def test_right_of_access_export_verifies(
    app_client: tuple[web.Application, Client], tmp_path: Path
) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    body = {"phone": "+447700900123", "recipient": "Data subject (SAR 12)", "purpose": "s.45"}
    started = await client.post("/api/exports", json=body, headers=HEADERS)
    assert started.status == 202
    job = await started.json()
    assert job["session_ids"] == ["sess-1"]
    async with asyncio.timeout(30):
        while job["state"] == "running":
            await asyncio.sleep(0.1)
            job = await (await client.get(f"/api/exports/{job['export_id']}")).json()
    assert job["state"] == "done" and job["done_bytes"] == job["total_bytes"] > 0

    await sign_in(client, "iris")  # another investigator cannot take it
    assert (await client.get(job["download_url"])).status == 403
    await sign_in(client, "ivan")
    package = await (await client.get(job["download_url"])).read()
    folder = tmp_path / "received"
    zipfile.ZipFile(io.BytesIO(package)).extractall(folder)
    reports = verify_package(folder)
    assert [r.session_id for r in reports] == ["sess-1"]

    exports = [r for r in app[AUDIT].read() if r["action"] == "disclosure.export"]
    assert exports and exports[0]["detail"]["recipient"] == "Data subject (SAR 12)"
    assert exports[0]["session_id"] == "sess-1"

    # A package is a copy outside the store: a day later it is gone.
    old = app[EXPORTS].get(job["export_id"])
    old.request = replace(old.request, requested_at=old.request.requested_at - timedelta(days=2))
    assert (await client.post("/api/exports", json=body, headers=HEADERS)).status == 202
    assert (await client.get(f"/api/exports/{job['export_id']}")).status == 404
    assert not old.path.exists()


async def test_export_refuses_bad_requests(app_client: tuple[web.Application, Client]) -> None:
    _, client = app_client
    await sign_in(client, "ivan")
    both = {"phone": "07700900123", "session_ids": ["sess-1"], "recipient": "x", "purpose": "y"}
    assert (await client.post("/api/exports", json=both, headers=HEADERS)).status == 422
    unknown = {"session_ids": ["nope"], "recipient": "x", "purpose": "y"}
    assert (await client.post("/api/exports", json=unknown, headers=HEADERS)).status == 404
    nobody = {"phone": "07700900000", "recipient": "x", "purpose": "y"}
    assert (await client.post("/api/exports", json=nobody, headers=HEADERS)).status == 404
    assert (await client.get("/api/exports/nope")).status == 404


async def test_download_original_bundle(app_client: tuple[web.Application, Client]) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    response = await client.get("/api/recordings/sess-1/bundle")
    assert response.status == 200
    names = zipfile.ZipFile(io.BytesIO(await response.read())).namelist()
    assert "sessions/sess-1/manifest.jws" in names and "export.jws" in names
    assert any(r["action"] == "disclosure.download" for r in app[AUDIT].read())


async def test_media_answers_byte_ranges(app_client: tuple[web.Application, Client]) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    recordings = (await (await client.get("/api/recordings")).json())["recordings"]
    url = recordings[0]["parts"][0]["url"]
    whole_response = await client.get(url)
    assert whole_response.status == 200
    assert whole_response.headers["Accept-Ranges"] == "bytes"
    whole = await whole_response.read()
    size = len(whole)
    assert size > 1000

    for header, start, stop in (
        ("bytes=0-", 0, size),  # a player's first request
        ("bytes=100-199", 100, 200),
        (f"bytes={size - 10}-", size - 10, size),
        ("bytes=-50", size - 50, size),
        (f"bytes=-{size + 5}", 0, size),  # a suffix longer than the part is all of it
        (f"bytes=10-{size + 99}", 10, size),  # a last byte past the end is the end
    ):
        part = await client.get(url, headers={"Range": header})
        assert part.status == 206, header
        assert part.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{size}", header
        assert part.headers["Accept-Ranges"] == "bytes"
        assert await part.read() == whole[start:stop], header

    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
        outside = await client.get(url, headers={"Range": header})
        assert outside.status == 416, header
        assert outside.headers["Content-Range"] == f"bytes */{size}"

    for header in ("bytes=5-2", "bytes=0-1,5-6", "items=0-5", "bytes=", "bytes=-", "bytes=a-b"):
        malformed = await client.get(url, headers={"Range": header})
        assert malformed.status == 400, header
        assert "one byte range" in (await malformed.json())["error"]

    # An If-Range for another version of the part gets the whole part.
    etag = whole_response.headers["ETag"]
    same = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status == 206
    other = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert other.status == 200 and len(await other.read()) == size

    # Audited: the whole download, "bytes=0-" and the If-Range ones that start at 0; never
    # the later ranges a player asks for while it plays and seeks, nor the refused ones.
    playbacks = [r for r in app[AUDIT].read() if r["action"] == "consultation.playback"]
    assert len(playbacks) == 4


async def test_one_playback_is_one_audit_record(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    recording = (await (await client.get("/api/recordings")).json())["recordings"][0]
    part, size = recording["parts"][0], recording["segments"][0]["bytes"]
    # What a browser's <video> asks for: from 0, the tail (cues), then seeks.
    for header in ("bytes=0-", f"bytes={size - 4096}-", "bytes=-4096", "bytes=2000-", "bytes=900-"):
        assert (await client.get(part["url"], headers={"Range": header})).status == 206
    playbacks = [r for r in app[AUDIT].read() if r["action"] == "consultation.playback"]
    assert [(r["actor"], r["session_id"], r["detail"]["part"]) for r in playbacks] == [
        ("ivan", "sess-1", part["url"].rsplit("/", 1)[1])
    ]


async def test_one_recording_by_id(app_client: tuple[web.Application, Client]) -> None:
    app, client = app_client
    await sign_in(client, "ivan")
    listed = (await (await client.get("/api/recordings")).json())["recordings"]
    one = await client.get("/api/recordings/sess-1")
    assert one.status == 200
    assert await one.json() == listed[0]
    assert ("ivan", "consultation.view", "sess-1") in [
        (r["actor"], r["action"], r["session_id"]) for r in app[AUDIT].read()
    ]
    unknown = await client.get("/api/recordings/nope")
    assert unknown.status == 404
    assert "no recording" in (await unknown.json())["error"]

    await sign_in(client, "handler")  # took part in it
    assert (await client.get("/api/recordings/sess-1")).status == 200
    await sign_in(client, "hugo")  # took no part
    refused = await client.get("/api/recordings/sess-1")
    assert refused.status == 403
    assert "took part" in (await refused.json())["error"]
    denied = [r for r in app[AUDIT].read() if r["action"] == "access_denied"]
    assert [(r["actor"], r["detail"]["route"]) for r in denied] == [
        ("hugo", "/api/recordings/sess-1")
    ]

    openapi = await (await client.get("/api/openapi.json")).json()
    operation = openapi["paths"]["/api/recordings/{session_id}"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RecordingView"
    }


async def test_search_near_a_grid_reference(app_client: tuple[web.Application, Client]) -> None:
    app, client = app_client
    await sign_in(client, "ivan")

    async def found(**params: str) -> list[str]:
        response = await client.get("/api/recordings", params=params)
        assert response.status == 200, await response.text()
        return [r["session_id"] for r in (await response.json())["recordings"]]

    # The trail's first fix is in TQ 30157 79671; TQ 301 806's centre is 946 m north of
    # its second.
    assert await found(near="TQ 30157 79671", radius_m="20") == ["sess-1"]
    assert await found(near="TQ3015779671", radius_m="20") == ["sess-1"]
    assert await found(near="TQ 301 806", radius_m="900") == []
    assert await found(near="TQ 301 806", radius_m="1000") == ["sess-1"]
    assert await found(near="51.5010, -0.1262", radius_m="5") == ["sess-1"]
    for params, field, words in [
        ({"near": "TQ 3013 797", "radius_m": "20"}, "near", "not 7"),
        ({"near": "TI 301 797", "radius_m": "20"}, "near", "not a 100 km square"),
        ({"near": "Whitehall", "radius_m": "20"}, "near", "two letters"),
        ({"near": "TQ 301 797"}, "radius_m", "metres"),
        ({"near": "TQ 301 797", "radius_m": "a lot"}, "radius_m", "metres"),
        ({"near": "TQ 301 797", "radius_m": "0"}, "radius_m", "metres"),
        ({"radius_m": "20"}, "near", "needs a place"),
    ]:
        response = await client.get("/api/recordings", params=params)
        assert response.status == 400
        assert words in (await response.json())["fields"][field]
    searches = await app[AUDIT].search(action="consultation.search", limit=100)
    assert [(r["detail"].get("near"), r["detail"].get("radius_m")) for r in searches][3] == (
        "TQ 301 806",
        "1000",
    )
