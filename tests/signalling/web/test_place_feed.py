"""A fix's place in words: the fix is stored and published at once, the what3words and address
follow in a "place" feed message, in the trail and as their own location.jsonl line."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpClient

from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.web.appkeys import SERVICE, SETTINGS
from tests.client import client_of
from tests.signalling.calls.test_geocoding import Service
from tests.signalling.web.test_api import HEADERS, OPERATORS, caller_link, sign_in


@pytest.mark.parametrize("slow", [False, True])
async def test_place_follows_the_fix(
    aiohttp_client: AiohttpClient, tmp_path: Path, caplog: pytest.LogCaptureFixture, slow: bool
) -> None:
    words = Service(delay_s=3.0 if slow else 0.5)
    services = web.Application()
    services.router.add_get("/v3/convert-to-3wa", words.w3w)
    services.router.add_get("/nominatim/reverse", words.reverse)
    fake = TestServer(services)
    await fake.start_server()
    base = str(fake.make_url("")).rstrip("/")
    settings = load_settings(
        data_dir=tmp_path,
        operators=OPERATORS,
        force_name="Test Force",
        w3w_api_key="k3y",
        w3w_base_url=base,
        geocoder_url=f"{base}/nominatim",
        place_timeout_s=1.0,
    )
    server = TestServer(make_app(settings))
    await server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, server)
    try:
        await sign_in(client)
        session_id, _ = await caller_link(client)
        service = server.app[SERVICE]
        fix = {"type": "fix", "lat": 51.50336, "lon": -0.12762, "accuracy": 10}
        async with service.store.subscribe(session_id) as feed:
            started = time.monotonic()
            await service.handle_caller_message(
                session_id, json.dumps(fix | {"timestamp": time.time() * 1000})
            )
            assert time.monotonic() - started < 0.3  # the lookups never hold up the fix
            published: Any = await asyncio.wait_for(anext(feed), 0.3)
            assert published["type"] == "fix"
            assert published["fix"]["grid_ref"] == "TQ 30052 79931"
            assert published["fix"]["grid_ref_6"] == "TQ 300 799"
            if not slow:
                place: Any = await asyncio.wait_for(anext(feed), 5)
                assert place["type"] == "place"
                assert place["place"]["received_at"] == published["fix"]["received_at"]
                assert place["place"]["w3w"] == "filled.count.soap"
                assert place["place"]["address"] is not None
            else:
                await asyncio.sleep(1.5)
        trail = await (await client.get(f"/api/sessions/{session_id}/trail")).json()
        [stored] = trail["fixes"]
        assert stored["grid_ref"] == "TQ 30052 79931"
        if slow:
            assert "w3w" not in stored
            assert len([r for r in caplog.records if r.levelname == "WARNING"]) >= 1
        else:
            assert stored["w3w"] == "filled.count.soap" and stored["address"]
        await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
        lines = (server.app[SETTINGS].evidence_dir / session_id / "location.jsonl").read_text()
        records = [json.loads(line) for line in lines.splitlines()]
        assert records[0]["grid_ref"] == "TQ 30052 79931" and "w3w" not in records[0]
        if slow:
            assert len(records) == 1
        else:
            assert records[1] == place["place"]  # its own line: the file only grows
    finally:
        await client.close()
        await fake.close()
