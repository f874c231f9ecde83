"""Chat and silent mode through the API: the console and the caller's page both ways (over
the data channel and over HTTPS), delivery and read state, limits refused with the limit
named and nothing stored, silent mode, the long poll, and translation."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from bench.synthetic import SyntheticCaller
from tests.client import Client
from tests.signalling.calls.test_translate import LibreTranslate, libre_server
from tests.signalling.web.test_caller_state import events, link
from tests.signalling.web.test_evidence_record import HEADERS, call, serve


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def chat(client: Client, session_id: str) -> list[dict[str, Any]]:
    answer = await client.get(f"/api/sessions/{session_id}/chat")
    assert answer.status == 200
    messages: list[dict[str, Any]] = (await answer.json())["messages"]
    return messages


async def until(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    """``check()``'s first true answer (awaited when it is a coroutine)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def chat_events(kept: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in kept if e["event"] == name]


async def test_chat_both_ways_over_https_with_delivery_read_and_evidence(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client, mode="location")
    listed = await (await client.get(f"/api/sessions/{session_id}/chat")).json()
    assert listed["phrases"] == [
        "Are you safe to talk?",
        "Stay where you are",
        "Help is on the way",
    ]
    assert listed["max_chars"] == 500 and listed["messages"] == []

    sent = await client.post(
        f"/api/sessions/{session_id}/chat", json={"text": "Are you safe to talk?"}, headers=HEADERS
    )
    assert sent.status == 201
    handler_message = await sent.json()
    assert handler_message["sender"] == "handler" and handler_message["by"] == "alice"
    assert handler_message["seq"] == 0 and handler_message["delivered_at"] is None

    state = await (await client.get("/api/caller/chat", headers=bearer(token))).json()
    assert [m["text"] for m in state["messages"]] == ["Are you safe to talk?"]
    assert "by" not in state["messages"][0] and state["silent"] is False
    receipt = {"message_ids": [handler_message["message_id"]], "receipt": "read"}
    answer = await client.post("/api/caller/chat/receipts", json=receipt, headers=bearer(token))
    assert answer.status == 204

    reply = await client.post(
        "/api/caller/chat",
        json={"text": "No. He is downstairs", "language": "en-GB"},
        headers=bearer(token),
    )
    assert reply.status == 201
    caller_message = await reply.json()
    assert caller_message["sender"] == "caller" and caller_message["seq"] == 1
    seen = {"message_ids": [caller_message["message_id"]], "receipt": "delivered"}
    answer = await client.post(
        f"/api/sessions/{session_id}/chat/receipts", json=seen, headers=HEADERS
    )
    assert answer.status == 204

    first, second = await chat(client, session_id)
    assert first["read_at"] is not None and first["delivered_at"] is not None
    assert second["text"] == "No. He is downstairs" and second["language"] == "en"
    assert second["delivered_at"] is not None and second["read_at"] is None

    kept = await events(client, session_id)
    messages = chat_events(kept, "chat_message")
    assert [(m["sender"], m["by"], m["text"]) for m in messages] == [
        ("handler", "alice", "Are you safe to talk?"),
        ("caller", None, "No. He is downstairs"),
    ]
    reads = chat_events(kept, "chat_read")
    assert [(r["reader"], r["message_ids"]) for r in reads] == [
        ("caller", [handler_message["message_id"]])
    ]


@pytest.mark.parametrize(
    ("text", "limit"),
    [("x" * 501, "chat_max_chars"), ("ring\x07", "control_characters"), ("  ", "text")],
)
async def test_refused_messages_name_the_limit_and_store_nothing(
    aiohttp_client: AiohttpClient, tmp_path: Path, text: str, limit: str
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client)
    for answer in (
        await client.post(f"/api/sessions/{session_id}/chat", json={"text": text}, headers=HEADERS),
        await client.post("/api/caller/chat", json={"text": text}, headers=bearer(token)),
    ):
        assert answer.status == 422
        body = await answer.json()
        assert body["error"] == "message refused" and body["limit"] == limit
    wrong_type = await client.post("/api/caller/chat", json={"text": 5}, headers=bearer(token))
    assert wrong_type.status == 422 and "text" in (await wrong_type.json())["fields"]
    assert await chat(client, session_id) == []
    assert chat_events(await events(client, session_id), "chat_message") == []


