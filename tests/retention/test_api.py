"""The retention routes end to end on a real app (local evidence store): roles, reasons, audit."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, SERVICE
from tests.client import Client, client_of

ROLES = ["call_handler", "investigator", "supervisor", "admin"]
HEADERS = {"X-Requested-With": "scenelink"}


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, tmp_path: Path) -> Client:
    operators = [{"username": r, "password": "pw-" + r, "roles": [r]} for r in ROLES]
    app = make_app(load_settings(data_dir=tmp_path, operators=operators))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    return await client_of(aiohttp_client, server)


async def as_role(client: Client, role: str) -> None:
    client.session.cookie_jar.clear()
    signed = await client.post(
        "/api/login", json={"username": role, "password": "pw-" + role}, headers=HEADERS
    )
    assert signed.status == 200


async def post(client: Client, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.post(path, json=body, headers=HEADERS)
    return response.status, await response.json()


async def test_link_hold_release_shorten_and_queue(client: Client) -> None:
    app = client.app
    session = await app[SERVICE].create(
        "07700 900123", "CAD-7", "video", "call_handler", "http://x"
    )
    sid, base = session.id, f"/api/retention/{session.id}"

    await as_role(client, "call_handler")
    state = await (await client.get(base)).json()
    assert state["classes"] == ["unassessed"] and state["links"] == []
    assert state["disposal_at"] == (session.created_at + timedelta(days=31)).isoformat()
    status, body = await post(client, f"{base}/links", {"reference": "CR-1", "class_name": "x"})
    assert status == 422 and "reason" in body["fields"]
    status, body = await post(
        client, f"{base}/links", {"reference": "CR-1", "class_name": "nfa", "reason": "crime"}
    )
    assert status == 422 and "no retention class 'nfa'" in body["detail"]
    soon = (session.created_at + timedelta(days=40)).date().isoformat()
    status, body = await post(
        client,
        f"{base}/links",
        {
            "reference": "CR-1",
            "class_name": "pre_charge",
            "reason": "burglary reported",
            "events": {"decision": soon},
        },
    )
    assert status == 200, body
    assert body["state"]["classes"] == ["pre_charge"] and body["state"]["disposal_at"]
    assert body["locks"]["extended"] == body["locks"]["versions"] > 0  # the ledger's own objects
    status, _ = await post(client, f"{base}/holds", {"kind": "court", "reason": "trial"})
    assert status == 403

    await as_role(client, "investigator")
    status, body = await post(client, f"{base}/holds", {"kind": "court", "reason": "trial"})
    assert status == 201 and body["state"]["disposal_at"] is None and body["locks"]["legal_hold"]
    hold_id = body["hold_id"]
    status, _ = await post(client, f"{base}/holds/{hold_id}/release", {"reason": "verdict"})
    assert status == 403
    queue = await (await client.get("/api/retention/queue")).json()
    assert "court" in queue["hold_kinds"] and any(
        c["name"] == "mopi_group_2" for c in queue["classes"]
    )
    assert queue["items"] == []  # nothing in the store yet: the queue reads the store

    await as_role(client, "supervisor")
    status, body = await post(client, f"{base}/holds/{hold_id}/release", {"reason": "verdict"})
    assert status == 200 and body["state"]["holds"] == [] and not body["locks"]["legal_hold"]
    status, body = await post(client, f"{base}/holds/{hold_id}/release", {"reason": "again"})
    assert status == 422
    status, _ = await post(client, f"{base}/shorten", {"reason": "error"})
    assert status == 403
    queue = await (await client.get("/api/retention/queue")).json()
    assert [(i["why"], i["session_id"]) for i in queue["items"]] == []  # 40 days away

    await as_role(client, "admin")
    status, body = await post(client, f"{base}/shorten", {"reason": "linked in error"})
    assert status == 200, body  # nothing locked later than the rules: no versions changed
    status, body = await post(
        client,
        "/api/retention/nope/links",
        {"reference": "CR-1", "class_name": "charged", "reason": "x" * 5},
    )
    assert status == 404

    records = [r for r in app[AUDIT].read() if r["session_id"] == sid]
    decisions = [(r["actor"], r["action"], r["detail"].get("reason")) for r in records]
    assert ("call_handler", "alteration.retention_link", "burglary reported") in decisions
    assert ("investigator", "alteration.retention_hold", "trial") in decisions
    assert ("supervisor", "alteration.retention_release", "verdict") in decisions
    assert ("admin", "alteration.retention_shortened", "linked in error") in decisions
    assert ("call_handler", "consultation.retention_state", None) in decisions
