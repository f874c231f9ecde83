"""The caller's language through the API (issue 14): the handler's choice reaches the page,
its config, the SMS and the evidence; the page's language at consent is kept; unknown
languages are refused and change nothing."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import SETTINGS
from tests.client import Client, client_of
from tests.signalling.web.test_api import offer_sdp

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [{"username": "alice", "password": "pw-alice", "roles": ["call_handler"]}]


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    return make_app(load_settings(data_dir=tmp_path, operators=OPERATORS, force_name="Heddlu"))


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, app: web.Application) -> Client:
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    login = {"username": "alice", "password": "pw-alice"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200
    return client


async def send(client: Client, **body: Any) -> tuple[dict[str, Any], str, str]:
    """A new session, its SMS text and its link's path."""
    payload = {"phone": "07700 900123", "incident_ref": "CAD-14"} | body
    response = await client.post("/api/sessions", json=payload, headers=HEADERS)
    assert response.status == 201, await response.text()
    session = await response.json()
    outbox = await (await client.get("/api/sms/outbox")).json()
    text = next(m["text"] for m in outbox["messages"] if m["session_id"] == session["id"])
    return session, text, text[text.index("/c/") :].split()[0]


async def caller_config(client: Client, path: str) -> dict[str, Any]:
    token = path.rsplit("/", 1)[1]
    response = await client.get("/api/caller/config", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    config: dict[str, Any] = await response.json()
    return config


async def test_the_console_is_told_the_languages(client: Client) -> None:
    config = await (await client.get("/api/config")).json()
    assert config["languages"][:1] == [{"code": "en", "name": "English"}]
    assert {"code": "cy", "name": "Cymraeg"} in config["languages"]
    assert config["default_language"] == "en"


async def test_the_catalogues_are_served_as_json_like_the_pages_script(client: Client) -> None:
    script = await client.get("/caller/static/i18n.js")
    welsh = await client.get("/caller/static/i18n/cy.json")
    assert welsh.status == 200 and welsh.content_type == "application/json"
    assert (await welsh.json())["consent.agree"] == "Cytuno a rhannu"
    for header in ("Cache-Control", "X-Content-Type-Options"):  # as the script's, whatever
        assert welsh.headers.get(header) == script.headers.get(header), header
    assert "ETag" in welsh.headers and "Last-Modified" in welsh.headers
    assert (await client.get("/caller/static/i18n/fr.json")).status == 404


async def test_the_handlers_welsh_reaches_page_config_and_sms(client: Client) -> None:
    session, text, path = await send(client, language="cy")
    assert session["language"] == "cy" and session["consent_language"] is None
    assert text.startswith("Heddlu: fel y gofynnwyd ar eich galwad 999")
    page = await (await client.get(path)).text()
    assert 'data-language="cy"' in page and 'data-languages="en cy"' in page
    assert (await caller_config(client, path))["language"] == "cy"


async def test_without_a_choice_the_browser_decides_and_the_sms_is_the_default(
    client: Client,
) -> None:
    session, text, path = await send(client)
    assert session["language"] is None
    assert text.startswith("Heddlu: as asked on your 999 call")
    assert 'data-language=""' in await (await client.get(path)).text()
    assert (await caller_config(client, path))["language"] is None


@pytest.mark.parametrize("language", ["fr", "CY", "", "cy-x-" + "a" * 20, 7])
async def test_an_unknown_language_is_refused_and_sends_nothing(
    client: Client, language: object
) -> None:
    payload = {"phone": "07700 900123", "incident_ref": "CAD-14", "language": language}
    response = await client.post("/api/sessions", json=payload, headers=HEADERS)
    assert response.status == 422
    assert "language" in (await response.json())["fields"]
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []
    assert (await (await client.get("/api/sms/outbox")).json())["messages"] == []


async def test_the_consent_keeps_the_pages_language(client: Client, app: web.Application) -> None:
    session, _, path = await send(client, language="cy")
    token = path.rsplit("/", 1)[1]
    await client.get(path)
    caller = {"Authorization": f"Bearer {token}"}
    sdp = await offer_sdp("sendonly")
    refused = await client.post(
        "/api/caller/offer", json={"sdp": sdp, "type": "offer", "language": "xx"}, headers=caller
    )
    assert refused.status == 422 and "language" in (await refused.json())["fields"]
    answer = await client.post(
        "/api/caller/offer", json={"sdp": sdp, "type": "offer", "language": "en"}, headers=caller
    )
    assert answer.status == 200, await answer.text()
    view = await (await client.get(f"/api/sessions/{session['id']}")).json()
    assert view["language"] == "cy" and view["consent_language"] == "en"

    await client.post(f"/api/sessions/{session['id']}/end", headers=HEADERS)
    events = app[SETTINGS].evidence_dir / session["id"] / "events.jsonl"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not events.exists():
        await asyncio.sleep(0.1)
    by_name = {e["event"]: e for e in map(json.loads, events.read_text().splitlines())}
    assert by_name["session_created"]["language"] == "cy"
    assert by_name["consent_given"]["language"] == "en"
