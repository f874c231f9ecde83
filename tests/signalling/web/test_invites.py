"""The invite types through the API: a bail check's place, verdicts and their record; a
screening appointment's window; a missing person tracked past the session's usual life."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.calls.sessions import utcnow
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, SERVICE, SETTINGS
from tests.client import Client, client_of
from tests.signalling.web.test_api import HEADERS, OPERATORS, create, sign_in

# The Cenotaph, Whitehall (TQ 30157 79671 is the fix below's square).
HOME = "51.50250, -0.12620"


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    return make_app(
        load_settings(
            data_dir=tmp_path, operators=OPERATORS, force_name="Test Force", session_max_s=2
        )
    )


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, app: web.Application) -> Client:
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    return await client_of(aiohttp_client, server)


async def sent(client: Client, **body: Any) -> tuple[dict[str, Any], str, str]:
    """Create a session: its view, the SMS text and the link's token."""
    response = await create(client, **body)
    assert response.status == 201, await response.text()
    session = await response.json()
    outbox = await (await client.get("/api/sms/outbox")).json()
    [text] = [m["text"] for m in outbox["messages"] if m["session_id"] == session["id"]]
    return session, text, text.rsplit("/c/", 1)[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def fix(client: Client, token: str, lat: float, lon: float, accuracy: float) -> None:
    body = {"type": "fix", "lat": lat, "lon": lon, "accuracy": accuracy}
    response = await client.post(
        "/api/caller/fixes", json=body | {"timestamp": time.time() * 1000}, headers=bearer(token)
    )
    assert response.status == 204, await response.text()


async def test_a_bail_check_needs_a_place_it_can_find(client: Client) -> None:
    await sign_in(client)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"mode": "bail_check", "tolerance_m": 50}, "place", "needs the place"),
        ({"mode": "bail_check", "place": HOME}, "tolerance_m", "tolerance in metres"),
        ({"mode": "bail_check", "place": "TQ 3015 796", "tolerance_m": 50}, "place", "not 7"),
        ({"mode": "bail_check", "place": "12 High St", "tolerance_m": 50}, "place", "geocoder"),
        ({"mode": "bail_check", "place": HOME, "tolerance_m": -5}, "tolerance_m", "greater"),
        ({"mode": "video", "place": HOME, "tolerance_m": 50}, "place", "only a bail"),
        ({"mode": "parole", "place": HOME}, "mode", "video"),
    ]
    for body, field, words in cases:
        response = await create(client, **body)
        assert response.status == 422, body
        assert words in (await response.json())["fields"][field]
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_bail_check_verdicts_are_shown_recorded_and_audited(
    client: Client, app: web.Application
) -> None:
    await sign_in(client)
    session, text, token = await sent(
        client, mode="bail_check", place="TQ 30157 79671", tolerance_m=50
    )
    assert "bail" in text and "video" not in text
    invite = session["invite"]
    assert invite["label"] == "Bail or court-order check" and invite["media"] == "location"
    assert invite["required_place"]["grid_ref"] == "TQ 30157 79671"
    assert invite["bail_check"] is None
    config = await (await client.get("/api/caller/config", headers=bearer(token))).json()
    assert config["mode"] == "location" and config["invite"] == "bail_check"
    shared = await client.post(
        f"/api/sessions/{session['id']}/shares", json={"kind": "link"}, headers=HEADERS
    )
    officer_token = (await shared.json())["link"].split("/o/")[1]
    officer = await client.get("/api/officer/share", headers=bearer(officer_token))
    officer_view = (await officer.json())["session"]
    assert officer_view["mode"] == "bail_check" and officer_view["media"] == "location"
    place = invite["required_place"]
    # Fixes on the data channel are handled concurrently: five at once are one first check.
    at_door = {"type": "fix", "lat": place["lat"], "lon": place["lon"], "accuracy": 10}
    await asyncio.gather(
        *(
            app[SERVICE].handle_caller_message(
                session["id"], json.dumps(at_door | {"timestamp": time.time() * 1000 - i})
            )
            for i in range(5)
        )
    )
    await fix(client, token, place["lat"], place["lon"], 10)  # at the door
    await fix(client, token, place["lat"] + 0.0001, place["lon"], 10)  # 11 m: still within
    await fix(client, token, place["lat"] + 0.0005, place["lon"], 10)  # 56 m: uncertain
    await fix(client, token, place["lat"] + 0.0030, place["lon"], 10)  # 334 m away
    view = await (await client.get(f"/api/sessions/{session['id']}")).json()
    last = view["invite"]["bail_check"]
    assert last["verdict"] == "outside" and last["distance_m"] == pytest.approx(334, abs=2)
    assert last["accuracy_m"] == 10 and last["fix"]["received_at"]
    await client.post(f"/api/sessions/{session['id']}/end", headers=HEADERS)
    events_file = app[SETTINGS].evidence_dir / session["id"] / "events.jsonl"
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    [created] = [e for e in events if e["event"] == "session_created"]
    assert created["mode"] == "bail_check" and created["required_place"]["tolerance_m"] == 50
    checks = [e for e in events if e["event"] == "bail_check"]
    assert [c["verdict"] for c in checks] == ["within", "uncertain", "outside"]
    assert checks[0]["distance_m"] < 1 and checks[0]["required_place"] == place
    audited = await app[AUDIT].search(action="collection.bail_check")
    assert [r["detail"]["verdict"] for r in audited] == ["within", "uncertain", "outside"]


