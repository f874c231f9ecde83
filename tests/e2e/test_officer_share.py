"""Sharing to officers in real browsers: a caller streams, the call handler makes an officer
link and shares with bob's account, a tablet opens the link with its own position and sees
the video, the caller's position and the distance and bearing; withdrawing cuts both off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import RunningServer, start_server

pytestmark = pytest.mark.e2e

CALLER = (51.50350, -0.12750)
TABLET = (CALLER[0] - 0.008993, CALLER[1])  # 1 km due south of the caller


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path, SCENELINK_PREFERRED_CODEC="VP8")


async def console(browser: Browser, server: RunningServer, user: str) -> Page:
    page = await (await browser.new_context()).new_page()
    await page.goto(server.url + "/console/")
    await page.fill("#login-form [name=username]", user)
    await page.fill("#login-form [name=password]", f"{user}-pass")
    await page.click("#login-form [type=submit]")
    await expect(page.locator("#app")).to_be_visible()
    return page


async def frames(page: Page, selector: str) -> int:
    return int((await page.locator(selector).text_content() or "0").strip() or 0)


async def frames_grow(page: Page, selector: str, by: int = 10, within_s: float = 20.0) -> int:
    start = await frames(page, selector)
    try:
        async with asyncio.timeout(within_s):
            while (now := await frames(page, selector)) < start + by:
                await asyncio.sleep(0.2)
            return now
    except TimeoutError:
        raise AssertionError(f"{selector} stuck at {await frames(page, selector)}") from None


async def frames_stopped(page: Page, selector: str) -> None:
    """At most a frame or two more (an ended track may repaint once), where playing video
    would add about sixty."""
    await asyncio.sleep(2.5)  # let frames already in flight land
    before = await frames(page, selector)
    await asyncio.sleep(3.0)
    assert await frames(page, selector) <= before + 2, "video kept playing after access ended"


async def test_officer_link_and_account_share_until_withdrawn(
    browser: Browser, server: RunningServer
) -> None:
    handler = await console(browser, server, "alice")
    await handler.fill("#send-form [name=phone]", "07700 900123")
    await handler.fill("#send-form [name=incident_ref]", "CAD-2026-0099")
    await handler.click("#send-form [type=submit]")
    link = handler.locator("a.sms-link").first
    await expect(link).to_be_visible(timeout=10_000)
    caller_url = await link.get_attribute("href")
    session_id = await handler.locator("#sessions li[data-session-id]").first.get_attribute(
        "data-session-id"
    )
    assert caller_url and session_id

    caller_context = await browser.new_context(
        permissions=["geolocation", "camera", "microphone"],
        geolocation={"latitude": CALLER[0], "longitude": CALLER[1], "accuracy": 8},
    )
    caller = await caller_context.new_page()
    await caller.goto(caller_url)
    await caller.click("#agree")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "live", timeout=20_000)

    # bob (an officer) sees nothing until the call handler shares the session with him.
    bob = await console(browser, server, "bob")
    await expect(bob.locator("#sessions li[data-session-id]")).to_have_count(0)

    await handler.click(f'#sessions li[data-session-id="{session_id}"] .watch')
    await frames_grow(handler, "#live-frames")
    await handler.fill("#share-label", "Car 12")
    await handler.click("#share-link-form [type=submit]")
    await expect(handler.locator("#share-link-box")).to_be_visible()
    officer_url = await handler.locator("#share-link").input_value()
    assert "/o/" in officer_url
    await handler.fill("#share-username", "bob")
    await handler.click("#share-account-form [type=submit]")
    await expect(handler.locator("#shares li.share-row")).to_have_count(2)

    # The tablet opens the link, sharing its own position.
    tablet_context = await browser.new_context(
        permissions=["geolocation"],
        geolocation={"latitude": TABLET[0], "longitude": TABLET[1], "accuracy": 10},
    )
    tablet = await tablet_context.new_page()
    await tablet.goto(officer_url)
    await frames_grow(tablet, "#frames", by=20)
    shown = tablet.locator("#last-fix")
    await expect(shown).to_have_attribute("data-lat", str(CALLER[0]), timeout=10_000)
    await expect(shown).to_have_attribute("data-lon", str(CALLER[1]))
    distance = tablet.locator("#distance")
    await expect(distance).to_have_attribute("data-distance-m", "1000.5", timeout=10_000)
    await expect(distance).to_contain_text("1.00 km, bearing 0° (N)")
    await expect(tablet.locator("#fix-age")).to_contain_text("s ago")
    await expect(tablet.locator("#incident")).to_have_text("CAD-2026-0099")

    # bob, signed in to the console, now sees and watches the shared session.
    await bob.reload()
    await bob.click(f'#sessions li[data-session-id="{session_id}"] .watch', timeout=10_000)
    await frames_grow(bob, "#live-frames")

    # Withdrawing the link ends the tablet's access at once.
    await handler.click('#shares li[data-kind="link"] .withdraw')
    await expect(tablet.locator("body")).to_have_attribute("data-access", "ended", timeout=10_000)
    await expect(tablet.locator("#ended")).to_contain_text("withdrawn")
    await frames_stopped(tablet, "#frames")
    token = officer_url.split("/o/")[1]
    refused = await tablet.request.get(
        server.url + "/api/officer/share", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status == 410
    assert "withdrawn" in (await refused.json())["error"]
    await frames_grow(bob, "#live-frames")  # the other share is untouched

    # Withdrawing bob's share cuts his console off too.
    await handler.click('#shares li[data-kind="account"] .withdraw')
    await expect(handler.locator("#shares li.share-row")).to_have_count(0)
    await frames_stopped(bob, "#live-frames")
    await expect(bob.locator("#live-video-status")).to_contain_text("Access ended")
    status = await bob.evaluate(
        "id => fetch('/api/sessions/' + id).then(r => r.status)", session_id
    )
    assert status == 410

    # The call handler still watches.
    await frames_grow(handler, "#live-frames")
    log = server.log.read_text()
    assert token not in log and "/o/<token>" in log
