"""A real server process, real Chromium pages, and (for some runs) a real redis-server and a
real coturn."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from bench.load import Api
from tests.harness import TurnServer, free_port, running, turn_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-sandbox",
    "--disable-gpu",
    "--autoplay-policy=no-user-gesture-required",
]
OPERATORS = [
    {"username": "alice", "password": "alice-pass", "roles": ["call_handler", "investigator"]},
    {"username": "bob", "password": "bob-pass", "roles": ["officer"]},
    {"username": "sam", "password": "sam-pass", "roles": ["supervisor"]},
]


@dataclass(frozen=True)
class RunningServer:
    url: str
    data_dir: Path
    log: Path
    codec: str | None = None  # the video codec the caller page is told to prefer
    pid: int = 0  # the server process (a test that kills it)


def start_server(tmp_path: Path, **env: str) -> Iterator[RunningServer]:
    port = free_port()
    data_dir = tmp_path / "data"
    environment = (
        os.environ
        | {
            "SCENELINK_HOST": "127.0.0.1",
            "SCENELINK_PORT": str(port),
            "SCENELINK_DATA_DIR": str(data_dir),
            "SCENELINK_OPERATORS": json.dumps(OPERATORS),
            "SCENELINK_FORCE_NAME": "Test Constabulary",
            "SCENELINK_WORKERS": "1",  # one process, also with Redis (a test's pid is its server)
            "SCENELINK_DRAIN_S": "1",  # a test that ends with sessions live stops in seconds
        }
        | env
    )
    if "REDIS_URL" not in env:
        environment.pop("REDIS_URL", None)
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "signalling.cli.main", "serve"]
    with running(command, port, log, env=environment) as process:
        yield RunningServer(
            f"http://127.0.0.1:{port}",
            data_dir,
            log,
            env.get("SCENELINK_PREFERRED_CODEC"),
            process.pid,
        )


async def recording_closed(folder: Path, within_s: float = 20) -> None:
    """Wait until a session's bundle is closed: its recording is complete, its last part
    finished (an ended session's last frames are still being written when the pages say so)."""
    async with asyncio.timeout(within_s):
        while not (folder / "manifest.jws").exists() or (
            json.loads((folder / "manifest.json").read_bytes()).get("status") != "closed"
        ):
            await asyncio.sleep(0.2)


async def play_recording(
    browser: Browser, server: RunningServer, incident_ref: str, session_id: str
) -> Page:
    """A wide console page signed in as alice, playing back ``session_id`` (found by its incident
    reference once the spool has uploaded it)."""
    page = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
    await page.goto(server.url + "/console/")
    await page.fill("#login-form [name=username]", "alice")
    await page.fill("#login-form [name=password]", "alice-pass")
    await page.click("#login-form [type=submit]")
    await page.fill("#recording-search [name=incident_ref]", incident_ref)
    row = page.locator(f'#recordings li[data-session-id="{session_id}"]')
    for _ in range(20):  # the spool uploads the session just after the server starts
        await page.click("#recording-search [type=submit]")
        try:
            await expect(row).to_be_visible(timeout=1_000)
            break
        except AssertionError:
            continue
    await row.locator(".play").click()
    return page


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (the README's test command installs it)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        await launched.close()


@pytest.fixture
async def asking_browser() -> AsyncIterator[Browser]:
    """Chromium with a fake camera and microphone but no fake permission prompt: only the
    permissions a context is granted are given, the rest are refused (a caller who says no)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (the README's test command installs it)")
    flags = [flag for flag in CHROMIUM_FLAGS if flag != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=flags
        )
        yield launched
        await launched.close()


@pytest.fixture
async def handler(server: RunningServer) -> AsyncIterator[Api]:
    """A call handler signed in to the test's ``server`` over the JSON API."""
    http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    api = Api(http, server.url)
    await api.login("alice", "alice-pass")
    yield api
    await http.close()


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[TurnServer]:
    """The tests' own coturn on loopback."""
    folder = tmp_path / "coturn"
    folder.mkdir()
    with turn_server(folder) as server:
        yield server


def relay_only(tmp_path: Path, coturn: TurnServer) -> Iterator[RunningServer]:
    """A server whose peers (VP8) may use relay candidates only, through ``coturn``."""
    yield from start_server(
        tmp_path,
        SCENELINK_PREFERRED_CODEC="VP8",
        SCENELINK_TURN_URLS=json.dumps(coturn.urls),
        SCENELINK_TURN_SECRET=coturn.secret,
        SCENELINK_ICE_TRANSPORT_POLICY="relay",
    )
