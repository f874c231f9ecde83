"""The event webhook against a real local receiver: signed bodies, retries with backoff, the
order of a whole session's events, and what is logged."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError
from pytest_aiohttp import AiohttpClient

from bench.synthetic import Clip
from recorder.events import LinkSent, SessionCreated
from signalling.config import load_settings
from signalling.web.app import RUNNER_OPTIONS, make_app
from signalling.webhooks import Webhooks
from tests.client import client_of
from tests.providers import WEBHOOK_SECRET, Receiver, webhook_check
from tests.signalling.web.test_evidence_record import HEADERS, ended_call, serve

Serve = Callable[[web.Application], Awaitable[TestServer]]
CREATED: SessionCreated = {
    "event": "session_created",
    "at": "2026-12-07T10:00:00+00:00",
    "by": "alice",
    "incident_ref": "CAD-1",
    "mode": "video",
    "token_id": "t",
    "phone": "+447700900123",
}


@pytest.fixture
async def receiver(aiohttp_server: Serve) -> tuple[Receiver, str]:
    receiver = Receiver(webhook_check)
    server = await aiohttp_server(receiver.app("/events"))
    return receiver, str(server.make_url("/events"))


def hooks(url: str, log: Path, **extra: Any) -> Webhooks:
    options: dict[str, Any] = {
        "timeout_s": 2.0,
        "backoff_s": 0.05,
        "backoff_max_s": 0.2,
        "attempts": 3,
    } | extra
    return Webhooks(url, WEBHOOK_SECRET.encode(), log, **options)


def attempts(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []


async def until(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_failed_delivery_is_retried_and_later_events_wait(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    server, url = receiver
    server.status = 500
    log = tmp_path / "deliveries.jsonl"
    queue = hooks(url, log, backoff_s=0.3, backoff_max_s=0.3)
    queue.start()
    queue.session_event("s1", CREATED)
    queue.session_event("s1", {"event": "live", "at": "2026-12-07T10:01:00+00:00"})
    not_announced: LinkSent = {"event": "link_sent", "at": "2026-12-07T10:00:01+00:00"}
    queue.session_event("s1", not_announced)
    await until(lambda: len(attempts(log)) == 1)
    server.status = 200
    await until(lambda: len(server.accepted) == 2)
    assert [h["event"] for h in server.accepted] == ["session_created", "live"]
    assert [h["sequence"] for h in server.accepted] == [1, 2]
    first = server.accepted[0]
    assert first["incident_ref"] == "CAD-1" and first["created_by"] == "alice"
    assert "phone" not in first and "token_id" not in first
    await until(lambda: len(attempts(log)) == 3)  # each line follows its answer
    lines = attempts(log)
    assert [(x["event"], x["attempt"], x["outcome"]) for x in lines] == [
        ("session_created", 1, "retry"),
        ("session_created", 2, "delivered"),
        ("live", 1, "delivered"),
    ]
    assert lines[0]["error"] == "the event webhook answered HTTP 500"
    assert lines[0]["id"] == lines[1]["id"] == first["id"]  # a retry is the same event
    await queue.close()


async def test_a_wrong_key_is_refused_and_given_up_with_an_error(
    receiver: tuple[Receiver, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, url = receiver
    log = tmp_path / "deliveries.jsonl"
    queue = Webhooks(
        url,
        b"not-the-receivers-secret",
        log,
        timeout_s=2.0,
        backoff_s=0.01,
        backoff_max_s=0.01,
        attempts=2,
    )
    queue.start()
    with caplog.at_level(logging.ERROR, "signalling.webhooks"):
        queue.session_event("s2", CREATED)
        await until(lambda: len(attempts(log)) == 2)
        await queue.close()
    assert server.refusals == ["bad signature", "bad signature"] and not server.accepted
    assert [x["outcome"] for x in attempts(log)] == ["retry", "given_up"]
    assert "session_created (s2 #1) given up after 2 attempts" in caplog.text


async def test_a_receiver_that_times_out_is_retried_with_growing_waits(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    server, url = receiver
    server.delay = 0.5
    log = tmp_path / "deliveries.jsonl"
    queue = hooks(url, log, timeout_s=0.2, backoff_s=0.1, backoff_max_s=0.15, attempts=4)
    queue.start()
    started = time.monotonic()
    queue.session_event("s3", {"event": "live", "at": "2026-12-07T10:01:00+00:00"})
    await until(lambda: len(attempts(log)) == 4)
    took = time.monotonic() - started
    assert [x["outcome"] for x in attempts(log)] == ["retry", "retry", "retry", "given_up"]
    assert attempts(log)[0]["error"] == "the event webhook did not answer within 0.2 s"
    assert took >= 4 * 0.2 + 0.1 + 0.15 + 0.15  # four deadlines and the capped waits
    await queue.close()


async def test_shutdown_drains_for_a_while_then_abandons_with_an_error(
    receiver: tuple[Receiver, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server, url = receiver
    server.delay = 1.0
    log = tmp_path / "deliveries.jsonl"
    queue = hooks(url, log)
    queue.start()
    with caplog.at_level(logging.ERROR, "signalling.webhooks"):
        queue.session_event("s4", CREATED)
        await queue.close(drain_s=0.2)
        queue.session_event("s4", {"event": "live", "at": "2026-12-07T10:01:00+00:00"})
    assert [(x["event"], x["outcome"]) for x in attempts(log)] == [("session_created", "abandoned")]
    assert "session_created (s4 #1) not delivered: the server stopped" in caplog.text
    assert "live (s4 #2) not delivered: the server is stopping" in caplog.text
    await asyncio.sleep(1.0)
    assert not server.accepted


async def test_a_slow_receiver_never_delays_the_call(
    aiohttp_client: AiohttpClient, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    server, url = receiver
    server.delay = 3.0
    client = await serve(aiohttp_client, tmp_path, webhook_url=url, webhook_secret=WEBHOOK_SECRET)
    started = time.monotonic()
    created = await client.post(
        "/api/sessions", json={"phone": "07700 900123", "incident_ref": "CAD-2"}, headers=HEADERS
    )
    assert created.status == 201, await created.text()
    assert time.monotonic() - started < 1.5  # the receiver is still answering
    await until(lambda: len(server.accepted) == 1)
    assert server.accepted[0]["event"] == "session_created"
    server.delay = 0.0
    await client.close()  # the call ends as the server stops: its events drain, answered at once
    assert [h["event"] for h in server.accepted] == ["session_created", "bundle_ready"]


async def test_a_webhook_url_needs_its_secret() -> None:
    with pytest.raises(ValidationError, match="webhook_secret"):
        load_settings(webhook_url="http://cad.example/events")


async def test_a_whole_session_is_announced_in_order(
    aiohttp_client: AiohttpClient,
    receiver: tuple[Receiver, str],
    tmp_path: Path,
    clips: dict[str, Clip],
) -> None:
    server, url = receiver
    accounts = [
        {"username": "alice", "password": "pw", "roles": ["call_handler"]},
        {"username": "ivan", "password": "pw", "roles": ["investigator"]},
    ]
    app = make_app(
        load_settings(
            data_dir=tmp_path,
            operators=accounts,
            webhook_url=url,
            webhook_secret=WEBHOOK_SECRET,
        )
    )
    test_server = TestServer(app)
    await test_server.start_server(**RUNNER_OPTIONS)
    client = await client_of(aiohttp_client, test_server)
    login = {"username": "alice", "password": "pw"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200
    session_id = await ended_call(client, clips["VP8"])
    await until(lambda: any(h["event"] == "bundle_ready" for h in server.accepted))
    assert not server.refusals  # every body carried the right signature
    mine = [h for h in server.accepted if h["session_id"] == session_id]
    assert [h["event"] for h in mine] == [
        "session_created",
        "link_opened",
        "live",
        "ended",
        "bundle_ready",
    ]
    assert [h["sequence"] for h in mine] == [1, 2, 3, 4, 5]
    assert len({h["id"] for h in mine}) == 5
    assert mine[1]["device"] == "iPhone (iOS 17.5)"
    ready = mine[-1]
    assert ready["recording_url"] == f"/api/recordings/{session_id}"
    recording = await client.get(ready["recording_url"])
    assert recording.status == 200  # announced once the store has it
    assert "+4477" not in json.dumps(server.accepted) and "07700" not in json.dumps(mine)

    login = {"username": "ivan", "password": "pw"}
    assert (await client.post("/api/login", json=login, headers=HEADERS)).status == 200
    body = {"session_ids": [session_id], "recipient": "CPS", "purpose": "file for charge"}
    started = await client.post("/api/exports", json=body, headers=HEADERS)
    assert started.status in (200, 201, 202), await started.text()
    export_id = (await started.json())["export_id"]
    await until(lambda: any(h["event"] == "export_ready" for h in server.accepted))
    [ready] = [h for h in server.accepted if h["event"] == "export_ready"]
    assert ready["export_id"] == export_id and ready["session_ids"] == [session_id]
    assert ready["requested_by"] == "ivan" and ready["sequence"] == 1
    log = tmp_path / "webhooks" / "deliveries.jsonl"
    await until(lambda: len(attempts(log)) == 6)
    assert {x["outcome"] for x in attempts(log)} == {"delivered"}
