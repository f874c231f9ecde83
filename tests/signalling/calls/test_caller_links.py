"""The caller's SMS: one GSM 7-bit segment per invite type, with a short random link id that
the state store keeps only as its hash, and the same refusals as the old signed tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError
from pytest_aiohttp import AiohttpClient

from signalling.calls.service import LinkNotUsable, SessionService
from signalling.calls.sessions import utcnow
from signalling.calls.state import MemoryStore, RedisStore
from signalling.config import load_settings
from signalling.smstext import GSM7, SMS_LIMIT, septets
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT, SERVICE
from tests.client import Client, client_of

HEADERS = {"X-Requested-With": "scenelink"}
OPERATORS = [{"username": "alice", "password": "pw-alice", "roles": ["call_handler"]}]
# As long as the typical https://999.example-police.uk; plain HTTP, so that the test client
# keeps the console's cookie (it is Secure under an https public URL).
PUBLIC_URL = "http://9999.example-police.uk"
LINK = re.compile(re.escape(PUBLIC_URL) + r"/c/([A-Za-z0-9_-]+)$")


@pytest.fixture(params=["memory", "redis"])
async def setup(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> AsyncIterator[tuple[web.Application, Client]]:
    """Default templates and force name; the embedded store or a real redis-server."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    app = make_app(
        load_settings(
            data_dir=tmp_path, operators=OPERATORS, public_url=PUBLIC_URL, redis_url=redis_url
        )
    )
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    signed = await client.post(
        "/api/login", json={"username": "alice", "password": "pw-alice"}, headers=HEADERS
    )
    assert signed.status == 200
    yield app, client


async def send(client: Client, mode: str = "video") -> tuple[str, str, str]:
    """A new invite: (session id, SMS text, link id)."""
    response = await client.post(
        "/api/sessions",
        json={"phone": "07700 900123", "incident_ref": "CAD-7", "mode": mode},
        headers=HEADERS,
    )
    assert response.status == 201, await response.text()
    session_id = (await response.json())["id"]
    return (session_id, *await last_sms(client))


async def last_sms(client: Client) -> tuple[str, str]:
    outbox = await (await client.get("/api/sms/outbox")).json()
    text: str = outbox["messages"][0]["text"]  # newest first
    found = LINK.search(text)
    assert found, text
    return text, found[1]


def random_bits(link_id: str) -> int:
    """The id's randomness: the bytes its base64url encodes (it is a whole number of them)."""
    raw = base64.urlsafe_b64decode(link_id + "=" * (-len(link_id) % 4))
    assert base64.urlsafe_b64encode(raw).rstrip(b"=").decode() == link_id
    return 8 * len(raw)


@pytest.mark.parametrize("mode", ["video", "location"])
async def test_each_invite_is_one_gsm_sms_with_a_short_random_link(
    setup: tuple[web.Application, Client], mode: str
) -> None:
    _, client = setup
    _, text, link_id = await send(client, mode)
    assert len(text.encode(GSM7)) == len(text)  # GSM 7-bit, no two-septet characters
    assert septets(text) <= SMS_LIMIT and len(text) <= SMS_LIMIT
    assert text.startswith("Police: ") and "999" in text
    assert ("video" in text) == (mode == "video")  # location only promises no video
    assert random_bits(link_id) >= 128
    ids = {link_id} | {(await send(client, mode))[2] for _ in range(5)}
    assert len(ids) == 6


async def test_the_store_keeps_only_the_link_ids_hash(
    setup: tuple[web.Application, Client], request: pytest.FixtureRequest
) -> None:
    app, client = setup
    session_id, _, link_id = await send(client)
    digest = hashlib.sha256(link_id.encode()).hexdigest()
    store = app[SERVICE].store
    if isinstance(store, MemoryStore):
        kept = repr(vars(store))
        assert list(store._links) == [digest]
        assert link_id not in kept and link_id not in repr(store._sessions)
    else:
        assert isinstance(store, RedisStore)
        redis = store._redis
        keys = [k async for k in redis.scan_iter(match=f"{store.prefix}*")]
        assert f"{store.prefix}link:{digest}" in keys
        assert json.loads(await redis.get(f"{store.prefix}link:{digest}"))["session_id"] == (
            session_id
        )
        assert 0 < await redis.pttl(f"{store.prefix}link:{digest}")
        for key in keys:
            assert link_id not in key
            assert link_id not in json.dumps(await redis_value(redis, key))
    assert (await client.get(f"/c/{link_id}")).status == 200


