"""What the caller's phone says reaches the call handler's console, in plain words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_caller_ladder import PHONE
from tests.e2e.test_walking_skeleton import console

pytestmark = pytest.mark.e2e

LINK_TTL_S = 2


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path, SCENELINK_LINK_TTL_S=str(LINK_TTL_S))


async def send_link(handler: Page) -> tuple[str, str]:
    """Send a link from the console; (session id, the link the SMS carries)."""
    rows = handler.locator("li.session-row")
    ids = "rows => rows.map(r => r.dataset.sessionId)"
    before = set(await rows.evaluate_all(ids))
    await handler.fill("#send-form [name=phone]", "07700 900123")
    await handler.fill("#send-form [name=incident_ref]", "CAD-E1")
    await handler.click("#send-form [type=submit]")
    await expect(rows).to_have_count(len(before) + 1)
    [session_id] = (
        set(await rows.evaluate_all("rows => rows.map(r => r.dataset.sessionId)")) - before
    )
    answer = await handler.request.get(handler.url.split("/console/")[0] + "/api/sms/outbox")
    [message] = [m for m in (await answer.json())["messages"] if m["session_id"] == session_id]
    return session_id, str(message["text"]).split()[-1]


async def test_an_expired_link_tapped_and_a_decline_show_on_the_console(
    browser: Browser, server: RunningServer
) -> None:
    handler = await console(browser, server, "alice", "alice-pass")
    expired_id, expired_link = await send_link(handler)
    declined_id, declined_link = await send_link(handler)
    phone = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    caller = await phone.new_page()

    await caller.goto(declined_link)
    await caller.click("#decline")
    declined = handler.locator(f"li[data-session-id='{declined_id}'] .caller-state")
    await expect(declined).to_have_text(re.compile("Declined"), timeout=5_000)

    await caller.wait_for_timeout((LINK_TTL_S + 1) * 1000)  # the other link is now too old
    refused = await caller.goto(expired_link)
    assert refused is not None and refused.status == 410
    expired = handler.locator(f"li[data-session-id='{expired_id}'] .caller-state")
    await expect(expired).to_have_text(re.compile("Link expired when tapped"), timeout=5_000)
    await phone.close()
