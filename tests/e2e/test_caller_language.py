"""The caller page in the caller's language (issue 14), on one phone-sized Chromium: a phone
set to Welsh sees Welsh, the caller can switch to English on the page, a dead link's page
is in Welsh too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from bench.load import Api
from tests.e2e.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


async def link(api: Api, **body: str) -> str:
    view = await api.call(
        "POST", "/api/sessions", {"phone": "07700 900123", "incident_ref": "CAD-14"} | body
    )
    outbox = await api.call("GET", "/api/sms/outbox")
    for message in outbox["messages"]:
        if message["session_id"] == view["id"]:
            return str(message["text"]).split()[-1]
    raise AssertionError(f"no SMS for {view['id']}")


async def test_welsh_phone_sees_welsh_and_can_switch(
    browser: Browser, server: RunningServer, handler: Api
) -> None:
    context = await browser.new_context(locale="cy-GB", is_mobile=True, has_touch=True)
    page = await context.new_page()

    await page.goto(await link(handler))
    await expect(page.locator("#agree")).to_have_text("Cytuno a rhannu")
    await expect(page.locator("html")).to_have_attribute("lang", "cy-GB")
    await expect(page.locator(".terms strong").first).to_have_text(
        "recordio a'i gadw fel tystiolaeth"
    )
    assert "rhannwch eich lleoliad a fideo" in await page.title()

    # The caller switches to English on the page.
    await page.select_option("#language", "en")
    await expect(page.locator("#agree")).to_have_text("Agree and share")
    await expect(page.locator("html")).to_have_attribute("lang", "en-GB")

    # A link that no longer works, on a Welsh phone (the switch above was this tab's only).
    fresh = await context.new_page()
    await fresh.goto(server.url + "/c/not-a-real-link")
    await expect(fresh.locator("h1")).to_have_text("Dydy'r ddolen hon ddim yn gweithio mwyach")
    await context.close()
