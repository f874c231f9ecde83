"""The ICE settings each peer is handed: the caller (/api/caller/config), a console viewer
(/api/sessions/{id}/ice) and an officer link (/api/officer/share) each get the static ICE
servers, then the TURN servers with a fresh credential of their own, and the transport policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from tests.client import Client, client_of
from tests.signalling.web.test_api import HEADERS, OPERATORS, caller_link, sign_in

STUN = {"urls": ["stun:stun.example:3478"]}
TURN_URLS = [
    "turn:turn.example:3478?transport=udp",
    "turn:turn.example:3478?transport=tcp",
    "turns:turn.example:443?transport=tcp",
]
SECRET = "coturn-static-auth-secret"
TTL_S = 1200


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    return make_app(
        load_settings(
            data_dir=tmp_path,
            operators=OPERATORS,
            ice_servers=[STUN],
            turn_urls=TURN_URLS,
            turn_secret=SECRET,
            turn_ttl_s=TTL_S,
            ice_transport_policy="relay",
        )
    )


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, app: web.Application) -> Client:
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    return await client_of(aiohttp_client, server)


def check(settings: dict[str, Any], peer: str, asked_at: float) -> None:
    """STUN as configured, then TURN with a credential for ``peer`` that coturn would take:
    expiring TTL_S from now, and its password the HMAC-SHA1 of its username."""
    assert settings["ice_transport_policy"] == "relay"
    static, turn = settings["ice_servers"]
    assert static == STUN
    assert turn["urls"] == TURN_URLS
    expiry, _, named = turn["username"].partition(":")
    assert named == peer
    assert int(asked_at) + TTL_S <= int(expiry) <= int(time.time()) + TTL_S
    digest = hmac.new(SECRET.encode(), turn["username"].encode(), hashlib.sha1).digest()
    assert turn["credential"] == base64.b64encode(digest).decode()


async def test_caller_viewer_and_officer_each_get_turn_with_their_own_fresh_credential(
    client: Client,
) -> None:
    await sign_in(client)
    session_id, path = await caller_link(client)
    token = path.rsplit("/", 1)[1]
    await client.get(path)  # the caller opens the link

    asked_at = time.time()
    caller = await client.get("/api/caller/config", headers={"Authorization": f"Bearer {token}"})
    assert caller.status == 200, await caller.text()
    check(await caller.json(), session_id, asked_at)

    viewer = await client.get(f"/api/sessions/{session_id}/ice")
    assert viewer.status == 200
    check(await viewer.json(), f"{session_id}.viewer", asked_at)

    created = await client.post(
        f"/api/sessions/{session_id}/shares", json={"kind": "link"}, headers=HEADERS
    )
    assert created.status == 201, await created.text()
    share = await created.json()
    officer_token = share["link"].split("/o/")[1]
    client.session.cookie_jar.clear()  # the tablet has no console sign-in
    officer = await client.get(
        "/api/officer/share", headers={"Authorization": f"Bearer {officer_token}"}
    )
    assert officer.status == 200, await officer.text()
    check(await officer.json(), f"{session_id}.share.{share['id']}", asked_at)


async def test_without_turn_the_static_servers_and_all_candidates(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    app = make_app(load_settings(data_dir=tmp_path, operators=OPERATORS, ice_servers=[STUN]))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    await sign_in(client)
    session_id, _ = await caller_link(client)
    ice = await (await client.get(f"/api/sessions/{session_id}/ice")).json()
    assert ice == {"ice_servers": [STUN], "ice_transport_policy": "all"}
