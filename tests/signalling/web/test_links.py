"""Links go out on a base URL the server trusts, never one a request's Host header chose, and
the development SMS outbox shows each operator only the links they sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import SERVICE, SHARING
from tests.client import Client, client_of

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [
    {"username": u, "password": f"pw-{u}", "roles": ["call_handler"]} for u in ("alice", "carol")
]
BODY = {"phone": "07700 900123", "incident_ref": "CAD-1"}
FORGED_HOSTS = ("evil.example", "evil.example:8080", "evil.example/x?@127.0.0.1")


async def serve(
    aiohttp_client: AiohttpClient, tmp_path: Path, **settings: Any
) -> tuple[web.Application, Client]:
    app = make_app(load_settings(data_dir=tmp_path, operators=OPERATORS, **settings))
    server = TestServer(app)  # on 127.0.0.1
    await server.start_server(**RUNNER_OPTIONS)
    return app, await client_of(aiohttp_client, server)


async def sign_in(client: Client, user: str) -> None:
    client.session.cookie_jar.clear()
    response = await client.post(
        "/api/login", json={"username": user, "password": f"pw-{user}"}, headers=HEADERS
    )
    assert response.status == 200


async def outbox(client: Client) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = (await (await client.get("/api/sms/outbox")).json())[
        "messages"
    ]
    return messages


async def test_no_links_for_a_forged_host_without_a_public_url(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    app, client = await serve(aiohttp_client, tmp_path)
    await sign_in(client, "alice")
    for host in FORGED_HOSTS:
        refused = await client.post("/api/sessions", json=BODY, headers=HEADERS | {"Host": host})
        assert refused.status == 503
        assert "SCENELINK_PUBLIC_URL" in (await refused.json())["error"]
    assert await app[SERVICE].store.recent() == [] and await outbox(client) == []

    for host in ("localhost:8080", "[::1]:8080"):  # development: such a link reaches no one
        sent = await client.post("/api/sessions", json=BODY, headers=HEADERS | {"Host": host})
        assert sent.status == 201
        assert f"http://{host}/c/" in (await outbox(client))[0]["text"]
    session_id = (await (await client.post("/api/sessions", json=BODY, headers=HEADERS)).json())[
        "id"
    ]
    share = {"kind": "link", "label": "car 7"}
    shares = f"/api/sessions/{session_id}/shares"
    refused = await client.post(shares, json=share, headers=HEADERS | {"Host": "evil.example"})
    assert refused.status == 503 and await app[SHARING].shares(session_id) == []
    resent = await client.post(
        f"/api/sessions/{session_id}/resend", headers=HEADERS | {"Host": "evil.example"}
    )
    assert resent.status == 503


async def test_a_public_url_is_used_whatever_the_host(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    _, client = await serve(aiohttp_client, tmp_path, public_url="http://scenelink.example")
    await sign_in(client, "alice")
    forged = HEADERS | {"Host": "evil.example"}
    created = await client.post("/api/sessions", json=BODY, headers=forged)
    assert created.status == 201
    assert "http://scenelink.example/c/" in (await outbox(client))[0]["text"]
    shares = f"/api/sessions/{(await created.json())['id']}/shares"
    shared = await client.post(shares, json={"kind": "link", "label": "car 7"}, headers=forged)
    assert shared.status == 201
    assert (await shared.json())["link"].startswith("http://scenelink.example/o/")


async def test_the_outbox_shows_only_what_you_sent(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    _, client = await serve(aiohttp_client, tmp_path)
    await sign_in(client, "alice")
    session_id = (await (await client.post("/api/sessions", json=BODY, headers=HEADERS)).json())[
        "id"
    ]
    first = await outbox(client)
    await sign_in(client, "carol")
    assert await outbox(client) == []
    resent = await client.post(f"/api/sessions/{session_id}/resend", headers=HEADERS)
    assert resent.status == 200  # covering for alice: carol's own message, a fresh link
    [theirs] = await outbox(client)
    assert theirs["session_id"] == session_id and theirs["text"] != first[0]["text"]
    await sign_in(client, "alice")
    assert await outbox(client) == first
