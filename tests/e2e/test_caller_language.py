"""The caller page in the caller's language (issue 14), on one Chromium set to Welsh: the
phone's Welsh is shown, the caller can switch to English on the page, the console shows the
language agreed in and sends a link in English from its menu, the handler's choice of
English wins over the phone's Welsh, and a dead link's page is in Welsh too, even when the
first request for the Welsh words is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Route, expect

from bench.load import Api
from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_walking_skeleton import console

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
    context = await browser.new_context(
        locale="cy-GB",
        is_mobile=True,
        has_touch=True,
        permissions=["camera", "microphone", "geolocation"],
        geolocation={"latitude": 51.48, "longitude": -3.18, "accuracy": 8},
    )
    page = await context.new_page()

    url = await link(handler)
    await page.goto(url)
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

    # ... and back to Welsh, and agrees: what the page then says is Welsh, and the evidence
    # keeps the language of the words agreed to.
    await page.select_option("#language", "cy")
    await page.click("#agree")
    await expect(page.locator("#status")).to_contain_text("Rydych chi'n fyw", timeout=20_000)
    await expect(page.locator("#accuracy")).to_contain_text("Cywirdeb y lleoliad: ±8 m")
    sessions = (await handler.call("GET", "/api/sessions"))["sessions"]
    assert [s["consent_language"] for s in sessions] == ["cy"]

    # On the console, the handler sees the language the caller agreed in, and chooses English
    # for the next caller from the send form's menu of the server's languages.
    desk = await console(browser, server, "alice", "alice-pass")
    first = desk.locator("#sessions li[data-session-id]").first
    await expect(first.locator(".caller-device")).to_contain_text("Page in Cymraeg")
    await expect(desk.locator("#send-language option")).to_have_text(
        ["As the caller's phone is set", "English", "Cymraeg"]
    )
    await desk.fill("#send-form [name=phone]", "07700 900124")
    await desk.fill("#send-form [name=incident_ref]", "CAD-14-2")
    await desk.select_option("#send-language", "en")
    await desk.click("#send-form [type=submit]")
    await expect(desk.locator("#sessions li[data-session-id]")).to_have_count(2)
    sessions = (await handler.call("GET", "/api/sessions"))["sessions"]
    english = next(s for s in sessions if s["incident_ref"] == "CAD-14-2")
    assert english["language"] == "en"
    await expect(
        desk.locator(f"li[data-session-id='{english['id']}'] .caller-device")
    ).to_have_text("Link in English")

    # The handler's English wins over the phone's Welsh (a fresh tab: the switch above was
    # that tab's only).
    outbox = (await handler.call("GET", "/api/sms/outbox"))["messages"]
    sms = next(m["text"] for m in outbox if m["session_id"] == english["id"])
    assert sms.startswith("Test Constabulary: as asked on your 999 call")
    chosen = await context.new_page()
    await chosen.goto(sms.split()[-1])
    await expect(chosen.locator("#agree")).to_have_text("Agree and share")
    await expect(chosen.locator("#language")).to_have_value("en")

    # A link that no longer works, on a Welsh phone whose network loses the first request for
    # the Welsh words: the English stays until the retry brings them.
    dead = await context.new_page()
    lost: list[str] = []

    async def lose_once(route: Route) -> None:
        if lost:
            await route.continue_()
        else:
            lost.append(route.request.url)
            await route.abort()

    await dead.route("**/i18n/cy.json", lose_once)
    await dead.goto(server.url + "/c/not-a-real-link")
    await expect(dead.locator("h1")).to_have_text("This link no longer works")
    await expect(dead.locator("h1")).to_have_text(
        "Dydy'r ddolen hon ddim yn gweithio mwyach", timeout=15_000
    )
    assert len(lost) == 1
    await context.close()
