"""aiohttp's test client of a served SceneLink app, typed for mypy."""

from __future__ import annotations

from typing import cast

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pytest_aiohttp import AiohttpClient

Client = TestClient[web.Request, web.Application]
"""The test client of a whole app (``client.app`` is the app)."""


async def client_of(aiohttp_client: AiohttpClient, server: TestServer) -> Client:
    """``aiohttp_client(server)``, typed as aiohttp types ``TestClient(server)``.

    pytest-aiohttp's ``AiohttpClient`` types the client of any test server as
    ``TestClient[_Request, None]`` (its TODO for aiohttp 4), but a TestServer's client has the
    server's app.
    """
    return cast(Client, await aiohttp_client(server))
