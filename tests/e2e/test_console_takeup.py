"""The supervisor's Take-up card: figures for a date range and their CSV; other roles never
see it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_walking_skeleton import console

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


async def test_a_supervisor_sees_the_figures_and_an_officer_does_not(
    browser: Browser, server: RunningServer
) -> None:
    page = await console(browser, server, "sam", "sam-pass")
    card = page.locator("#takeup")
    await expect(card).to_be_visible()
    await page.fill("#takeup-form [name=from]", "2026-01-01")
    await page.click("#takeup-form [type=submit]")
    await expect(page.locator("#takeup-summary")).to_have_text("No sessions in this range.")
    csv_link = page.locator("#takeup-csv")
    await expect(csv_link).to_be_visible()
    href = await csv_link.get_attribute("href") or ""
    assert href.startswith("/api/reports/takeup?from=") and href.endswith("format=csv")
    answer = await page.request.get(server.url + href)
    assert answer.ok and (await answer.text()).startswith("browser,os,sessions,links_sent")

    officer = await (await browser.new_context()).new_page()
    await officer.goto(server.url + "/console/")
    await officer.fill("#login-form [name=username]", "bob")
    await officer.fill("#login-form [name=password]", "bob-pass")
    await officer.click("#login-form [type=submit]")
    await expect(officer.locator("#login-section")).to_be_hidden()
    await expect(officer.locator("#takeup")).to_be_hidden()
