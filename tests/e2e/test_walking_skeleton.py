"""The whole path in real browsers: console sends a link, Chromium streams as the caller,
two console viewers watch, the session ends, and the evidential copy is checked."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import av
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from bench.load import Api, viewer_answerer
from recorder.library import video_packets
from streamserver import patches
from tests.e2e.conftest import RunningServer, recording_closed, start_server
from tests.viewer import Viewer, in_order

pytestmark = pytest.mark.e2e

# A walk along Whitehall, one fix a second.
ROUTE = [(51.50100 + i * 0.00012, -0.12620 + i * 0.00003) for i in range(6)]


@pytest.fixture(params=["memory-vp8", "redis-h264"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    env: dict[str, str] = {}
    if request.param.startswith("redis"):
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    env["SCENELINK_PREFERRED_CODEC"] = "H264" if request.param.endswith("h264") else "VP8"
    yield from start_server(tmp_path, **env)


async def console(browser: Browser, server: RunningServer, user: str, password: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(server.url + "/console/")
    await page.fill("#login-form [name=username]", user)
    await page.fill("#login-form [name=password]", password)
    await page.click("#login-form [type=submit]")
    await expect(page.locator("#send-form")).to_be_visible()
    return page


async def rendered_frames(page: Page) -> int:
    return int((await page.locator("#live-frames").text_content() or "0").strip() or 0)


async def wait_for_frames(page: Page, more_than: int, within_s: float = 15.0) -> int:
    try:
        async with asyncio.timeout(within_s):
            while (frames := await rendered_frames(page)) <= more_than:
                await asyncio.sleep(0.2)
            return frames
    except TimeoutError:
        raise AssertionError(f"video stuck at {await rendered_frames(page)} frames") from None


async def wait_for_position(page: Page, where: tuple[float, float], timeout: float = 10.0) -> None:
    """The console's latest fix is the phone's position (to a tenth of a metre)."""
    last_fix = page.locator("#last-fix")
    deadline = time.monotonic() + timeout
    shown: tuple[float, float] | None = None
    while time.monotonic() < deadline:
        lat, lon = (
            await last_fix.get_attribute("data-lat"),
            await last_fix.get_attribute("data-lon"),
        )
        if lat and lon:
            shown = (float(lat), float(lon))
            if shown == pytest.approx(where, abs=1e-6):
                return
        await asyncio.sleep(0.2)
    raise AssertionError(f"console shows {shown}, phone is at {where}")


async def seconds_to_first_picture(page: Page, session_id: str) -> float:
    """From pressing Watch to the first video frame painted (requestVideoFrameCallback)."""
    await page.evaluate(
        """() => {
            window.firstPicture = null;
            window.watchPressed = performance.now();
            document.getElementById('live-video').requestVideoFrameCallback(() => {
                window.firstPicture = performance.now();
            });
        }"""
    )
    await page.click(f'#sessions li[data-session-id="{session_id}"] .watch')
    await page.wait_for_function("() => window.firstPicture !== null", timeout=15_000)
    return float(await page.evaluate("(window.firstPicture - window.watchPressed) / 1000"))


async def watch(page: Page, session_id: str) -> None:
    await page.click(f'#sessions li[data-session-id="{session_id}"] .watch')
    await wait_for_frames(page, 10)


async def test_link_to_live_video_location_and_evidence(
    browser: Browser, server: RunningServer
) -> None:
    handler = await console(browser, server, "alice", "alice-pass")

    # The call handler sends a link; the development SMS outbox shows it.
    await handler.fill("#send-form [name=phone]", "07700 900123")
    await handler.fill("#send-form [name=incident_ref]", "CAD-2026-0042")
    await handler.click("#send-form [type=submit]")
    link = handler.locator("a.sms-link").first
    await expect(link).to_be_visible(timeout=10_000)
    caller_url = await link.get_attribute("href")
    assert caller_url and "/c/" in caller_url
    row = handler.locator("#sessions li[data-session-id]").first
    await expect(row).to_be_visible()
    session_id = await row.get_attribute("data-session-id")
    assert session_id

    # The caller opens it on a phone that is moving.
    caller_context: BrowserContext = await browser.new_context(
        permissions=["geolocation", "camera", "microphone"],
        geolocation={"latitude": ROUTE[0][0], "longitude": ROUTE[0][1], "accuracy": 8},
    )
    caller = await caller_context.new_page()
    await caller.goto(caller_url)
    await caller.click("#agree")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "live", timeout=20_000)
    live_since = time.monotonic()

    # Two people watch at once; both see a growing number of frames. The second joins a
    # running session: its keyframe request reaches the phone, so a picture comes at once.
    await watch(handler, session_id)
    supervisor = await console(browser, server, "sam", "sam-pass")
    joined_in = await seconds_to_first_picture(supervisor, session_id)
    print(f"a viewer joining a live session saw its first picture after {joined_in:.2f} s")
    assert joined_in < 1.0, f"a viewer joining a live session waited {joined_in:.2f} s"
    for page in (handler, supervisor):
        before = await rendered_frames(page)
        await wait_for_frames(page, before + 10)

    for lat, lon in ROUTE[1:]:
        await caller_context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 8})
        await asyncio.sleep(1.0)
    for page in (handler, supervisor):
        await wait_for_position(page, ROUTE[-1])
    assert int(await handler.locator("#fix-count").text_content() or 0) >= 5

    # A third viewer keeps the encoded frames the server forwards it.
    patches.install()
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    probe = Viewer()
    try:
        api = Api(http, server.url)
        await api.login("alice", "alice-pass")
        await probe.join(viewer_answerer(api, session_id))
        async with asyncio.timeout(15):
            while len(probe.frames["video"]) < 30:
                await asyncio.sleep(0.1)
    except BaseException:
        await probe.close()
        raise
    finally:
        await http.close()

    # The call handler ends the session; the caller's page says so.
    await handler.click("#end-session")
    await handler.click("#end-session")
    await expect(caller.locator("#status")).to_have_attribute("data-state", "ended", timeout=10_000)
    streamed = time.monotonic() - live_since
    await expect(handler.locator("#live-state")).to_have_attribute("data-state", "ended")
    await probe.close()

    # The evidential copy decodes to the streamed duration, with its trail beside it.
    folder = server.data_dir / "evidence" / session_id
    await recording_closed(folder)
    parts = sorted(folder.glob("media-*.*"))
    assert parts, f"no media recorded in {folder}"
    # Nothing was transcoded: what the viewer got is, byte for byte and in order, what was
    # recorded. (A frame the viewer itself got only part of, on a busy machine, says so.)
    recorded_packets = [packet for part in parts for packet in video_packets(part)]
    watched = [(frame.data, frame.after_loss) for frame in probe.frames["video"]]
    assert probe.frames["video"][0].keyframe
    whole = sum(not lost for _, lost in watched)
    assert whole >= 25, f"only {whole} of {len(watched)} watched frames whole"
    assert in_order(watched, recorded_packets), (
        f"forwarded and recorded frames differ ({whole} whole of {len(watched)} watched, "
        f"{sum(data in recorded_packets for data, _ in watched)} found in the recording)"
    )
    recorded = 0.0
    for part in parts:
        with av.open(str(part)) as container:
            video = container.streams.video[0]
            assert video.codec_context.name == {"H264": "h264", "VP8": "vp8"}[server.codec or ""]
            assert container.streams.audio, "audio was not recorded"
            times = [f.time for f in container.decode(video) if f.time is not None]
            recorded += max(times) - min(times)
    assert abs(recorded - streamed) < 1.0, (recorded, streamed)
    fixes = [json.loads(line) for line in (folder / "location.jsonl").read_text().splitlines()]
    stored = {(round(f["lat"], 5), round(f["lon"], 5)) for f in fixes}
    assert {(round(a, 5), round(b, 5)) for a, b in ROUTE} <= stored

    # The link is dead now: a friendly page, not an error code.
    await caller.goto(caller_url)
    await expect(caller.locator("body")).to_contain_text("no longer works")

    # The bundle reaches the evidence store and verifies there against the published key.
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

    # An investigator finds it by incident reference and plays it back; the position on the
    # map moves in step with the video.
    await handler.reload()
    await handler.fill("#recording-search [name=incident_ref]", "CAD-2026-0042")
    await handler.click("#recording-search [type=submit]")
    row = handler.locator(f'#recordings li[data-session-id="{session_id}"]')
    await expect(row).to_be_visible(timeout=10_000)
    await expect(handler.locator("#recordings li")).to_have_count(1)
    await row.locator(".play").click()
    playback = handler.locator("#playback-video")
    await playback.evaluate("v => { v.muted = true; return v.play(); }")
    position = handler.locator("#playback-position")
    await expect(position).to_have_attribute("data-index", "0", timeout=10_000)
    first_lat = float(await position.get_attribute("data-lat") or "nan")
    await expect(position).not_to_have_attribute("data-index", "0", timeout=15_000)
    later_lat = float(await position.get_attribute("data-lat") or "nan")
    lats = [round(lat, 6) for lat, _ in ROUTE]
    assert round(first_lat, 6) in lats and round(later_lat, 6) in lats
    assert later_lat > first_lat  # the walk goes north

    # It is exported for disclosure; the package verifies on its own.
    await row.locator("input.pick").check()
    await handler.fill("#export-form [name=recipient]", "CPS London")
    await handler.fill("#export-form [name=purpose]", "Charging file")
    await handler.click("#export-selected")
    download_link = handler.locator("#export-download")
    await expect(download_link).to_be_visible(timeout=20_000)
    async with handler.expect_download() as downloading:
        await download_link.click()
    package = server.data_dir.parent / "package.zip"
    await (await downloading.value).save_as(package)
    assert (await scenelink_verify(server, str(package), jwks)).startswith(
        f"OK: session {session_id} (closed)"
    )


async def scenelink_verify(server: RunningServer, target: str, jwks: Path) -> str:
    """``scenelink verify`` run as a user would; its output, or the failure."""
    verified = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "signalling.cli.main", "verify", target, "--jwks", str(jwks)],
        env=os.environ | {"SCENELINK_DATA_DIR": str(server.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    return verified.stdout.strip().split(", ")[0]
