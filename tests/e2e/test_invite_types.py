"""A bail check in real browsers: the call handler sends one for a place and a tolerance, a
phone with a fake position agrees, and the console shows it within, then outside when the
phone moves away; both verdicts are bail_check events in the closed bundle."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_officer_share import console

pytestmark = pytest.mark.e2e

HOME = (51.50350, -0.12750)
AWAY = (HOME[0] + 0.0045, HOME[1])  # 500 m due north


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


async def test_bail_check_within_then_outside(browser: Browser, server: RunningServer) -> None:
    handler = await console(browser, server, "alice")
    await handler.fill("#send-form [name=phone]", "07700 900123")
    await handler.fill("#send-form [name=incident_ref]", "BAIL-7")
    await handler.select_option("#send-mode", "bail_check")
    await handler.fill("#send-place", f"{HOME[0]}, {HOME[1]}")
    await handler.fill("#send-tolerance", "50")
    await handler.click("#send-form [type=submit]")
    link = handler.locator("a.sms-link").first
    await expect(link).to_be_visible(timeout=10_000)
    caller_url = await link.get_attribute("href")
    row = handler.locator("#sessions li[data-session-id]").first
    session_id = await row.get_attribute("data-session-id")
    assert caller_url and session_id
    await expect(row).to_contain_text("Bail or court-order check")

    phone = await browser.new_context(
        permissions=["geolocation"],
        geolocation={"latitude": HOME[0], "longitude": HOME[1], "accuracy": 8},
    )
    caller = await phone.new_page()
    await caller.goto(caller_url)
    await caller.click("#agree")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "live", timeout=20_000)

    await handler.click(f'#sessions li[data-session-id="{session_id}"] .watch')
    verdict = handler.locator("#bail-verdict")
    await expect(verdict).to_have_attribute("data-verdict", "within", timeout=15_000)
    await expect(handler.locator("#live-invite")).to_contain_text("0 m from the place, fix ±8 m")
    await expect(handler.locator("#live-video-box")).to_be_hidden()  # location only

    await phone.set_geolocation({"latitude": AWAY[0], "longitude": AWAY[1], "accuracy": 8})
    await expect(verdict).to_have_attribute("data-verdict", "outside", timeout=15_000)
    await expect(handler.locator("#live-invite")).to_contain_text(re.compile(r"50[01] m from"))

    await handler.click("#end-session")
    await handler.click("#end-session")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "ended", timeout=10_000)
    events_file = server.data_dir / "evidence" / session_id / "events.jsonl"
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    checks = [e for e in events if e["event"] == "bail_check"]
    assert [c["verdict"] for c in checks] == ["within", "outside"]
    assert checks[0]["required_place"]["lat"] == HOME[0]
    assert checks[1]["distance_m"] == pytest.approx(500, abs=3)
