"""Photos and stills from a phone-sized Chromium to the console (issue 14): a photo chosen on
the caller's page appears on the console and is in the bundle byte for byte, covered by
``scenelink verify``; the call handler's snapshot of the live picture; and a page without
WebRTC sends stills every few seconds, which the console shows as the low-bandwidth
fallback; a photo the call handler asks for is taken by the page and sent. One server and one
console for all of it."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Browser, Page, expect

from signalling.cli.main import main as scenelink
from tests.e2e.conftest import RunningServer, start_server
from tests.e2e.test_caller_ladder import HERE, PHONE
from tests.e2e.test_console_caller_state import send_link
from tests.e2e.test_walking_skeleton import console, watch

pytestmark = pytest.mark.e2e

NO_WEBRTC = "delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    yield from start_server(tmp_path, SCENELINK_STILLS_INTERVAL_S="2")


async def phone(browser: Browser, link: str, init_script: str | None = None) -> Page:
    context = await browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        permissions=["geolocation", "camera", "microphone"],
        geolocation={"latitude": HERE[0], "longitude": HERE[1], "accuracy": 8},
    )
    if init_script is not None:
        await context.add_init_script(init_script)
    page = await context.new_page()
    await page.goto(link)
    await page.click("#agree")
    return page


async def test_photo_snapshot_and_stills_reach_the_console(
    browser: Browser, server: RunningServer, tmp_path: Path
) -> None:
    handler = await console(browser, server, "alice", "alice-pass")
    session_id, link = await send_link(handler)
    caller = await phone(browser, link)
    await watch(handler, session_id)

    # A photo from the phone's gallery: progress on the page, a thumbnail on the console.
    photo = tmp_path / "IMG_0042.JPG"
    out = io.BytesIO()
    Image.effect_noise((1200, 900), 60).convert("RGB").save(out, "JPEG", quality=90)
    photo.write_bytes(out.getvalue())
    await caller.set_input_files("#file-gallery", str(photo))
    await expect(caller.locator("#file-progress")).to_contain_text("Sent: IMG_0042.JPG")
    tile = handler.locator("#files li[data-kind='photo']")
    await expect(tile).to_have_count(1, timeout=10_000)
    await expect(tile.locator("img.file-thumb")).to_have_js_property("complete", True)
    assert await tile.locator("img.file-thumb").evaluate("img => img.naturalWidth") > 0
    name = await tile.get_attribute("data-name")
    assert name is not None

    # The handler's snapshot of the live picture.
    await handler.click("#snapshot")
    await expect(handler.locator("#files li[data-kind='snapshot']")).to_have_count(
        1, timeout=10_000
    )

    # "Ask for a photo": the page takes one from its camera and sends it as asked for.
    await handler.click("#ask-photo")
    await expect(caller.locator("#file-progress")).to_contain_text("Sent: photo.", timeout=10_000)
    asked = handler.locator("#files li[data-kind='photo']").filter(has_text="asked for")
    await expect(asked).to_have_count(1, timeout=10_000)

    # A phone without WebRTC: stills over HTTPS, shown as the low-bandwidth fallback.
    stills_id, stills_link = await send_link(handler)
    stiller = await phone(browser, stills_link, NO_WEBRTC)
    await handler.click(f'#sessions li[data-session-id="{stills_id}"] .watch')
    banner = handler.locator("#stills-banner")
    await expect(banner).to_contain_text("Low bandwidth: stills every 2 s", timeout=15_000)
    await expect(handler.locator("#files li[data-kind='still']").first).to_be_visible(
        timeout=10_000
    )
    await expect(handler.locator("#latest-still")).to_be_visible()
    await expect(stiller.locator("#file-progress")).to_contain_text("every 2 seconds")

    # The bundles: the photo byte for byte, the still, and verify covers them.
    for ended in (session_id, stills_id):
        answer = await handler.request.post(
            f"{server.url}/api/sessions/{ended}/end", headers={"X-Requested-With": "scenelink"}
        )
        assert answer.ok
    folder = server.data_dir / "evidence" / session_id
    await expect(caller.locator("#status")).to_have_attribute("data-state", "ended")
    assert (folder / name).read_bytes() == photo.read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    gallery, requested = manifest["originals"]
    assert gallery["sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert (gallery["origin"], requested["origin"]) == ("gallery", "requested")
    assert {d["role"] for d in manifest["derivatives"]} == {"thumbnail", "snapshot"}
    assert scenelink(["verify", str(folder)]) == 0
    stills_folder = server.data_dir / "evidence" / stills_id
    stills_manifest = json.loads((stills_folder / "manifest.json").read_text())
    assert {o["file_kind"] for o in stills_manifest["originals"]} == {"still"}
    assert scenelink(["verify", str(stills_folder)]) == 0
