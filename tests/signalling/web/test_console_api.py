"""What the console relies on: the routes each role may call (told at sign-in, from the one
permission table), a background refresh that is not a consultation, and a map area refused
in words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT
from signalling.web.permissions import RULES
from tests.client import Client, client_of

HEADERS = {"X-Requested-With": "scenelink"}
ROLES = ["call_handler", "officer", "investigator", "supervisor", "admin"]
REFRESH = {"X-SceneLink-Refresh": "1"}


@pytest.fixture
async def app_client(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> tuple[web.Application, Client]:
    operators = [{"username": r, "password": "pw-" + r, "roles": [r]} for r in ROLES]
    app = make_app(load_settings(data_dir=tmp_path, operators=operators))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    return app, await client_of(aiohttp_client, server)


async def sign_in(client: Client, user: str) -> dict[str, object]:
    client.session.cookie_jar.clear()
    response = await client.post(
        "/api/login", json={"username": user, "password": "pw-" + user}, headers=HEADERS
    )
    assert response.status == 200
    body: dict[str, object] = await response.json()
    return body


async def test_the_console_is_told_what_the_role_may_call(
    app_client: tuple[web.Application, Client],
) -> None:
    _, client = app_client
    for role in ROLES:
        signed = await sign_in(client, role)
        me = await (await client.get("/api/me")).json()
        expected = sorted(
            f"{m} {p}"
            for (m, p), rule in RULES.items()
            if isinstance(rule, frozenset) and role in rule
        )
        assert signed["allowed"] == me["allowed"] == expected, role
    # The officer is offered no link sending and no end; the supervisor the audit trail.
    officer = await sign_in(client, "officer")
    assert isinstance(officer["allowed"], list)
    assert "POST /api/sessions" not in officer["allowed"]
    assert "POST /api/sessions/{session_id}/end" not in officer["allowed"]
    supervisor = await sign_in(client, "supervisor")
    assert isinstance(supervisor["allowed"], list) and "GET /api/audit" in supervisor["allowed"]


async def test_a_background_refresh_is_not_a_consultation(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    await sign_in(client, "investigator")

    def searches() -> list[dict[str, Any]]:
        return [r for r in app[AUDIT].read() if r["action"] == "consultation.search"]

    assert (await client.get("/api/recordings")).status == 200
    assert len(searches()) == 1
    for _ in range(5):  # the console's timer, a minute's worth and more
        assert (await client.get("/api/recordings", headers=REFRESH)).status == 200
    assert len(searches()) == 1
    # New terms are a person searching, whatever the request says; so is pressing Refresh.
    new = await client.get("/api/recordings", params={"incident_ref": "CAD-7"}, headers=REFRESH)
    assert new.status == 200
    assert (await client.get("/api/recordings", params={"incident_ref": "CAD-7"})).status == 200
    assert [r["detail"]["incident_ref"] for r in searches()] == [None, "CAD-7", "CAD-7"]


@pytest.mark.parametrize(
    ("area", "message"),
    [
        ("51.5,x,51.6,0.1", "west is not a number of degrees: 'x'"),
        ("51.5,-0.1,51.6", "area must be four numbers: south,west,north,east"),
        ("51.6,-0.1,51.5,0.1", "area corners are out of range or in the wrong order"),
        ("nan,-0.1,51.5,0.1", "area corners are out of range or in the wrong order"),
    ],
)
async def test_a_bad_map_area_is_refused_in_words(
    app_client: tuple[web.Application, Client], area: str, message: str
) -> None:
    app, client = app_client
    await sign_in(client, "investigator")
    before = len(app[AUDIT].read())
    response = await client.get("/api/recordings", params={"area": area})
    assert response.status == 400
    assert await response.json() == {"error": "bad area", "fields": {"area": message}}
    assert len(app[AUDIT].read()) == before  # nothing searched, nothing recorded


async def test_admins_list_the_accounts_without_their_passwords(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    await sign_in(client, "admin")
    response = await client.get("/api/accounts")
    assert response.status == 200
    listed = (await response.json())["accounts"]
    assert [(a["username"], a["roles"], a["disabled"]) for a in listed] == [
        (r, [r], False) for r in sorted(ROLES)
    ]
    assert "argon2" not in await response.text()
    made = app[AUDIT].read()[-1]
    assert (made["actor"], made["action"], made["detail"]) == (
        "admin",
        "consultation.accounts",
        {"results": 5},
    )
    await sign_in(client, "supervisor")
    assert (await client.get("/api/accounts")).status == 403
