"""Debian's Firefox ESR driven over WebDriver BiDi, with no geckodriver.

Firefox's remote agent (``--remote-debugging-port``) speaks WebDriver BiDi on a WebSocket at
``ws://127.0.0.1:PORT/session``; this is a small client for it over aiohttp. Fake camera and
microphone, and permission prompts answered, come from the profile's preferences (``user.js``);
geolocation comes from the network provider, pointed at a URL the test serves.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from tests.harness import free_port

FIREFOX = "firefox-esr"

# What makes a headless Firefox a caller's phone in a test: a fake camera and microphone given
# without asking, ICE over the machine's own addresses, and every geolocation request answered
# from a local URL (no geoclue, no Wi-Fi scan, no cache), asked again every half second.
CALLER_PREFS: dict[str, bool | int | str] = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.autoplay.default": 0,
    "media.peerconnection.ice.loopback": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "geo.enabled": True,
    "geo.prompt.testing": True,
    "geo.prompt.testing.allow": True,
    "geo.provider.testing": True,
    "geo.provider.use_geoclue": False,
    "geo.provider.use_gpsd": False,
    "geo.provider.network.scan": False,
    "geo.provider.network.timeToWaitBeforeSending": 500,
    "geo.provider.network.debug.requestCache.enabled": False,
    "permissions.default.geo": 1,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
}


class BiDiError(RuntimeError):
    """A command the browser answered with an error, or a script that threw."""


def firefox_binary() -> str | None:
    return shutil.which(FIREFOX)


def write_prefs(profile: Path, prefs: Mapping[str, bool | int | str]) -> None:
    profile.mkdir(parents=True, exist_ok=True)
    lines = [
        f"user_pref({json.dumps(name)}, {json.dumps(value)});" for name, value in prefs.items()
    ]
    (profile / "user.js").write_text("\n".join(lines) + "\n")


class BiDiSession:
    """One WebDriver BiDi session: commands by id, events kept (``log.entryAdded`` for the page's
    console, shown when a test fails)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            if data.get("type") == "event":
                if data.get("method") == "log.entryAdded":
                    entry = data["params"]
                    self.console.append(f"{entry.get('level')}: {entry.get('text')}")
                continue
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(data)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(BiDiError("the browser closed the WebDriver BiDi socket"))

    async def send(self, method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        await self._ws.send_json({"id": command_id, "method": method, "params": params or {}})
        async with asyncio.timeout(60):
            answer = await future
        if answer.get("type") == "error":
            raise BiDiError(f"{method}: {answer.get('error')}: {answer.get('message')}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def close(self) -> None:
        self._reader.cancel()
        await self._ws.close()


class Tab:
    """A top-level browsing context of a BiDi session."""

    def __init__(self, session: BiDiSession, context: str) -> None:
        self.session = session
        self.context = context

    async def navigate(self, url: str) -> None:
        await self.session.send(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    async def value(self, expression: str, user_activation: bool = False) -> Any:
        """The JSON value of an expression (awaited if it is a promise), evaluated in the page."""
        wrapped = f"(async () => JSON.stringify(await ({expression})))()"
        answer = await self.session.send(
            "script.evaluate",
            {
                "expression": wrapped,
                "target": {"context": self.context},
                "awaitPromise": True,
                "userActivation": user_activation,
            },
        )
        if answer.get("type") == "exception":
            details = answer.get("exceptionDetails", {})
            raise BiDiError(f"{expression!r} threw: {details.get('text')}")
        result = answer["result"]
        if result.get("type") != "string":  # JSON.stringify(undefined) is undefined
            return None
        return json.loads(result["value"])

    async def click(self, selector: str) -> None:
        """Click an element as the user would (with user activation)."""
        clicked = await self.value(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.scrollIntoView(); e.click(); return true; })()",
            user_activation=True,
        )
        if not clicked:
            raise BiDiError(f"nothing matches {selector!r}")

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        """Poll an expression until it is truthy; its value."""
        try:
            async with asyncio.timeout(timeout):
                while not (value := await self.value(expression)):
                    await asyncio.sleep(0.2)
                return value
        except TimeoutError:
            shown = await self.value("document.body && document.body.innerText")
            console = "\n".join(self.session.console[-20:])
            raise AssertionError(
                f"Firefox: {what} not within {timeout} s; page says {shown!r}; console:\n{console}"
            ) from None


@asynccontextmanager
async def firefox(profile: Path, prefs: Mapping[str, bool | int | str]) -> AsyncIterator[Tab]:
    """A headless Firefox ESR on a fresh profile, its WebDriver BiDi session and first tab."""
    binary = firefox_binary()
    if binary is None:
        raise RuntimeError(f"{FIREFOX} is not installed (the README's test command installs it)")
    write_prefs(profile, prefs)
    port = free_port()
    command = [
        binary,
        "--headless",
        "--no-remote",
        "--profile",
        str(profile),
        f"--remote-debugging-port={port}",
        "--remote-allow-hosts",
        "127.0.0.1",
        "about:blank",
    ]
    log = (profile.parent / f"{profile.name}.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *command, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    http = aiohttp.ClientSession()
    session: BiDiSession | None = None
    try:
        ws = await _connect(http, f"ws://127.0.0.1:{port}/session", process)
        session = BiDiSession(ws)
        await session.send(
            "session.new", {"capabilities": {"alwaysMatch": {"acceptInsecureCerts": True}}}
        )
        await session.send("session.subscribe", {"events": ["log.entryAdded"]})
        tree = await session.send("browsingContext.getTree", {"maxDepth": 0})
        contexts = tree.get("contexts", [])
        if contexts:
            context = contexts[0]["context"]
        else:
            context = (await session.send("browsingContext.create", {"type": "tab"}))["context"]
        yield Tab(session, context)
    finally:
        if session is not None:
            try:
                async with asyncio.timeout(5):
                    await session.send("session.end")
            except (BiDiError, TimeoutError, aiohttp.ClientError):
                pass
            await session.close()
        await http.close()
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()


async def _connect(
    http: aiohttp.ClientSession,
    url: str,
    process: asyncio.subprocess.Process,
    timeout: float = 30,
) -> aiohttp.ClientWebSocketResponse:
    """The remote agent's WebSocket, once Firefox has opened it."""
    async with asyncio.timeout(timeout):
        while True:
            if process.returncode is not None:
                raise RuntimeError(f"{FIREFOX} exited at start with {process.returncode}")
            try:
                return await http.ws_connect(url, max_msg_size=0)
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.2)
