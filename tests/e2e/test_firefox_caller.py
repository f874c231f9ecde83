"""The main flow with Debian's Firefox ESR as the caller (issue 11): the console (Chromium) signs
in and sends a link; Firefox, driven over WebDriver BiDi with its fake camera and microphone and
a moving position from a local geolocation provider, agrees and streams; the console shows live
video and the fixes; the session ends and its VP8 recording verifies."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import av
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from recorder.library import video_packets
from tests.e2e.bidi import CALLER_PREFS, FIREFOX, firefox, firefox_binary
from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_walking_skeleton import (
    ROUTE,
    console,
    rendered_frames,
    scenelink_verify,
    wait_for_frames,
    wait_for_position,
)
from tests.harness import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    # Firefox here has no H.264 (its OpenH264 plugin is a download): the page asks for VP8.
    yield from start_server(tmp_path, SCENELINK_PREFERRED_CODEC="VP8")


class Position:
    """A network geolocation provider on loopback: Firefox POSTs to it and is told where the
    phone is now (the Google/Mozilla location service's answer)."""

    def __init__(self, lat: float, lon: float, accuracy: float = 8.0) -> None:
        self.lat, self.lon, self.accuracy = lat, lon, accuracy
        self.asked = 0
        self.url = ""

    async def answer(self, request: web.Request) -> web.Response:
        self.asked += 1
        body = {"location": {"lat": self.lat, "lng": self.lon}, "accuracy": self.accuracy}
        return web.json_response(body)


@pytest.fixture
async def position() -> AsyncIterator[Position]:
    where = Position(*ROUTE[0])
    app = web.Application()
    app.router.add_route("*", "/geolocate", where.answer)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    where.url = f"http://127.0.0.1:{port}/geolocate"
    yield where
    await runner.cleanup()


async def test_firefox_caller_link_to_live_video_location_and_evidence(
    browser: Browser, server: RunningServer, position: Position, tmp_path: Path
) -> None:
    if firefox_binary() is None:
        pytest.skip(f"{FIREFOX} is not installed (the README's test command installs it)")
    handler = await console(browser, server, "alice", "alice-pass")

    await handler.fill("#send-form [name=phone]", "07700 900123")
    await handler.fill("#send-form [name=incident_ref]", "CAD-2026-0911")
    await handler.click("#send-form [type=submit]")
    link = handler.locator("a.sms-link").first
    await expect(link).to_be_visible(timeout=10_000)
    caller_url = await link.get_attribute("href")
    assert caller_url and "/c/" in caller_url
    row = handler.locator("#sessions li[data-session-id]").first
    await expect(row).to_be_visible()
    session_id = await row.get_attribute("data-session-id")
    assert session_id

    prefs = CALLER_PREFS | {"geo.provider.network.url": position.url}
    async with firefox(tmp_path / "firefox-profile", prefs) as caller:
        await caller.navigate(caller_url)
        assert "Firefox/" in await caller.value("navigator.userAgent")
        await caller.wait_for("!document.getElementById('agree').disabled", 15, "Agree enabled")
        await caller.click("#agree")
        agreed = time.monotonic()
        await caller.wait_for(
            "document.getElementById('status').dataset.state === 'live'", 20, "the page live"
        )
        live_since = time.monotonic()

        # Live video on the console, still growing.
        await handler.click(f'#sessions li[data-session-id="{session_id}"] .watch')
        await wait_for_frames(handler, 10, within_s=20)
        first_frames_s = time.monotonic() - agreed
        print(f"Firefox caller: Agree to 10 frames on the console in {first_frames_s:.2f} s")
        await wait_for_frames(handler, await rendered_frames(handler) + 10)
        await expect(handler.locator("#live-caller-device")).to_contain_text("Firefox")

        # The phone walks; every position the provider gives reaches the console.
        for lat, lon in ROUTE[1:]:
            position.lat, position.lon = lat, lon
            await asyncio.sleep(1.0)
        await wait_for_position(handler, ROUTE[-1])
        assert int(await handler.locator("#fix-count").text_content() or 0) >= 5
        assert position.asked >= len(ROUTE), position.asked

        # The call handler ends the session; Firefox's page says so.
        await handler.click("#end-session")
        await handler.click("#end-session")
        await caller.wait_for(
            "document.getElementById('status').dataset.state === 'ended'", 10, "the page ended"
        )
        streamed = time.monotonic() - live_since
    await expect(handler.locator("#live-state")).to_have_attribute("data-state", "ended")

    # The evidential copy is Firefox's VP8 and audio, as long as the stream, with the walk.
    folder = server.data_dir / "evidence" / session_id
    parts = sorted(folder.glob("media-*.*"))
    assert parts, f"no media recorded in {folder}"
    assert sum(len(video_packets(part)) for part in parts) > 30
    recorded = 0.0
    for part in parts:
        with av.open(str(part)) as container:
            video = container.streams.video[0]
            assert video.codec_context.name == "vp8"
            assert container.streams.audio, "audio was not recorded"
            times = [f.time for f in container.decode(video) if f.time is not None]
            recorded += max(times) - min(times)
    assert abs(recorded - streamed) < 1.5, (recorded, streamed)
    fixes = [json.loads(line) for line in (folder / "location.jsonl").read_text().splitlines()]
    stored = {(round(f["lat"], 5), round(f["lon"], 5)) for f in fixes}
    assert {(round(a, 5), round(b, 5)) for a, b in ROUTE} <= stored

    # The bundle reaches the evidence store and verifies against the published key.
    async with asyncio.timeout(20):
        while True:
            status = await (await handler.request.get(server.url + "/api/evidence/status")).json()
            if status["spool"]["queued_sessions"] == 0 and status["spool"]["uploaded_objects"]:
                break
            await asyncio.sleep(0.3)
    jwks = server.data_dir.parent / "jwks.json"
    published = await handler.request.get(server.url + "/.well-known/jwks.json")
    jwks.write_text(json.dumps(await published.json()))
    assert await scenelink_verify(server, session_id, jwks) == f"OK: session {session_id} (closed)"