async def test_a_flood_is_refused_with_retry_after_and_the_other_side_still_writes(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path, chat_rate_messages=2, chat_rate_window_s=30)
    session_id, token = await link(client)
    statuses = []
    for n in range(3):
        answer = await client.post(
            "/api/caller/chat", json={"text": f"m{n}"}, headers=bearer(token)
        )
        statuses.append(answer.status)
    assert statuses == [201, 201, 429]
    assert int(answer.headers["Retry-After"]) >= 1
    assert (await answer.json())["limit"] == "chat_rate"
    handler = await client.post(
        f"/api/sessions/{session_id}/chat", json={"text": "ok"}, headers=HEADERS
    )
    assert handler.status == 201
    assert [m["text"] for m in await chat(client, session_id)] == ["m0", "m1", "ok"]


async def test_after_the_end_chat_is_refused(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client)
    await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)
    answer = await client.post(
        f"/api/sessions/{session_id}/chat", json={"text": "hi"}, headers=HEADERS
    )
    assert answer.status == 409
    gone = await client.post("/api/caller/chat", json={"text": "hi"}, headers=bearer(token))
    assert gone.status == 410


async def test_the_long_poll_answers_at_a_change(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client)
    first = await (await client.get("/api/caller/chat", headers=bearer(token))).json()
    started = time.monotonic()
    poll = asyncio.ensure_future(
        client.get(f"/api/caller/chat?version={first['version']}", headers=bearer(token))
    )
    await asyncio.sleep(0.3)
    assert not poll.done()
    answer = await client.post(
        f"/api/sessions/{session_id}/silent", json={"on": True}, headers=HEADERS
    )
    assert answer.status == 200 and (await answer.json())["silent"] is True
    changed = await (await poll).json()
    assert changed["silent"] is True and changed["version"] != first["version"]
    assert time.monotonic() - started < 5


