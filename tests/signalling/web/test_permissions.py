"""Every route against every role: allowed or refused as the permission table says, and a
route without a rule fails this test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, SERVICE, SHARING
from signalling.web.permissions import RULES, rule_for
from tests.client import Client, client_of

ROLES = ["call_handler", "officer", "investigator", "supervisor", "admin"]
HEADERS = {"X-Requested-With": "scenelink"}


@pytest.fixture
async def setup(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> tuple[web.Application, Client, str]:
    operators = [{"username": r, "password": "pw-" + r, "roles": [r]} for r in ROLES]
    app = make_app(load_settings(data_dir=tmp_path, operators=operators))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    session = await app[SERVICE].create("07700 900123", "CAD-1", "video", "admin", "http://x")
    # An officer with no other role sees only what is shared with them.
    await app[SHARING].share_with(session.id, "officer", "admin")
    return app, client, session.id


def concrete(path: str, session_id: str) -> str:
    """The route with its parameters filled in; ids other than the session's are unknown."""
    values = {"session_id": session_id, "name": "media-001.mkv", "token": "not-a-token"}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "no-such-id"), path)


def test_every_route_has_a_rule() -> None:
    app = make_app(load_settings(data_dir=Path("/tmp/unused-scenelink")))
    missing = [
        f"{r.method} {r.resource.canonical}"
        for r in app.router.routes()
        if r.resource is not None and rule_for(r.method, r.resource.canonical) is None
    ]
    assert missing == []


async def test_routes_against_roles(setup: tuple[web.Application, Client, str]) -> None:
    app, client, session_id = setup
    guarded = [(m, p, rule) for (m, p), rule in RULES.items() if isinstance(rule, frozenset)]
    for method, path, _ in guarded:
        response = await client.request(
            method, concrete(path, session_id), headers=HEADERS, json={}
        )
        assert response.status == 401, (method, path, "anonymous")
    for role in ROLES:
        client.session.cookie_jar.clear()
        signed = await client.post(
            "/api/login", json={"username": role, "password": "pw-" + role}, headers=HEADERS
        )
        assert signed.status == 200
        for method, path, rule in guarded:
            response = await client.request(
                method, concrete(path, session_id), headers=HEADERS, json={}
            )
            if role in rule:
                assert response.status not in (401, 403), (method, path, role, response.status)
            else:
                assert response.status == 403, (method, path, role, response.status)
                # The roles that would be allowed are not told.
                assert await response.json() == {"error": "your role does not allow this"}
    assert len(guarded) >= 14
    denied = [r for r in app[AUDIT].read() if r["action"] == "access_denied"]
    assert denied and all(r["actor"] in ROLES for r in denied)


# The rules narrowed for least privilege, and every role's answer on each.
NARROWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/audit"): frozenset({"supervisor"}),
    ("GET", "/api/sessions/{session_id}/trail"): frozenset(
        {"call_handler", "officer", "supervisor", "admin"}
    ),
    ("POST", "/api/retention/{session_id}/holds/{hold_id}/release"): frozenset(
        {"supervisor", "admin"}
    ),
}


async def sign_in(client: Client, role: str) -> None:
    client.session.cookie_jar.clear()
    signed = await client.post(
        "/api/login", json={"username": role, "password": "pw-" + role}, headers=HEADERS
    )
    assert signed.status == 200


@pytest.mark.parametrize("role", ROLES)
async def test_narrowed_rules(setup: tuple[web.Application, Client, str], role: str) -> None:
    _, client, session_id = setup
    await sign_in(client, role)
    for (method, path), allowed in NARROWED.items():
        assert RULES[(method, path)] == allowed
        response = await client.request(
            method, concrete(path, session_id), headers=HEADERS, json={}
        )
        if role in allowed:
            assert response.status not in (401, 403), (method, path, response.status)
        else:
            assert response.status == 403, (method, path, response.status)


async def test_acting_on_another_handlers_session_names_its_creator(
    setup: tuple[web.Application, Client, str],
) -> None:
    app, client, theirs = setup  # created by "admin"
    await sign_in(client, "call_handler")
    created = await client.post(
        "/api/sessions", json={"phone": "07700 900456", "incident_ref": "CAD-2"}, headers=HEADERS
    )
    mine = (await created.json())["id"]
    share = {"kind": "link", "label": "car 7"}
    for session_id in (theirs, mine):
        path = f"/api/sessions/{session_id}"
        assert (await client.post(f"{path}/resend", headers=HEADERS)).ok
        shared = await client.post(f"{path}/shares", json=share, headers=HEADERS)
        assert shared.status == 201
        assert (await client.post(f"{path}/end", headers=HEADERS)).ok
    acted = ("collection.link_resent", "disclosure.share_created", "session_ended")
    detail = {
        (r["session_id"], r["action"]): r["detail"]
        for r in app[AUDIT].read()
        if r["actor"] == "call_handler" and r["action"] in acted
    }
    assert len(detail) == 6
    for action in acted:
        assert detail[(theirs, action)]["creator"] == "admin"
        assert "creator" not in detail[(mine, action)]


async def test_actions_are_audited(setup: tuple[web.Application, Client, str]) -> None:
    app, client, session_id = setup
    await client.post(
        "/api/login", json={"username": "supervisor", "password": "wrong"}, headers=HEADERS
    )
    await client.post(
        "/api/login", json={"username": "supervisor", "password": "pw-supervisor"}, headers=HEADERS
    )
    await client.get(f"/api/sessions/{session_id}/trail")
    await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    found = await (await client.get("/api/audit", params={"session_id": session_id})).json()
    assert found["chain_intact"] is True
    actions = [(r["actor"], r["action"]) for r in found["records"]]
    assert ("supervisor", "consultation.location_trail") in actions
    assert ("supervisor", "session_ended") in actions
    everything = await (await client.get("/api/audit")).json()
    assert ("supervisor", "sign_in_failed") in [
        (r["actor"], r["action"]) for r in everything["records"]
    ]
    assert all(r["remote"] for r in everything["records"])


async def test_sign_in_is_throttled_after_repeated_failures(
    setup: tuple[web.Application, Client, str],
) -> None:
    app, client, _ = setup
    statuses = []
    for _ in range(7):
        response = await client.post(
            "/api/login", json={"username": "officer", "password": "guess"}, headers=HEADERS
        )
        statuses.append(response.status)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]
    # Even the right password waits until the window passes.
    right = await client.post(
        "/api/login", json={"username": "officer", "password": "pw-officer"}, headers=HEADERS
    )
    assert right.status == 429
    assert any(r["action"] == "sign_in_throttled" for r in app[AUDIT].read())
