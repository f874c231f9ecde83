"""The supervisors' audit routes: search by session, person, action and dates, and one
session's extract with its chain proof (itself audited)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.audit.extract import AuditExtract, check_extract
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT
from tests.client import Client, client_of

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [
    {"username": "sue", "password": "pw-sue", "roles": ["supervisor"]},
    {"username": "ann", "password": "pw-ann", "roles": ["admin"]},
]


@pytest.fixture
async def app_client(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> tuple[web.Application, Client]:
    app = make_app(load_settings(data_dir=tmp_path, operators=OPERATORS))
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    for n in range(4):
        await app[AUDIT].record("ivan", "consultation.view", f"s{n % 2}", "10.0.0.9")
    login = {"username": "sue", "password": "pw-sue"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200
    return app, client


async def test_search_by_session_person_action_and_dates(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    first_at = datetime.fromisoformat(app[AUDIT].read()[1]["at"])

    async def seqs(**params: str) -> list[int]:
        response = await client.get("/api/audit", params=params)
        assert response.status == 200, await response.text()
        body = await response.json()
        assert body["chain_intact"] is True
        return [r["seq"] for r in body["records"]]

    assert await seqs(session_id="s1", actor="ivan", action="consultation.view") == [1, 3]
    assert await seqs(actor="ivan", **{"from": first_at.isoformat()}) == [1, 2, 3]
    assert await seqs(actor="ivan", to=first_at.isoformat()) == [0, 1]
    tomorrow = (first_at + timedelta(days=1)).date().isoformat()
    assert await seqs(**{"from": tomorrow}) == []
    searched = [r for r in app[AUDIT].read() if r["action"] == "consultation.audit_search"]
    assert searched[0]["detail"]["person"] == "ivan" and searched[0]["session_id"] == "s1"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"from": "yesterday"}, "from"), ({"from": "2026-12-02", "to": "2026-12-01"}, "from")],
)
async def test_bad_dates_are_refused(
    app_client: tuple[web.Application, Client], params: dict[str, str], field: str
) -> None:
    app, client = app_client
    before = len(app[AUDIT].read())
    response = await client.get("/api/audit", params=params)
    assert response.status == 400
    assert field in (await response.json())["fields"]
    assert len(app[AUDIT].read()) == before


async def test_one_sessions_extract_with_its_proof(
    app_client: tuple[web.Application, Client],
) -> None:
    app, client = app_client
    response = await client.get("/api/audit/extract", params={"session_id": "s0"})
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="audit-s0.json"'
    extract: AuditExtract = await response.json()
    assert [r["seq"] for r in extract["records"]] == [0, 2]
    assert extract["made_by"] == "sue" and extract["chain_intact"]
    assert check_extract(extract) is None
    made = app[AUDIT].read()[-1]
    assert (made["actor"], made["action"], made["session_id"]) == (
        "sue",
        "disclosure.audit_extract",
        "s0",
    )
    assert made["detail"] == {"format": "json", "records": 2}

    as_csv = await client.get("/api/audit/extract", params={"session_id": "s1", "format": "csv"})
    assert as_csv.status == 200 and as_csv.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await as_csv.text())))
    assert [r["seq"] for r in rows] == ["1", "3"]


@pytest.mark.parametrize(
    ("params", "status"),
    [({}, 400), ({"session_id": "s0", "format": "xml"}, 400), ({"session_id": "nope"}, 404)],
)
async def test_extract_refusals(
    app_client: tuple[web.Application, Client], params: dict[str, str], status: int
) -> None:
    app, client = app_client
    before = len(app[AUDIT].read())
    response = await client.get("/api/audit/extract", params=params)
    assert response.status == status
    assert "error" in await response.json()
    assert len(app[AUDIT].read()) == before


async def test_admins_do_not_read_the_extract(app_client: tuple[web.Application, Client]) -> None:
    _, client = app_client
    client.session.cookie_jar.clear()
    login = {"username": "ann", "password": "pw-ann"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200
    assert (await client.get("/api/audit/extract", params={"session_id": "s0"})).status == 403


async def test_the_extract_is_in_the_openapi_document(
    app_client: tuple[web.Application, Client],
) -> None:
    _, client = app_client
    document = await (await client.get("/api/openapi.json")).json()
    assert "/api/audit/extract" in document["paths"]
    assert set(document["components"]["schemas"]["AuditExtract"]["properties"]) >= {
        "records",
        "links",
        "head",
        "chain_intact",
    }
