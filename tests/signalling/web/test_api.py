"""The JSON API and caller routes through aiohttp's test client, on embedded defaults."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiortc import RTCPeerConnection
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, SERVICE, SETTINGS
from signalling.web.openapi import doc_of
from tests.client import Client, client_of

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [
    {"username": "alice", "password": "pw-alice", "roles": ["call_handler"]},
    {"username": "bob", "password": "pw-bob", "roles": ["officer"]},
]


@pytest.fixture
def app(tmp_path: Path) -> web.Application:
    return make_app(load_settings(data_dir=tmp_path, operators=OPERATORS, force_name="Test Force"))


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, app: web.Application) -> Client:
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)  # as `scenelink serve` runs it
    return await client_of(aiohttp_client, server)


async def sign_in(client: Client, user: str = "alice") -> None:
    response = await client.post(
        "/api/login", json={"username": user, "password": f"pw-{user}"}, headers=HEADERS
    )
    assert response.status == 200, await response.text()


async def create(client: Client, **body: Any) -> Any:
    payload = {"phone": "07700 900123", "incident_ref": "CAD-1"} | body
    return await client.post("/api/sessions", json=payload, headers=HEADERS)


async def caller_link(client: Client) -> tuple[str, str]:
    response = await create(client)
    assert response.status == 201
    session = await response.json()
    outbox = await (await client.get("/api/sms/outbox")).json()
    text = outbox["messages"][0]["text"]
    return session["id"], text[text.index("/c/") :]


async def test_sign_in_is_required_and_checked(client: Client) -> None:
    assert (await client.get("/api/sessions")).status == 401
    wrong = await client.post(
        "/api/login", json={"username": "alice", "password": "x"}, headers=HEADERS
    )
    assert wrong.status == 401
    assert (await wrong.json())["error"] == "wrong username or password"
    await sign_in(client)
    me = await (await client.get("/api/me")).json()
    assert (me["username"], me["roles"]) == ("alice", ["call_handler"])
    assert "POST /api/sessions" in me["allowed"] and "GET /api/audit" not in me["allowed"]


async def test_state_change_without_csrf_header_is_refused(
    client: Client, app: web.Application
) -> None:
    await sign_in(client)
    response = await client.post(
        "/api/sessions", json={"phone": "07700 900123", "incident_ref": "X"}
    )
    assert response.status == 403
    assert "CSRF" in (await response.json())["error"]
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []
    [refused] = [r for r in app[AUDIT].read() if r["action"] == "csrf_refused"]
    assert refused["actor"] == "alice" and refused["detail"]["route"] == "/api/sessions"


async def test_officer_cannot_send_links(client: Client) -> None:
    await sign_in(client, "bob")
    response = await create(client)
    assert response.status == 403
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_create_session_sends_link_and_hides_the_number(client: Client) -> None:
    await sign_in(client)
    response = await create(client, mode="location")
    assert response.status == 201
    session = await response.json()
    assert session["state"] == "link_sent" and session["mode"] == "location"
    assert session["phone_masked"] == "+447••••••123"
    assert session["sms"] == {"status": "sent", "error": None}
    assert "+447700900123" not in json.dumps(session) and "token" not in json.dumps(session)
    outbox = await (await client.get("/api/sms/outbox")).json()
    assert "Test Force" in outbox["messages"][0]["text"]
    assert re.search(r"/c/[\w-]{22}$", outbox["messages"][0]["text"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "hello"}, "phone"),
        ({"phone": "020 7946 0000"}, "phone"),
        ({"incident_ref": ""}, "incident_ref"),
        ({"mode": "telepathy"}, "mode"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
async def test_invalid_session_request_names_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    await sign_in(client)
    response = await create(client, **body)
    assert response.status == 422
    assert field in (await response.json())["fields"]
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_unknown_ids_and_bad_bodies_get_json_errors(client: Client) -> None:
    await sign_in(client)
    unknown = await client.get("/api/sessions/doesnotexist")
    assert unknown.status == 404 and (await unknown.json())["error"] == "unknown session id"
    not_json = await client.post(
        "/api/sessions", data="{nope", headers=HEADERS | {"Content-Type": "application/json"}
    )
    assert not_json.status == 400
    huge = await client.post(
        "/api/sessions", data=b"x" * 200_000, headers=HEADERS | {"Content-Type": "application/json"}
    )
    assert huge.status == 413 and "too large" in (await huge.json())["error"]
    missing = await client.get("/api/nothing-here")
    assert missing.status == 404 and "error" in await missing.json()


async def test_caller_page_and_dead_links(
    client: Client, app: web.Application, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await sign_in(client)
    session_id, path = await caller_link(client)
    token = path.rsplit("/", 1)[1]

    page = await client.get(path)
    assert page.status == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    body = await page.text()
    assert 'data-mode="video"' in body and "Test Force" in body
    session = await (await client.get(f"/api/sessions/{session_id}")).json()
    assert session["state"] == "opened"

    config = await client.get("/api/caller/config", headers={"Authorization": f"Bearer {token}"})
    assert (await config.json())["mode"] == "video"

    forged = await client.get(path[:-4] + "AAAA")
    assert forged.status == 410 and "no longer works" in await forged.text()
    assert (await client.get("/api/caller/config")).status == 401

    ended = await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    assert (await ended.json())["state"] == "ended"
    dead = await client.get(path)
    assert dead.status == 410 and "no longer works" in await dead.text()
    offer = await client.post(
        "/api/caller/offer",
        json={"sdp": "v=0 x" * 3, "type": "offer"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert offer.status == 410
    assert token not in caplog.text
    refused = [r for r in app[AUDIT].read() if r["action"] == "caller_link_refused"]
    assert [r["detail"]["reason"] for r in refused] == [
        "unknown link",
        "session ended",
        "session ended",
    ]
    assert token not in json.dumps(refused)


async def offer_sdp(direction: str) -> str:
    """A real aiortc offer: video, audio and the location channel."""
    pc = RTCPeerConnection()
    pc.createDataChannel("location")
    for kind in ("video", "audio"):
        pc.addTransceiver(kind, direction=direction)
    await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


def spoilt(sdp: str) -> list[tuple[str, str]]:
    """Offers that parse but that aiortc refuses late, or answers uselessly."""
    return [
        (re.sub(r"a=rtpmap:(\d+) [^/]+/", r"a=rtpmap:\1 FOO/", sdp), "no codec"),
        (sdp.replace("a=mid:0\r\n", "a=mid:0\x00\x00\r\n"), "control characters"),
        (re.sub(r"a=fingerprint:[^\r]*\r\n", "", sdp), "DTLS fingerprint"),
        (sdp.replace("a=mid:1\r\n", "a=mid:0\r\n"), "a=mid"),
        (sdp.replace("a=rtcp-mux\r\n", ""), "rtcp-mux"),
    ]


async def test_malformed_sdp_is_refused_and_changes_nothing(
    client: Client, app: web.Application
) -> None:
    await sign_in(client)
    session_id, path = await caller_link(client)
    token = path.rsplit("/", 1)[1]
    await client.get(path)
    for sdp, problem in spoilt(await offer_sdp("sendonly")):
        response = await client.post(
            "/api/caller/offer",
            json={"sdp": sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 400, await response.text()
        assert problem in (await response.json())["detail"]
    for sdp, problem in spoilt(await offer_sdp("recvonly")):
        response = await client.post(
            f"/api/sessions/{session_id}/viewers",
            json={"sdp": sdp, "type": "offer"},
            headers=HEADERS,
        )
        assert response.status == 400, await response.text()
        assert problem in (await response.json())["detail"]
    session = await (await client.get(f"/api/sessions/{session_id}")).json()
    assert session["state"] == "opened" and session["consent_at"] is None
    assert session["viewers"] == 0
    for sdp in ("this is not sdp at all", "v=0\r\nm=video banana\r\n"):
        response = await client.post(
            "/api/caller/offer",
            json={"sdp": sdp, "type": "offer"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 400, await response.text()
        assert (await response.json())["error"] == "malformed SDP"
    session = await (await client.get(f"/api/sessions/{session_id}")).json()
    assert session["state"] == "opened"
    viewer = await client.post(
        f"/api/sessions/{session_id}/viewers",
        json={"sdp": "garbage garbage", "type": "offer"},
        headers=HEADERS,
    )
    assert viewer.status == 400


async def test_bad_fixes_are_counted_never_stored(client: Client, app: web.Application) -> None:
    await sign_in(client)
    session_id, _ = await caller_link(client)
    service = app[SERVICE]
    good = {"type": "fix", "lat": 51.5, "lon": -0.12, "accuracy": 10, "timestamp": 0}
    import time

    good["timestamp"] = time.time() * 1000
    await service.handle_caller_message(session_id, json.dumps(good))
    await service.handle_caller_message(session_id, json.dumps(good))  # keep-alive re-send
    bad_messages: list[dict[str, object] | str] = [
        good | {"lat": float("nan")},
        good | {"accuracy": 1e9},
        good | {"lat": 95},
        "not json",
        good | {"type": "selfie"},  # no such message
        good | {"pad": "x" * 5000},
        "[" * 4000,  # within the size limit, and too deep for Python's json
    ]
    for bad in bad_messages:
        await service.handle_caller_message(
            session_id, json.dumps(bad) if isinstance(bad, dict) else bad
        )
    session = await (await client.get(f"/api/sessions/{session_id}")).json()
    assert session["fix_count"] == 1 and session["rejected_fixes"] == 7
    trail = await (await client.get(f"/api/sessions/{session_id}/trail")).json()
    assert [f["lat"] for f in trail["fixes"]] == [51.5]
    await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)  # closes the evidence
    stored = (app[SETTINGS].evidence_dir / session_id / "location.jsonl").read_text()
    assert len(stored.splitlines()) == 1


async def test_rejected_fixes_are_counted_exactly_but_logged_once(
    client: Client, app: web.Application, caplog: pytest.LogCaptureFixture
) -> None:
    await sign_in(client)
    session_id, _ = await caller_link(client)
    for _ in range(200):
        await app[SERVICE].handle_caller_message(session_id, "not json")
    session = await (await client.get(f"/api/sessions/{session_id}")).json()
    assert session["rejected_fixes"] == 200
    assert [r.levelname for r in caplog.records if "rejected" in r.getMessage()] == ["WARNING"]


@pytest.mark.parametrize("body", ["[" * 30000, "[" * 40 + "]" * 40, '{"a":' * 5000])
async def test_deeply_nested_json_is_a_400_and_changes_nothing(client: Client, body: str) -> None:
    await sign_in(client)
    session_id, path = await caller_link(client)
    token = path.rsplit("/", 1)[1]
    posts = [
        ("/api/login", HEADERS),
        ("/api/sessions", HEADERS),
        (f"/api/sessions/{session_id}/shares", HEADERS),
        (f"/api/sessions/{session_id}/viewers", HEADERS),
        ("/api/caller/offer", {"Authorization": f"Bearer {token}"}),
    ]
    for url, headers in posts:
        response = await client.post(
            url, data=body, headers=headers | {"Content-Type": "application/json"}
        )
        assert response.status == 400, (url, await response.text())
        refusal = await response.json()
        assert refusal["error"] == "body is not valid JSON", url
        assert "nested deeper than 32 levels" in refusal["detail"]
    assert len((await (await client.get("/api/sessions")).json())["sessions"]) == 1
    assert (await (await client.get(f"/api/sessions/{session_id}/shares")).json())["shares"] == []
    session = await (await client.get(f"/api/sessions/{session_id}")).json()
    assert session["state"] == "link_sent" and session["viewers"] == 0


async def test_every_api_route_is_in_the_openapi_document(
    client: Client, app: web.Application
) -> None:
    undocumented = [
        f"{r.method} {r.resource.canonical}"
        for r in app.router.routes()
        if r.resource
        and r.resource.canonical.startswith("/api/")
        and r.method != "HEAD"
        and doc_of(r.handler) is None
    ]
    assert undocumented == []
    document = await (await client.get("/api/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    assert "post" in document["paths"]["/api/sessions"]
    schema = document["paths"]["/api/sessions"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert schema["$ref"].endswith("/CreateSessionRequest")
    assert "phone" in document["components"]["schemas"]["CreateSessionRequest"]["properties"]


async def test_forwarded_proto_makes_https_links(client: Client) -> None:
    await sign_in(client)
    await client.post(
        "/api/sessions",
        json={"phone": "07700 900123", "incident_ref": "CAD-9"},
        headers=HEADERS | {"X-Forwarded-Proto": "https"},
    )
    outbox = await (await client.get("/api/sms/outbox")).json()
    assert "https://" in outbox["messages"][0]["text"]


async def test_security_headers_on_pages_errors_and_redirects(client: Client) -> None:
    answers = [
        await client.get("/console/"),
        await client.get("/api/sessions"),  # 401
        await client.get("/api/nothing-here"),  # 404
        await client.get("/", allow_redirects=False),  # 302 to the console
        await client.get("/api/openapi.json"),
        await client.put("/api/sessions", headers=HEADERS),  # 405
        await client.get("/c/not-a-token"),  # 410 page
    ]
    assert [a.status for a in answers] == [200, 401, 404, 302, 200, 405, 410]
    for answer in answers:
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Server"] == "SceneLink"  # no Python or aiohttp version
    for answer in answers[1:2] + answers[4:]:  # the API and the link pages
        assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "PUT", "PATCH"])
@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/api/sessions", "GET,HEAD,POST"),
        ("/api/caller/offer", "POST"),
        ("/api/sessions/abc/shares/def", "DELETE"),
    ],
)
async def test_wrong_method_is_a_json_405_naming_the_allowed_ones(
    client: Client, method: str, path: str, allowed: str
) -> None:
    await sign_in(client)
    response = await client.request(method, path, headers=HEADERS, json={"incident_ref": "X"})
    assert response.status == 405
    assert response.headers["Allow"] == allowed
    assert await response.json() == {"error": "method not allowed"}
    assert (await (await client.get("/api/sessions")).json())["sessions"] == []


async def test_a_session_answer_is_exactly_what_the_document_describes(client: Client) -> None:
    await sign_in(client)
    created = await (await create(client)).json()
    document = await (await client.get("/api/openapi.json")).json()
    answer = document["paths"]["/api/sessions/{session_id}"]["get"]["responses"]["200"]
    name = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    schema = document["components"]["schemas"][name]
    session = await (await client.get(f"/api/sessions/{created['id']}")).json()
    assert set(session) == set(schema["properties"]) == set(schema["required"])
    assert set(session["sms"]) == set(
        document["components"]["schemas"]["SmsDelivery"]["properties"]
    )
