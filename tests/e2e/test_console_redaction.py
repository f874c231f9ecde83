"""An investigator redacts a recording in Chromium: the console proposes the face in a recorded
session, the copy is made with a reason, and its files are offered for download."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from bench.synthetic import clip_of_frames
from recorder.manifest import KEY_FILE, Signer
from tests.e2e.conftest import RunningServer, play_recording, start_server
from tests.recorder.facecam import FPS, HEIGHT, SECONDS, WIDTH, face_frame
from tests.recorder.feed import record_session


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    data = tmp_path / "data"
    data.mkdir()
    signer = Signer.load_or_create(data / KEY_FILE)
    clip = clip_of_frames("H264", face_frame, WIDTH, HEIGHT, FPS, SECONDS)
    await record_session(data / "evidence" / "face-1", clip, signer, None, incident_ref="CAD-FACE")
    for running in start_server(tmp_path):
        yield running


async def test_an_investigator_redacts_the_face(browser: Browser, server: RunningServer) -> None:
    page = await play_recording(browser, server, "CAD-FACE", "face-1")

    panel = page.locator("#redact-panel")
    await expect(panel).to_be_visible(timeout=10_000)
    await panel.get_by_role("button", name="Make redacted copy").click()
    await expect(panel.locator(".error")).to_contain_text("nothing to hide")
    await panel.get_by_role("button", name="Find faces").click()
    await expect(panel.get_by_role("list", name="Regions to blur").locator("li")).to_have_count(
        1, timeout=20_000
    )
    await page.locator("#playback-video").evaluate("v => { v.pause(); v.currentTime = 1; }")
    await expect(page.locator(".redact-overlay .redact-box")).to_have_count(1)
    # A box drawn by hand over the paused picture: a second region, shown over the video.
    await panel.get_by_role("button", name="New region").click()
    await panel.get_by_role("button", name="Draw a box at this moment").click()
    await page.locator(".redact-overlay").scroll_into_view_if_needed()
    frame = await page.locator(".redact-overlay").bounding_box()
    assert frame is not None
    x, y = frame["x"] + frame["width"] * 0.1, frame["y"] + frame["height"] * 0.6
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + 80, y + 60, steps=4)
    await page.mouse.up()
    await panel.get_by_role("button", name="Stop drawing").click()
    regions = panel.get_by_role("list", name="Regions to blur").locator("li")
    await expect(regions).to_have_count(2)
    await expect(regions.nth(1)).to_contain_text("region 2")
    await expect(page.locator(".redact-overlay .redact-box")).to_have_count(2)
    await panel.locator("textarea").fill("witness identity")
    await panel.get_by_role("button", name="Make redacted copy").click()
    link = panel.locator(".redact-files a", has_text="redacted.mp4")
    await expect(link).to_be_visible(timeout=60_000)

    href = await link.get_attribute("href")
    sha256 = await link.get_attribute("title")
    response = await page.request.get(server.url + str(href))
    assert response.status == 200
    assert f"SHA-256 {hashlib.sha256(await response.body()).hexdigest()}" == sha256