async def test_a_screening_link_opens_only_in_its_window(
    client: Client, app: web.Application
) -> None:
    await sign_in(client)
    later = utcnow() + timedelta(hours=2)
    session, text, token = await sent(
        client, mode="screening", appointment_at=later.isoformat(), window_minutes=30
    )
    assert "appointment" in text
    assert session["invite"]["appointment"]["starts_at"] == later.isoformat()
    page = await client.get(f"/c/{token}")
    assert page.status == 403
    assert f'data-opens-at="{later.isoformat()}"' in await page.text()
    config = await client.get("/api/caller/config", headers=bearer(token))
    assert config.status == 403
    assert (await config.json())["opens_at"] == later.isoformat()
    view = await (await client.get(f"/api/sessions/{session['id']}")).json()
    assert view["opened_at"] is None and view["caller_summary"] != "Link expired when tapped"
    past = utcnow() - timedelta(minutes=40)
    refusals: list[tuple[dict[str, Any], str]] = [
        ({"appointment_at": past.isoformat(), "window_minutes": 30}, "already passed"),
        ({"appointment_at": "2026-12-07T10:00:00"}, "timezone"),
        ({}, "needs its time"),
    ]
    for body, words in refusals:
        response = await create(client, mode="screening", **body)
        assert response.status == 422, body
        assert words in json.dumps(await response.json()), body
    now, _, open_token = await sent(
        client, mode="screening", appointment_at=(utcnow() - timedelta(minutes=5)).isoformat()
    )
    assert (await client.get(f"/c/{open_token}")).status == 200
    config = await (await client.get("/api/caller/config", headers=bearer(open_token))).json()
    assert config["mode"] == "video" and config["uploads_first"] is True


async def test_a_missing_person_is_tracked_past_the_session_limit(client: Client) -> None:
    await sign_in(client)
    missing, text, token = await sent(client, mode="missing_person")
    assert "999 call" not in text
    assert missing["invite"]["tracking"] == "until_stopped"
    _, _, usual = await sent(client, mode="location")
    for link in (token, usual):
        assert (await client.get(f"/c/{link}")).status == 200
    await asyncio.sleep(2.2)  # past SCENELINK_SESSION_MAX_S (2 s here)
    assert (await client.get(f"/c/{usual}")).status == 410
    assert (await client.get(f"/c/{token}")).status == 200
    await fix(client, token, 51.5025, -0.1262, 15)
    await client.post(f"/api/sessions/{missing['id']}/end", headers=HEADERS)
    assert (await client.get(f"/c/{token}")).status == 410