async def redis_value(redis: Any, key: str) -> Any:
    match await redis.type(key):
        case "string":
            return await redis.get(key)
        case "hash":
            return await redis.hgetall(key)
        case "list":
            return await redis.lrange(key, 0, -1)
        case "zset":
            return await redis.zrange(key, 0, -1)
        case other:
            raise AssertionError(f"{key}: a {other} the test does not read")


async def test_resend_replaces_the_link(setup: tuple[web.Application, Client]) -> None:
    app, client = setup
    session_id, _, old = await send(client, "location")
    resent = await client.post(f"/api/sessions/{session_id}/resend", headers=HEADERS)
    assert resent.status == 200
    text, new = await last_sms(client)
    assert new != old and "video" not in text
    service: SessionService = app[SERVICE]
    with pytest.raises(LinkNotUsable, match="^replaced by a newer link$"):
        await service.caller_session(old)
    assert (await client.get(f"/c/{old}")).status == 410
    assert (await client.get(f"/c/{new}")).status == 200
    config = await client.get("/api/caller/config", headers={"Authorization": f"Bearer {new}"})
    assert (await config.json())["mode"] == "location"
    stale = await client.get("/api/caller/config", headers={"Authorization": f"Bearer {old}"})
    assert stale.status == 410


async def test_late_ended_expired_and_unknown_links_are_refused_and_audited(
    setup: tuple[web.Application, Client],
) -> None:
    app, client = setup
    service: SessionService = app[SERVICE]
    late_id, _, late = await send(client)
    await service.store.update(late_id, link_expires_at=utcnow() - timedelta(seconds=1))
    ended_id, _, ended = await send(client)
    assert (await client.get(f"/c/{ended}")).status == 200
    await client.post(f"/api/sessions/{ended_id}/end", headers=HEADERS)
    old_id, _, old = await send(client)
    assert (await client.get(f"/c/{old}")).status == 200  # opened: lives session_max_s
    opened = utcnow() - timedelta(seconds=service.settings.session_max_s + 1)
    await service.store.update(old_id, opened_at=opened)

    cases = [
        (late, "not opened in time"),
        (ended, "session ended"),
        (old, "expired"),
        ("A" * 22, "unknown link"),
        ("not-a-link", "unknown link"),
    ]
    for link_id, reason in cases:
        with pytest.raises(LinkNotUsable, match=f"^{reason}$"):
            await service.caller_session(link_id)
        page = await client.get(f"/c/{link_id}")
        assert page.status == 410 and "no longer works" in await page.text()
    refused = [r for r in app[AUDIT].read() if r["action"] == "caller_link_refused"]
    assert [r["detail"]["reason"] for r in refused] == [reason for _, reason in cases]
    assert all(r["detail"]["route"] == "/c/<token>" for r in refused)
    for link_id in (late, ended, old):
        assert link_id not in json.dumps(refused)


def test_the_gsm_alphabet() -> None:
    assert septets("".join(chr(c) for c in range(ord("A"), ord("Z") + 1))) == 26
    assert septets("Police: 999 @£$_ é") == 18 and septets("[€]") == 6
    for char in "’–“…ŵ😀\t":
        with pytest.raises(ValueError, match="not a GSM 7-bit character"):
            septets(char)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"sms_template": "{force}: tap here – {link}"}, r"SMS_TEMPLATE .*'–' \(U\+2013\)"),
        ({"sms_template_location": "{force}’s link: {link}"}, r"TEMPLATE_LOCATION .*U\+2019"),
        ({"sms_template": "{force}: " + "please " * 15 + "{link}"}, r"SMS_TEMPLATE .*160"),
        ({"sms_template_location": "{force}: see {url}"}, r"TEMPLATE_LOCATION .*\{link\}"),
        ({"sms_template": "{force}: tap"}, r"SMS_TEMPLATE .*no \{link\}"),
        ({"force_name": "Heddlu Dyfed-Powys ŵ"}, r"FORCE_NAME .*U\+0175"),
        ({"force_name": "The Constabulary of " + "x" * 40}, r"SMS_TEMPLATE .*160"),
        ({"public_url": "https://" + "a" * 60 + ".example.uk"}, r"SMS_TEMPLATE .*160"),
    ],
)
def test_a_template_that_is_not_one_gsm_sms_stops_the_start(
    tmp_path: Path, settings: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        load_settings(data_dir=tmp_path, **settings)


def test_the_defaults_fit_with_room_for_a_longer_force_name(tmp_path: Path) -> None:
    load_settings(data_dir=tmp_path, force_name="Metropolitan Police Service")
    load_settings(data_dir=tmp_path, sms_template="{force} [999]: {link}", public_url=PUBLIC_URL)
