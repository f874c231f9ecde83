"""/healthz and /readyz: public, cheap, and 503 naming the check that fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from signalling.web.appkeys import NODE
from tests.client import Client
from tests.conftest import s3_bucket
from tests.harness import free_port, moto_server, redis_server
from tests.signalling.web.test_evidence_record import serve

CHECKS = {"accepting", "evidence_spool", "evidence_store", "disk"}


async def ready(client: Client, status: int) -> dict[str, Any]:
    client.session.cookie_jar.clear()  # no sign-in needed
    answer = await client.get("/readyz")
    body: dict[str, Any] = await answer.json()
    assert answer.status == status, body
    assert body["ready"] is (status == 200)
    return body


async def test_healthz_and_readyz_answer_without_sign_in(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    client.session.cookie_jar.clear()
    health = await client.get("/healthz")
    assert health.status == 200 and await health.json() == {"status": "ok"}
    before = sorted(p.name for p in tmp_path.iterdir())
    body = await ready(client, 200)
    assert set(body["checks"]) == CHECKS  # no Redis configured: not checked
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["evidence_store"]["detail"] == "local store reachable"
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # the write probe leaves nothing


async def test_redis_down_is_503_naming_redis(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    folder, port = tmp_path / "redis", free_port()
    folder.mkdir()
    with redis_server(folder, port) as url:
        client = await serve(aiohttp_client, tmp_path / "data", redis_url=url)
        body = await ready(client, 200)
        assert body["checks"]["redis"] == {"ok": True, "detail": "reachable"}
    body = await ready(client, 503)  # redis-server has stopped
    failing = {name for name, check in body["checks"].items() if not check["ok"]}
    assert failing == {"redis"}
    # The cause (an address, an error) is in the log, not in a public answer.
    assert body["checks"]["redis"]["detail"] in ("unreachable", "no answer within 2 s")
    with redis_server(folder, port):  # back: ready again, and the node stops cleanly
        await ready(client, 200)
        await client.close()


async def test_low_disk_is_503_naming_disk(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await serve(aiohttp_client, tmp_path, evidence_low_space_mb=10**12)
    body = await ready(client, 503)
    assert [name for name, check in body["checks"].items() if not check["ok"]] == ["disk"]
    assert "MiB free, below 1000000000000 MiB" in body["checks"]["disk"]["detail"]


async def test_draining_is_503_naming_accepting(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    assert client.app is not None
    client.app[NODE].registry.accepting = False  # what Node.drain does first (SIGTERM)
    body = await ready(client, 503)
    assert body["checks"]["accepting"] == {"ok": False, "detail": "draining: no new sessions"}
    assert all(check["ok"] for name, check in body["checks"].items() if name != "accepting")
    assert (await client.get("/healthz")).status == 200  # alive all the same


async def test_an_s3_store_is_checked_by_listing_it(
    aiohttp_client: AiohttpClient, tmp_path: Path, s3_server: str
) -> None:
    bucket = s3_bucket(s3_server).bucket
    client = await serve(aiohttp_client, tmp_path, s3_bucket=bucket, s3_endpoint_url=s3_server)
    body = await ready(client, 200)
    assert body["checks"]["evidence_store"] == {"ok": True, "detail": "s3 store reachable"}


async def test_an_unreachable_s3_store_is_503_naming_it(
    aiohttp_client: AiohttpClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with moto_server(tmp_path) as url:
        client = await serve(
            aiohttp_client, tmp_path / "data", s3_bucket="evidence", s3_endpoint_url=url
        )
        await ready(client, 200)
    body = await ready(client, 503)  # the S3 server has stopped
    failing = {name for name, check in body["checks"].items() if not check["ok"]}
    assert failing == {"evidence_store"}
