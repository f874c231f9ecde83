"""Sharing with officers through the API: accounts, officer links, withdrawal, expiry, the
officer's WebSocket (distance and bearing), the audit trail and the evidence."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, SERVICE, SETTINGS, SHARING
from tests.client import Client, client_of

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [
    {"username": "alice", "password": "pw-alice", "roles": ["call_handler"]},
    {"username": "bob", "password": "pw-bob", "roles": ["officer"]},
    {"username": "carol", "password": "pw-carol", "roles": ["officer"]},
    {"username": "sam", "password": "pw-sam", "roles": ["supervisor"]},
]
FIX: dict[str, Any] = {"type": "fix", "lat": 51.5035, "lon": -0.1275, "accuracy": 8.0}


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    return make_app(load_settings(data_dir=tmp_path, operators=OPERATORS, session_max_s=7200))


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, app: web.Application) -> Client:
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    return await client_of(aiohttp_client, server)


async def sign_in(client: Client, user: str) -> None:
    client.session.cookie_jar.clear()
    response = await client.post(
        "/api/login", json={"username": user, "password": f"pw-{user}"}, headers=HEADERS
    )
    assert response.status == 200


async def new_session(client: Client) -> str:
    await sign_in(client, "alice")
    response = await client.post(
        "/api/sessions", json={"phone": "07700 900123", "incident_ref": "CAD-7"}, headers=HEADERS
    )
    assert response.status == 201
    return str((await response.json())["id"])


async def share(client: Client, session_id: str, **body: Any) -> Any:
    return await client.post(f"/api/sessions/{session_id}/shares", json=body, headers=HEADERS)


async def officer_link(client: Client, session_id: str, **body: Any) -> tuple[str, str]:
    response = await share(client, session_id, kind="link", **body)
    assert response.status == 201, await response.text()
    created = await response.json()
    return created["id"], created["link"].split("/o/")[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def events_of(app: web.Application, session_id: str) -> list[dict[str, Any]]:
    await app[SERVICE].end(session_id, "test")  # flushes the recorder
    path = app[SETTINGS].evidence_dir / session_id / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_officer_sees_only_sessions_shared_with_them(
    client: Client, app: web.Application
) -> None:
    shared, private = await new_session(client), await new_session(client)
    await sign_in(client, "bob")
    assert (await client.get(f"/api/sessions/{shared}")).status == 403
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []

    await sign_in(client, "alice")
    for name in ("carol-nobody", "sam"):  # no such account; not an officer
        response = await share(client, shared, kind="account", username=name)
        assert response.status == 422
        assert "username" in (await response.json())["fields"]
    response = await share(client, shared, kind="account", username="bob")
    assert response.status == 201
    created = await response.json()
    assert (created["recipient"], created["active"], created["link"]) == ("bob", True, None)
    assert (await share(client, shared, kind="account", username="bob")).status == 409

    await sign_in(client, "bob")
    listed = (await (await client.get("/api/sessions")).json())["sessions"]
    assert [s["id"] for s in listed] == [shared]
    assert (await client.get(f"/api/sessions/{shared}")).status == 200
    assert (await client.get(f"/api/sessions/{shared}/trail")).status == 200
    refused = await client.get(f"/api/sessions/{private}")
    assert refused.status == 403
    assert (await refused.json())["error"] == "this session has not been shared with you"
    assert (await client.get(f"/api/sessions/{shared}/shares")).status == 403  # handlers only

    # A supervisor's role lets them see everything, shared or not.
    await sign_in(client, "sam")
    assert len((await (await client.get("/api/sessions")).json())["sessions"]) == 2

    await sign_in(client, "alice")
    withdrawn = await client.delete(
        f"/api/sessions/{shared}/shares/{created['id']}", headers=HEADERS
    )
    assert withdrawn.status == 200
    assert (await withdrawn.json())["active"] is False
    await sign_in(client, "bob")
    gone = await client.get(f"/api/sessions/{shared}")
    assert gone.status == 410
    assert "withdrawn" in (await gone.json())["error"]
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []

    records = [(r["actor"], r["action"], r["detail"]) for r in app[AUDIT].read()]
    disclosures = [(a, act, d["recipient"]) for a, act, d in records if "disclosure" in act]
    assert disclosures == [
        ("alice", "disclosure.share_created", "bob"),
        ("alice", "disclosure.share_withdrawn", "bob"),
    ]
    evidence = [e for e in await events_of(app, shared) if e["event"].startswith("share_")]
    assert [(e["event"], e["recipient"], e["by"]) for e in evidence] == [
        ("share_created", "bob", "alice"),
        ("share_withdrawn", "bob", "alice"),
    ]


async def test_officer_link_works_until_withdrawn(
    client: Client, app: web.Application, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    session_id = await new_session(client)
    share_id, token = await officer_link(client, session_id, label="Car 12")
    client.session.cookie_jar.clear()  # the tablet has no console sign-in

    page = await client.get(f"/o/{token}")
    assert page.status == 200 and 'data-access="ok"' in await page.text()
    assert page.headers["Referrer-Policy"] == "no-referrer"
    info = await client.get("/api/officer/share", headers=bearer(token))
    assert info.status == 200
    body = await info.json()
    assert (body["share_id"], body["label"], body["session"]["incident_ref"]) == (
        share_id,
        "Car 12",
        "CAD-7",
    )
    assert "phone_masked" not in json.dumps(body)

    # The link opens only officer-link routes; a console route wants a sign-in.
    assert (await client.get(f"/api/sessions/{session_id}", headers=bearer(token))).status == 401
    assert (await client.get("/api/officer/share")).status == 401

    await sign_in(client, "alice")
    assert (
        await client.delete(f"/api/sessions/{session_id}/shares/{share_id}", headers=HEADERS)
    ).status == 200
    client.session.cookie_jar.clear()
    refused = await client.get("/api/officer/share", headers=bearer(token))
    assert refused.status == 410
    assert (await refused.json())["error"] == "access was withdrawn by the call handler"
    ended = await client.get(f"/o/{token}")
    assert ended.status == 410 and 'data-access="ended"' in await ended.text()
    assert token not in caplog.text
    assert "/o/<token>" in caplog.text


async def test_links_that_are_not_officer_links_are_refused(
    client: Client, app: web.Application
) -> None:
    session_id = await new_session(client)
    outbox = await (await client.get("/api/sms/outbox")).json()
    text = outbox["messages"][0]["text"]
    caller_token = text[text.index("/c/") + 3 :]
    forged = app[SHARING].tokens.mint(session_id, token_id="no-such-share")[0]
    for token in (caller_token, "not.a.token", forged):
        response = await client.get("/api/officer/share", headers=bearer(token))
        assert response.status == 403
        assert (await response.json())["error"] == "this is not a valid officer link"
    refused = [r for r in app[AUDIT].read() if r["action"] == "officer_link_refused"]
    assert len(refused) == 3 and caller_token not in str(refused) and forged not in str(refused)


async def test_officer_link_expires_and_never_outlives_its_session(
    client: Client, app: web.Application
) -> None:
    session_id = await new_session(client)
    _, long_token = await officer_link(client, session_id, minutes=24 * 60)
    session = await app[SERVICE].store.get(session_id)
    limit = app[SHARING].tokens.verify(long_token).expires_at
    assert limit <= session.created_at.timestamp() + 7200 + 1

    share, token = await app[SHARING].create_link(session_id, "Car 1", "alice", lifetime_s=1)
    assert (await client.get("/api/officer/share", headers=bearer(token))).status == 200
    await asyncio.sleep(2.1)
    expired = await client.get("/api/officer/share", headers=bearer(token))
    assert expired.status == 410
    assert (await expired.json())["error"] == "this officer link has expired"


async def test_officer_feed_gives_bearing_then_access_ended(
    client: Client, app: web.Application
) -> None:
    session_id = await new_session(client)
    service = app[SERVICE]
    share_id, token = await officer_link(client, session_id)
    fix = FIX | {"timestamp": time.time() * 1000}
    await service.handle_caller_message(session_id, json.dumps(fix))

    async with client.ws_connect("/api/officer/ws") as ws:
        await ws.send_json({"type": "auth", "token": token})
        trail = await ws.receive_json(timeout=5)
        assert trail["type"] == "trail" and trail["fixes"][0]["lat"] == FIX["lat"]
        state = await ws.receive_json(timeout=5)
        assert state["session"]["state"] == "link_sent"
        # The tablet is 1 km due south of the caller: the caller is due north of it.
        await ws.send_json(
            {
                "type": "position",
                "lat": FIX["lat"] - 0.008993,
                "lon": FIX["lon"],
                "accuracy": 12,
                "timestamp": time.time() * 1000,
            }
        )
        bearing = await ws.receive_json(timeout=5)
        assert bearing["type"] == "bearing"
        assert bearing["distance_m"] == pytest.approx(1000, abs=2)
        assert bearing["bearing_deg"] == pytest.approx(0, abs=0.5) or bearing[
            "bearing_deg"
        ] == pytest.approx(360, abs=0.5)
        await ws.send_json({"type": "position", "lat": 999})
        assert (await ws.receive_json(timeout=5))["type"] == "error"

        await app[SHARING].withdraw(session_id, share_id, "alice")
        ended = await ws.receive_json(timeout=5)
        while ended["type"] != "access_ended":
            ended = await ws.receive_json(timeout=5)
        assert ended["reason"] == "access was withdrawn by the call handler"
        closing = await ws.receive(timeout=5)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED)
        assert ws.close_code == 4403

    async with client.ws_connect("/api/officer/ws") as ws:
        await ws.send_json({"type": "auth", "token": token})
        refused = await ws.receive_json(timeout=5)
        assert refused == {
            "type": "access_ended",
            "reason": "access was withdrawn by the call handler",
        }

    records = [r for r in app[AUDIT].read() if r["actor"] == f"officer-link:{share_id}"]
    assert [r["action"] for r in records] == ["consultation.live_location"]


async def test_session_end_ends_every_share(client: Client, app: web.Application) -> None:
    session_id = await new_session(client)
    _, token = await officer_link(client, session_id)
    assert (await share(client, session_id, kind="account", username="bob")).status == 201
    async with client.ws_connect("/api/officer/ws") as ws:
        await ws.send_json({"type": "auth", "token": token})
        await app[SERVICE].end(session_id, "alice")
        message = await ws.receive_json(timeout=5)
        while message["type"] != "access_ended":
            message = await ws.receive_json(timeout=5)
        assert message["reason"] == "the session has ended"
    gone = await client.get("/api/officer/share", headers=bearer(token))
    assert gone.status == 410
    assert (await share(client, session_id, kind="link")).status == 410
    await sign_in(client, "bob")
    assert (await client.get(f"/api/sessions/{session_id}")).status == 410


async def test_officer_feed_refuses_deep_json_and_stays_open(
    client: Client, app: web.Application
) -> None:
    session_id = await new_session(client)
    _, token = await officer_link(client, session_id)
    async with client.ws_connect("/api/officer/ws") as ws:
        await ws.send_str("[" * 30000)  # as the first message: no token in it
        assert (await ws.receive_json(timeout=5))["type"] == "access_ended"
    async with client.ws_connect("/api/officer/ws") as ws:
        await ws.send_json({"type": "auth", "token": token})
        assert (await ws.receive_json(timeout=5))["type"] == "trail"
        assert (await ws.receive_json(timeout=5))["type"] == "state"
        for deep in ("[" * 4000, "[" * 40 + "]" * 40):  # within the size limit
            await ws.send_str(deep)
            refused = await ws.receive_json(timeout=5)
            assert refused["type"] == "error" and "nested deeper" in refused["error"]
        await ws.send_json({"type": "position", "lat": 999})  # the feed is still there
        assert (await ws.receive_json(timeout=5))["type"] == "error"


async def test_officer_feed_closed_before_authenticating_is_quiet(
    client: Client, app: web.Application, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(3):
        ws = await client.ws_connect("/api/officer/ws")
        await ws.close()
    await asyncio.sleep(0.5)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info] == []
    assert [r for r in app[AUDIT].read() if r["action"] == "officer_link_refused"] == []
