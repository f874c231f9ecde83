"""Sign-in and sign-out through the API: the throttle holds under concurrent guesses and
across nodes, stops an address before an account, timing does not reveal account names, and
a signed-out cookie is dead everywhere."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.operators import accounts
from signalling.operators.auth import COOKIE_NAME
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import AUDIT
from tests.client import Client, client_of

HEADERS = {"X-Requested-With": "scenelink"}


def operators(username: str) -> list[dict[str, Any]]:
    return [{"username": username, "password": "pw-right", "roles": ["call_handler"]}]


def new_name() -> str:
    """Accounts and addresses of their own: the tests' redis-server outlives each test."""
    return f"user{random.getrandbits(48):x}"


def new_address() -> str:
    """A loopback address of this test's own to sign in from (all of 127/8 is loopback)."""
    return "127." + ".".join(str(random.randrange(1, 255)) for _ in range(3))


async def started(aiohttp_client: AiohttpClient, app: web.Application) -> Client:
    server = TestServer(app)
    await server.start_server(**RUNNER_OPTIONS)
    return await client_of(aiohttp_client, server)


async def login_from(
    client: Client, address: str, username: str, password: str = "pw-right"
) -> tuple[int, str | None]:
    """Sign in from another address; the status and the console cookie, if one was set."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        response = await session.post(
            client.make_url("/api/login"),
            json={"username": username, "password": password},
            headers=HEADERS,
        )
        cookie = response.cookies.get(COOKIE_NAME)
        return response.status, cookie.value if cookie else None


async def me_with(client: Client, cookie: str) -> int:
    client.session.cookie_jar.clear()
    response = await client.get("/api/me", headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    return response.status


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The hashes argon2 verified a password against (the real verification still runs)."""
    hashes: list[str] = []
    real = PasswordHasher.verify

    def counting(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        hashes.append(str(hash))
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", counting)
    yield hashes


async def test_concurrent_wrong_passwords_are_counted_before_checking(
    aiohttp_client: AiohttpClient, tmp_path: Path, verified: list[str]
) -> None:
    app = make_app(load_settings(data_dir=tmp_path, operators=operators("alice")))
    client = await started(aiohttp_client, app)
    guesses = [
        client.post(
            "/api/login", json={"username": "alice", "password": f"guess{i}"}, headers=HEADERS
        )
        for i in range(20)
    ]
    statuses = sorted(r.status for r in await asyncio.gather(*guesses))
    assert statuses == [401] * 5 + [429] * 15
    actions = [r["action"] for r in app[AUDIT].read()]
    assert actions.count("sign_in_failed") == 5 and actions.count("sign_in_throttled") == 15
    assert len(verified) == 5


async def test_an_unknown_name_costs_a_password_check_too(
    aiohttp_client: AiohttpClient, tmp_path: Path, verified: list[str]
) -> None:
    app = make_app(load_settings(data_dir=tmp_path, operators=operators("alice")))
    client = await started(aiohttp_client, app)
    assert (await login_from(client, new_address(), "nobody-by-this-name"))[0] == 401
    assert verified == [accounts._DUMMY_HASH]
    assert (await login_from(client, new_address(), "alice", "wrong"))[0] == 401
    assert len(verified) == 2


@dataclass
class Cluster:
    first: Client
    second: Client
    account: str


@pytest.fixture(params=["memory", "redis"])
async def cluster(
    request: pytest.FixtureRequest, aiohttp_client: AiohttpClient, tmp_path: Path
) -> Cluster:
    """Two nodes and an account: with Redis, two apps sharing one redis-server and the
    token secret."""
    name = new_name()
    common: dict[str, Any] = {
        "operators": operators(name),
        "token_secret": "one secret shared by every node of the cluster",
        "login_failures_per_account": 8,
    }
    if request.param == "memory":  # one process: its second node is itself
        client = await started(aiohttp_client, make_app(load_settings(data_dir=tmp_path, **common)))
        return Cluster(client, client, name)
    redis_url = request.getfixturevalue("redis_url")
    first, second = (
        make_app(load_settings(data_dir=tmp_path / node, redis_url=redis_url, **common))
        for node in ("a", "b")
    )
    return Cluster(
        await started(aiohttp_client, first), await started(aiohttp_client, second), name
    )


async def test_a_cookie_is_dead_after_sign_out_on_every_node(cluster: Cluster) -> None:
    first, second = cluster.first, cluster.second
    status, cookie = await login_from(first, new_address(), cluster.account)
    assert status == 200 and cookie is not None
    assert await me_with(first, cookie) == 200 and await me_with(second, cookie) == 200
    signed_out = await first.post(
        "/api/logout", headers=HEADERS | {"Cookie": f"{COOKIE_NAME}={cookie}"}
    )
    assert signed_out.status == 200
    assert await me_with(first, cookie) == 401 and await me_with(second, cookie) == 401


async def test_failures_count_on_every_node(cluster: Cluster) -> None:
    first, second = cluster.first, cluster.second
    name, address = cluster.account, new_address()
    statuses = [(await login_from(node, address, name, "guess"))[0] for node in [first] * 3]
    statuses += [(await login_from(node, address, name, "guess"))[0] for node in [second] * 2]
    assert statuses == [401] * 5
    assert (await login_from(first, address, name))[0] == 429
    assert (await login_from(second, address, name))[0] == 429


async def test_an_address_is_stopped_before_the_account(cluster: Cluster) -> None:
    client = cluster.first
    name, attacker, owner = cluster.account, new_address(), new_address()
    statuses = [(await login_from(client, attacker, name, "guess"))[0] for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    status, cookie = await login_from(client, owner, name)
    assert status == 200 and cookie is not None
    # Failures from many addresses (eight here) stop the account, wherever the next try is from.
    second = new_address()
    statuses = [(await login_from(client, second, name, "guess"))[0] for _ in range(3)]
    statuses += [(await login_from(client, attacker, name, "guess"))[0] for _ in range(5)]
    assert statuses == [401] * 3 + [429] * 5  # the owner's success forgave the account only
    third = new_address()
    statuses = [(await login_from(client, third, name, "guess"))[0] for _ in range(5)]
    assert statuses == [401] * 5
    assert (await login_from(client, new_address(), name))[0] == 429
