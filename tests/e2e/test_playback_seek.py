"""Chromium seeks into the middle of a two-part recording: the console plays the whole session
as one working copy (H.264 in fragmented MP4), the timeline shows both parts and the gap
between them, and after a click on the timeline the video's time, the map marker and the chat
list show that moment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from bench.synthetic import Clip
from recorder.manifest import KEY_FILE, Signer
from tests.e2e.conftest import RunningServer, play_recording, start_server
from tests.recorder.feed import record_reconnected

GAP_S = 4.0
# (seconds after the first frame, lat, lon): two fixes in each part.
FIXES = (
    (0.5, 51.5010, -0.1262),
    (2.0, 51.5020, -0.1255),
    (7.5, 51.5030, -0.1248),
    (9.5, 51.5040, -0.1241),
)
CHAT = ((1.0, "I'm by the bus stop"), (9.0, "He ran towards the park"))


@pytest.fixture
async def recorded(tmp_path: Path, clips: dict[str, Clip]) -> Clip:
    """A session recorded in two parts, GAP_S apart, in the server's spool before it starts."""
    data = tmp_path / "data"
    data.mkdir()
    signer = Signer.load_or_create(data / KEY_FILE)
    clip = clips["H264"]
    await record_reconnected(
        data / "evidence" / "sess-seek", clip, signer, None, GAP_S, FIXES, "CAD-SEEK", CHAT
    )
    return clip


@pytest.fixture
def server(tmp_path: Path, recorded: Clip) -> Iterator[RunningServer]:
    yield from start_server(tmp_path)


async def test_seek_to_the_middle_of_a_two_part_recording(
    browser: Browser, server: RunningServer, recorded: Clip
) -> None:
    page = await play_recording(browser, server, "CAD-SEEK", "sess-seek")

    timeline = page.locator("#playback-timeline")
    await expect(timeline.locator(".tl-part")).to_have_count(2, timeout=10_000)
    await expect(timeline.locator(".tl-gap")).to_have_count(1)
    video = page.locator("#playback-video")
    assert (
        await video.evaluate("v => v.src") == server.url + "/api/recordings/sess-seek/working-copy"
    )
    await video.evaluate(
        """v => { v.muted = true; v.pause(); return new Promise((ok, fail) => {
             if (v.readyState >= 1) return ok();
             v.addEventListener('loadedmetadata', () => ok(), { once: true });
             v.addEventListener('error', () => fail(new Error('cannot play')), { once: true });
           }); }"""
    )
    duration = float(await timeline.get_attribute("data-duration") or "nan")
    second_part = recorded.duration_s + GAP_S
    assert await video.evaluate("v => v.duration") == pytest.approx(duration, abs=0.2)

    # Click the timeline at a moment 1.5 s into the second part.
    target = second_part + 1.5
    box = await timeline.bounding_box()
    assert box is not None
    await video.evaluate(
        """v => { window.seekedAt = new Promise(ok =>
             v.addEventListener('seeked', () => ok(v.currentTime), { once: true })); }"""
    )
    await timeline.click(position={"x": box["width"] * target / duration, "y": box["height"] / 2})
    at = await page.evaluate("() => window.seekedAt")
    assert at == pytest.approx(target, abs=0.15)
    # A frame of the second part is there to show (the copy holds it at that time).
    ready = await video.evaluate(
        """v => v.readyState >= 2 ? v.readyState : new Promise(ok =>
             v.addEventListener('canplay', () => ok(v.readyState), { once: true }))"""
    )
    assert ready >= 2

    # The map marker is at the last fix received by then: the third.
    position = page.locator("#playback-position")
    await expect(position).to_have_attribute("data-index", "2")
    assert float(await position.get_attribute("data-lat") or "nan") == FIXES[2][1]
    assert float(await timeline.get_attribute("data-time") or "nan") == pytest.approx(at, abs=0.01)
    # The chat is listed, and highlighted up to that moment: the first message, not the second.
    await expect(timeline.locator(".tl-m-chat")).to_have_count(2)
    moments = page.locator("#playback-moments li")
    await expect(moments).to_have_count(2)
    await expect(moments.nth(0)).to_contain_text(CHAT[0][1])
    await expect(moments.nth(0)).to_have_class("moment moment-chat moment-past")
    await expect(moments.nth(1)).to_have_class("moment moment-chat")