async def test_over_the_data_channel_chat_silent_mode_and_refusals(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    caller = SyntheticCaller(None)

    def received(kind: str) -> list[dict[str, Any]]:
        messages = [json.loads(m) for m in caller.received]
        return [m for m in messages if m.get("type") == kind]

    try:
        session_id = await call(client, caller)
        await until(lambda: caller.channel.readyState == "open")
        caller.channel.send(json.dumps({"type": "chat", "text": "I can't talk", "language": "cy"}))
        message = (await until(lambda: chat(client, session_id)))[0]
        assert message["sender"] == "caller" and message["language"] == "cy"

        sent = await client.post(
            f"/api/sessions/{session_id}/chat", json={"text": "Stay where you are"}, headers=HEADERS
        )
        handler_id = (await sent.json())["message_id"]
        pushed = await until(
            lambda: asyncio.sleep(
                0, [m for m in received("chat") if m["message"]["sender"] == "handler"]
            )
        )
        assert pushed[0]["message"]["text"] == "Stay where you are"
        caller.channel.send(
            json.dumps({"type": "chat_receipt", "message_ids": [handler_id], "receipt": "read"})
        )
        await until(lambda: _read(client, session_id, handler_id))

        caller.channel.send(json.dumps({"type": "chat", "text": "bell\x07"}))
        caller.channel.send(b"\x00\x01binary")
        errors = await until(lambda: received("chat_error"))
        assert errors[0]["limit"] == "control_characters"
        assert await until(lambda: received("error"))

        caller.channel.send(json.dumps({"type": "silent", "on": True}))
        await until(lambda: _silent(client, session_id))
        mic = await client.post(f"/api/sessions/{session_id}/microphone", headers=HEADERS)
        assert (await mic.json())["microphone_request"] is not None
        told = await until(lambda: [m for m in received("silent") if m["microphone_request"]])
        assert told[-1]["on"] is True
        caller.channel.send(json.dumps({"type": "chat_sync", "language": "cy"}))
        synced = await until(lambda: received("chat_state"))
        assert len(synced[0]["messages"]) == 2 and synced[0]["silent"] is True

        kept = await events(client, session_id)
        assert [e["text"] for e in chat_events(kept, "chat_message")] == [
            "I can't talk",
            "Stay where you are",
        ]
        assert [(e["on"], e["by"]) for e in chat_events(kept, "silent_mode")] == [(True, "caller")]
        assert (await (await client.get(f"/api/sessions/{session_id}")).json())["state"] == "live"
    finally:
        await caller.close()


async def _read(client: Client, session_id: str, message_id: str) -> bool:
    return any(
        m["message_id"] == message_id and m["read_at"] for m in await chat(client, session_id)
    )


async def _silent(client: Client, session_id: str) -> bool:
    answer: dict[str, Any] = await (await client.get(f"/api/sessions/{session_id}")).json()
    return bool(answer["silent"])


@pytest.fixture
async def libre() -> AsyncIterator[LibreTranslate]:
    async with libre_server() as service:
        yield service


async def test_translation_keeps_both_and_a_slow_translator_delays_nothing(
    aiohttp_client: AiohttpClient, tmp_path: Path, libre: LibreTranslate
) -> None:
    client = await serve(aiohttp_client, tmp_path, translate_url=libre.url, translate_timeout_s=1.0)
    session_id, token = await link(client)
    answer = await client.post(
        "/api/caller/chat", json={"text": "Rwy'n cuddio", "language": "cy"}, headers=bearer(token)
    )
    assert answer.status == 201
    translated = await until(lambda: _translated(client, session_id, 0))
    assert translated == {"language": "en", "text": "I am hiding"}
    assert libre.bodies[-1]["source"] == "cy" and libre.bodies[-1]["target"] == "en"
    # The handler's reply goes into the caller's language.
    await client.post(
        f"/api/sessions/{session_id}/chat", json={"text": "Help is on the way"}, headers=HEADERS
    )
    await until(lambda: _translated(client, session_id, 1))
    assert libre.bodies[-1]["source"] == "en" and libre.bodies[-1]["target"] == "cy"

    libre.delay_s = 5.0
    started = time.monotonic()
    slow = await client.post(
        "/api/caller/chat", json={"text": "Brysiwch", "language": "cy"}, headers=bearer(token)
    )
    assert slow.status == 201 and time.monotonic() - started < 0.5
    assert [m["text"] for m in await chat(client, session_id)][-1] == "Brysiwch"
    await client.post(f"/api/sessions/{session_id}/end", headers=HEADERS)  # waits for it
    kept = await events(client, session_id)
    messages = chat_events(kept, "chat_message")
    assert [m["translation"] for m in messages] == [
        {"language": "en", "text": "I am hiding"},
        {"language": "cy", "text": "I am hiding"},
        None,
    ]
    assert [m["text"] for m in messages][-1] == "Brysiwch"


async def _translated(client: Client, session_id: str, seq: int) -> Any:
    messages = await chat(client, session_id)
    return messages[seq]["translation"] if len(messages) > seq else None


async def test_an_officer_link_reads_the_chat_and_silent_mode(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await serve(aiohttp_client, tmp_path)
    session_id, token = await link(client)
    await client.post("/api/caller/chat", json={"text": "first"}, headers=bearer(token))
    shared = await client.post(
        f"/api/sessions/{session_id}/shares", json={"kind": "link"}, headers=HEADERS
    )
    officer = (await shared.json())["link"].split("/o/")[1]
    async with client.ws_connect("/api/officer/ws") as ws:
        await ws.send_json({"type": "auth", "token": officer})
        kinds = [(await ws.receive_json(timeout=5)) for _ in range(3)]
        assert [k["type"] for k in kinds] == ["trail", "state", "chat"]
        assert kinds[1]["session"]["silent"] is False
        assert kinds[2]["message"]["text"] == "first"
        await client.post(
            f"/api/sessions/{session_id}/chat", json={"text": "second"}, headers=HEADERS
        )
        await client.post(f"/api/sessions/{session_id}/silent", json={"on": True}, headers=HEADERS)
        seen: list[dict[str, Any]] = []
        while not any(m["type"] == "state" and m["session"]["silent"] for m in seen):
            seen.append(await ws.receive_json(timeout=5))
        assert [m["message"]["text"] for m in seen if m["type"] == "chat"] == ["second"]
