"""Chat and silent mode between a phone-sized Chromium caller page and the console (issue 14):
both ways over the data channel with delivered and read shown on each side, silent mode (the
preview hidden, the chat first, the microphone's track disabled until the caller accepts the
handler's request), and a location-only page without WebRTC chatting over HTTPS (POST and
the long poll). One server, one console, one browser for all of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_caller_files import NO_WEBRTC, phone
from tests.e2e.test_console_caller_state import send_link
from tests.e2e.test_walking_skeleton import console, watch

pytestmark = pytest.mark.e2e

HEADERS = {"X-Requested-With": "scenelink"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


async def say(page: Page, text: str) -> None:
    await page.fill("#chat-text", text)
    await page.click("#chat-form [type=submit]")


def bubble(page: Page, sender: str, text: str) -> Locator:
    return page.locator(f"#chat-log li.chat-{sender}").filter(has_text=text)


async def location_link(handler: Page, server: RunningServer) -> tuple[str, str]:
    """A location-only session sent over the API; (session id, its link)."""
    created = await handler.request.post(
        f"{server.url}/api/sessions",
        data={"phone": "07700 900124", "incident_ref": "CAD-E2", "mode": "location"},
        headers=HEADERS,
    )
    session_id = (await created.json())["id"]
    outbox = await (await handler.request.get(f"{server.url}/api/sms/outbox")).json()
    [text] = [m["text"] for m in outbox["messages"] if m["session_id"] == session_id]
    return session_id, str(text).split()[-1]


def events(server: RunningServer, session_id: str) -> list[dict[str, object]]:
    folder = server.data_dir / "evidence" / session_id
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


async def test_chat_both_ways_silent_mode_and_https_fallback(
    browser: Browser, server: RunningServer
) -> None:
    handler = await console(browser, server, "alice", "alice-pass")
    session_id, link = await send_link(handler)
    caller = await phone(browser, link)
    await watch(handler, session_id)

    # The caller writes over the data channel; the visible console reads it.
    await say(caller, "He is downstairs")
    await expect(bubble(handler, "caller", "He is downstairs")).to_be_visible(timeout=10_000)
    mine = bubble(caller, "caller", "He is downstairs").locator(".chat-state")
    await expect(mine).to_have_attribute("data-state", "read", timeout=10_000)

    # A canned phrase from the console; the caller's visible page reads it.
    await handler.locator("#chat-phrases button", has_text="Stay where you are").click()
    await expect(bubble(caller, "handler", "Stay where you are")).to_be_visible(timeout=10_000)
    theirs = bubble(handler, "handler", "Stay where you are").locator(".chat-state")
    await expect(theirs).to_have_attribute("data-state", "read", timeout=10_000)

    # "I can't talk": dimmed, no preview, the chat first, the microphone's track disabled.
    await caller.click("#silent-on")
    await expect(caller.locator("body")).to_have_class("silent")
    await expect(caller.locator("#preview")).to_be_hidden()
    assert await caller.evaluate("document.querySelector('main').firstElementChild.id") == "chat"
    tracks = "() => window.SceneLinkCaller.audioTracks().map(t => t.enabled)"
    await expect(handler.locator("#silent-badge")).to_be_visible(timeout=10_000)
    assert await caller.evaluate(tracks) == [False]
    # The handler asks for the microphone; the caller accepts.
    await handler.click("#ask-microphone")
    await expect(caller.locator("#mic-ask")).to_be_visible(timeout=10_000)
    await caller.click("#mic-yes")
    assert await caller.evaluate(tracks) == [True]

    # A location-only page without WebRTC: POST out, the long poll in.
    quiet_id, quiet_link = await location_link(handler, server)
    quiet = await phone(browser, quiet_link, NO_WEBRTC)
    await say(quiet, "Help")
    await handler.click(f'#sessions li[data-session-id="{quiet_id}"] .watch')
    await expect(bubble(handler, "caller", "Help")).to_be_visible(timeout=10_000)
    await say(handler, "Help is on the way")
    await expect(bubble(quiet, "handler", "Help is on the way")).to_be_visible(timeout=10_000)
    seen = bubble(handler, "handler", "Help is on the way").locator(".chat-state")
    await expect(seen).to_have_attribute("data-state", "read", timeout=10_000)
    await expect(bubble(quiet, "caller", "Help").locator(".chat-state")).to_have_attribute(
        "data-state", "read", timeout=25_000
    )

    # Each message, the read receipts and silent mode are in the evidence.
    for ended in (session_id, quiet_id):
        answer = await handler.request.post(
            f"{server.url}/api/sessions/{ended}/end", headers=HEADERS
        )
        assert answer.ok
    kept = events(server, session_id)
    said = [(e["sender"], e["text"]) for e in kept if e["event"] == "chat_message"]
    assert said == [("caller", "He is downstairs"), ("handler", "Stay where you are")]
    assert {e["reader"] for e in kept if e["event"] == "chat_read"} == {"caller", "handler"}
    assert [(e["on"], e["by"]) for e in kept if e["event"] == "silent_mode"] == [(True, "caller")]
    quiet_said = [e["text"] for e in events(server, quiet_id) if e["event"] == "chat_message"]
    assert quiet_said == ["Help", "Help is on the way"]
