"""A failed SMS is shown to the call handler, who sends a fresh link; the old one dies."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, SETTINGS
from tests.client import Client, client_of
from tests.providers import WEBHOOK_SECRET, Receiver, webhook_check

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [{"username": "alice", "password": "pw-alice", "roles": ["call_handler"]}]


@pytest.fixture
async def setup(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
) -> tuple[web.Application, Client, Receiver]:
    gateway = Receiver(webhook_check)
    url = str((await aiohttp_server(gateway.app("/sms"))).make_url("/sms"))
    app = make_app(
        load_settings(
            data_dir=tmp_path,
            operators=OPERATORS,
            sms_provider="webhook",
            sms_webhook_url=url,
            sms_webhook_secret=WEBHOOK_SECRET,
        )
    )
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    signed = await client.post(
        "/api/login", json={"username": "alice", "password": "pw-alice"}, headers=HEADERS
    )
    assert signed.status == 200
    return app, client, gateway


async def create(client: Client) -> dict[str, Any]:
    response = await client.post(
        "/api/sessions", json={"phone": "07700 900123", "incident_ref": "CAD-9"}, headers=HEADERS
    )
    assert response.status == 201
    session: dict[str, Any] = await response.json()
    return session


async def test_failed_sms_is_shown_and_a_resend_replaces_the_link(
    setup: tuple[web.Application, Client, Receiver],
) -> None:
    app, client, gateway = setup
    gateway.status = 503
    session = await create(client)
    assert session["sms"] == {"status": "failed", "error": "the SMS webhook answered HTTP 503"}
    gateway.status = 201
    session = await create(client)
    first_link = gateway.link_path(0)

    resent = await client.post(f"/api/sessions/{session['id']}/resend", headers=HEADERS)
    assert resent.status == 200
    assert (await resent.json())["sms"] == {"status": "sent", "error": None}
    second_link = gateway.link_path(1)
    assert second_link != first_link
    assert (await client.get(first_link)).status == 410  # replaced by the newer link
    assert (await client.get(second_link)).status == 200

    await client.post(f"/api/sessions/{session['id']}/end", headers=HEADERS)
    folder = app[SETTINGS].evidence_dir / session["id"]
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[:4] == ["session_created", "link_sent", "link_resent", "link_sent"]
    assert events[2]["by"] == "alice" and events[2]["token_id"] != events[0]["token_id"]
    audited = [r for r in app[AUDIT].read() if r["action"] == "collection.link_resent"]
    assert [(r["actor"], r["session_id"]) for r in audited] == [("alice", session["id"])]


async def test_a_failed_resend_is_shown_again(
    setup: tuple[web.Application, Client, Receiver],
) -> None:
    _, client, gateway = setup
    session = await create(client)
    gateway.status = 500
    resent = await client.post(f"/api/sessions/{session['id']}/resend", headers=HEADERS)
    assert resent.status == 200
    assert (await resent.json())["sms"]["status"] == "failed"
    assert (await client.get(gateway.link_path(0))).status == 410  # replaced all the same


async def test_no_resend_once_the_caller_opened_the_link_or_the_session_ended(
    setup: tuple[web.Application, Client, Receiver],
) -> None:
    _, client, gateway = setup
    session = await create(client)
    assert (await client.get(gateway.link_path(0))).status == 200
    refused = await client.post(f"/api/sessions/{session['id']}/resend", headers=HEADERS)
    assert refused.status == 409
    assert (await refused.json())["error"] == "caller already connected"
    assert (await client.get(gateway.link_path(0))).status == 200  # still theirs

    other = await create(client)
    await client.post(f"/api/sessions/{other['id']}/end", headers=HEADERS)
    ended = await client.post(f"/api/sessions/{other['id']}/resend", headers=HEADERS)
    assert ended.status == 409
    assert (await ended.json())["error"] == "session has ended"
    assert len(gateway.accepted) == 2
    unknown = await client.post("/api/sessions/nope/resend", headers=HEADERS)
    assert unknown.status == 404
