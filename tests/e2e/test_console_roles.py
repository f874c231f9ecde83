"""The console per role, in Chromium: each role's console left open writes no access_denied and
no consultation record; an officer sees no "Send a link" and no End; the live panel at 1366x768
shows video, map, End and sharing without scrolling, with a notice when the map tiles fail; an
investigator places a hold from a recording's row and a supervisor releases it, each seeing what
was done after the refresh that follows; a supervisor searches the audit trail and downloads one
session's extract.

The poll intervals are core.js's C.POLL_MS and C.RECORDINGS_POLL_MS (the one place they are
set); the test shortens them to 250 ms and 500 ms before signing in, so its 12 s of open consoles
make 48 sessions polls and 24 recordings refreshes each: more than a real minute's (30 and 4).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from bench.load import Api
from bench.synthetic import Clip
from recorder.manifest import KEY_FILE, Signer
from signalling.audit.extract import check_extract
from tests.e2e.conftest import RunningServer, start_server
from tests.recorder.feed import record_session

pytestmark = pytest.mark.e2e

ROLES = {
    "hal": "call_handler",
    "olly": "officer",
    "ivy": "investigator",
    "sue": "supervisor",
    "ada": "admin",
}
OPEN_S = 12.0
KEPT = "CAD-KEPT-1"


@pytest.fixture
async def server(tmp_path: Path, clips: dict[str, Clip]) -> AsyncIterator[RunningServer]:
    """Five accounts, one a role each, and one recorded session (CAD-KEPT-1) in the spool."""
    data = tmp_path / "data"
    signer = Signer.load_or_create(data / KEY_FILE)
    await record_session(
        data / "evidence" / "sess-1", clips["VP8"], signer, None, incident_ref=KEPT
    )
    accounts = [{"username": u, "password": f"{u}-pass", "roles": [r]} for u, r in ROLES.items()]
    servers = start_server(
        tmp_path,
        SCENELINK_OPERATORS=json.dumps(accounts),
        SCENELINK_TILE_URL="http://127.0.0.1:9/{z}/{x}/{y}.png",  # nothing listens: tiles fail
    )
    yield next(servers)
    for _ in servers:  # runs start_server on to its end: the server stops
        pass


def trail(server: RunningServer) -> list[dict[str, Any]]:
    lines = (server.data_dir / "audit" / "audit.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


async def console(browser: Browser, server: RunningServer, user: str) -> Page:
    """A console page signed in as ``user`` with the polls shortened (module docstring)."""
    context = await browser.new_context(viewport={"width": 1366, "height": 768})
    page = await context.new_page()
    await page.goto(server.url + "/console/")
    await expect(page.locator("#login-form")).to_be_visible()
    await page.evaluate(
        "() => { const C = window.SceneLink.console; C.POLL_MS = 250; C.RECORDINGS_POLL_MS = 500; }"
    )
    await page.fill("#login-form [name=username]", user)
    await page.fill("#login-form [name=password]", f"{user}-pass")
    await page.click("#login-form [type=submit]")
    await expect(page.locator("#app")).to_be_visible(timeout=30_000)  # argon2, five at once
    return page


async def in_view(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    assert box["width"] > 0 and box["height"] > 0, selector
    assert box["y"] >= 0 and box["y"] + box["height"] <= 768, (selector, box)
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1366, (selector, box)


async def test_each_roles_console(browser: Browser, server: RunningServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        api = Api(http, server.url)
        await api.login("hal", "hal-pass")
        session_id, _ = await api.create_session("07700 900123", "CAD-ROLES-1")
        await api.call(
            "POST", f"/api/sessions/{session_id}/shares", {"kind": "account", "username": "olly"}
        )

    opened_pages = await asyncio.gather(*(console(browser, server, u) for u in ROLES))
    pages = dict(zip(ROLES, opened_pages, strict=True))
    await asyncio.sleep(2.0)  # each console's first load: what the person opened
    opened = len(trail(server))
    await asyncio.sleep(OPEN_S)
    written = trail(server)[opened:]
    assert [r for r in written if r["action"] == "access_denied"] == []
    assert [r for r in written if r["action"].startswith("consultation.")] == []
    assert all(r["action"] != "access_denied" for r in trail(server))

    # What each role is shown: absent, not disabled.
    hal, olly, sue = pages["hal"], pages["olly"], pages["sue"]
    await expect(hal.get_by_role("heading", name="Send a link")).to_be_visible()
    for user in ("olly", "ivy"):  # the table lets supervisors and admins send too
        await expect(pages[user].get_by_role("heading", name="Send a link")).to_be_hidden()
    await expect(pages["ivy"].locator("#recordings-heading")).to_be_visible()
    await expect(hal.locator("#audit")).to_be_hidden()
    await expect(sue.locator("#audit")).to_be_visible()
    await expect(pages["ada"].locator("#accounts")).to_be_visible()
    await expect(sue.locator("#accounts")).to_be_hidden()
    officer_row = olly.locator(f'#sessions li[data-session-id="{session_id}"]')
    await expect(officer_row).to_be_visible()
    await expect(officer_row.locator("button.end")).to_be_hidden()
    await officer_row.locator("button.watch").click()
    await expect(olly.locator("#live-video-box")).to_be_visible()
    await expect(olly.locator("#end-session")).to_be_hidden()
    await expect(olly.locator("#shares-panel")).to_be_hidden()

    # The call handler's live panel at 1366x768: everything that matters without scrolling.
    await hal.locator(f'#sessions li[data-session-id="{session_id}"] button.watch').click()
    await expect(hal.locator("#share-account-form")).to_be_visible()
    await expect(hal.locator("#live-map .map-notice")).to_be_visible(timeout=10_000)
    # (Watch brings the live panel's top to the top of the window; nothing else moves it.)
    for selector in (
        "#live-heading",
        "#live-state",
        "#live-video-box",
        "#live-map",
        "#end-session",
    ):
        await in_view(hal, selector)
    await in_view(hal, "#share-account-form button")

    # Retention from a recording's row: what was done stays after the refresh that follows.
    ivy = pages["ivy"]
    row = ivy.locator("#recordings li", has_text=KEPT)
    await row.locator("button.retention").click()
    await expect(ivy.locator("#ret-session-ref")).to_have_text(KEPT)
    await ivy.select_option("#ret-hold-kind", "court")
    await ivy.fill("#ret-hold-form [name=reason]", "Trial listed for March")
    await ivy.click("#ret-hold-form [type=submit]")
    await expect(ivy.locator("#ret-message")).to_contain_text("Hold placed: court")
    await expect(ivy.locator("#ret-release-form")).to_be_hidden()  # investigators do not release
    await ivy.click("#ret-refresh")
    await asyncio.sleep(1.0)  # the queue's refresh and a recordings refresh or two
    await expect(ivy.locator("#ret-message")).to_contain_text("Hold placed: court")
    await sue.locator("#recordings li", has_text=KEPT).locator("button.retention").click()
    await expect(sue.locator("#ret-release-hold option")).to_have_count(1)
    await sue.fill("#ret-release-form [name=reason]", "Case discontinued")
    await sue.click("#ret-release-form [type=submit]")
    await expect(sue.locator("#ret-message")).to_contain_text("released")
    await expect(sue.locator("#ret-state")).to_contain_text("holds: none")
    await sue.click("#ret-refresh")
    await asyncio.sleep(1.0)
    await expect(sue.locator("#ret-message")).to_contain_text("released")

    # The supervisor's audit search, then one session's extract.
    await sue.fill("#audit-search [name=actor]", "hal")
    await sue.click("#audit-search [type=submit]")
    await expect(sue.locator("#audit-chain")).to_have_text("Chain intact")
    await expect(sue.locator("#audit-rows")).to_contain_text("collection.session_created")
    await sue.fill("#audit-search [name=session_id]", session_id)
    await sue.click("#audit-search [type=submit]")
    await expect(sue.locator("#audit-rows")).to_contain_text("disclosure.share")
    async with sue.expect_download() as download_info:
        await sue.click("#audit-extract-json")
    extract = json.loads(Path(await (await download_info.value).path()).read_text())
    assert extract["session_id"] == session_id and check_extract(extract) is None
    made = trail(server)[-1]
    assert (made["actor"], made["action"]) == ("sue", "disclosure.audit_extract")
    assert all(r["action"] != "access_denied" for r in trail(server))
