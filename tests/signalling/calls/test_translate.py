"""The LibreTranslate adapter against a local HTTP server: request shape, key handling,
timeouts, failures (logged once), and no request at all when off or not needed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from signalling.calls.translate import Translator


@dataclass
class LibreTranslate:
    """A stand-in LibreTranslate server, recording the bodies it was sent."""

    bodies: list[dict[str, Any]] = field(default_factory=list)
    delay_s: float = 0.0
    status: int = 200
    answer: Any = None
    url: str = ""

    async def translate(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.json_response({"error": "Invalid API key"}, status=self.status)
        if self.answer is not None:
            return web.json_response(self.answer)
        return web.json_response({"translatedText": "I am hiding"})


@asynccontextmanager
async def libre_server() -> AsyncIterator[LibreTranslate]:
    service = LibreTranslate()
    app = web.Application()
    app.router.add_post("/translate", service.translate)
    server = TestServer(app)
    await server.start_server()
    service.url = str(server.make_url("")).rstrip("/")
    try:
        yield service
    finally:
        await server.close()


@pytest.fixture
async def libre() -> AsyncIterator[LibreTranslate]:
    async with libre_server() as service:
        yield service


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if "LibreTranslate" in r.getMessage() and r.levelname == "WARNING"
    ]


async def test_request_shape_with_a_key(libre: LibreTranslate) -> None:
    translator = Translator(libre.url + "/", "s3cret", timeout_s=2.0)
    try:
        translation = await translator.translate("Rwy'n cuddio", "cy", "en")
    finally:
        await translator.close()
    assert translation == {"language": "en", "text": "I am hiding"}
    assert libre.bodies == [
        {"q": "Rwy'n cuddio", "source": "cy", "target": "en", "format": "text", "api_key": "s3cret"}
    ]


async def test_without_a_key_none_is_sent(libre: LibreTranslate) -> None:
    translator = Translator(libre.url, None, timeout_s=2.0)
    try:
        assert await translator.translate("Help", "en", "cy") is not None
    finally:
        await translator.close()
    assert "api_key" not in libre.bodies[0]


async def test_off_or_same_language_asks_nothing(libre: LibreTranslate) -> None:
    off = Translator(None, None, timeout_s=2.0)
    assert not off.enabled
    assert await off.translate("Help", "en", "cy") is None
    on = Translator(libre.url, None, timeout_s=2.0)
    try:
        assert await on.translate("Help", "en", "en") is None
    finally:
        await on.close()
    assert libre.bodies == []


@pytest.mark.parametrize("trouble", ["slow", "refused", "down", "no text"])
async def test_failure_is_no_translation_logged_once(
    libre: LibreTranslate, caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    url = libre.url
    if trouble == "slow":
        libre.delay_s = 2.0
    elif trouble == "refused":
        libre.status = 403
    elif trouble == "no text":
        libre.answer = {"detectedLanguage": "cy"}
    else:
        url = "http://127.0.0.1:9"  # nothing listens on the discard port
    translator = Translator(url, "s3cret", timeout_s=0.3)
    try:
        started = time.monotonic()
        assert await translator.translate("Rwy'n cuddio", "cy", "en") is None
        assert time.monotonic() - started < 1.5
        assert await translator.translate("Help", "cy", "en") is None
    finally:
        await translator.close()
    logged = warnings(caplog)
    assert len(logged) == 1
    if trouble == "refused":
        assert "HTTP 403 Invalid API key" in logged[0].getMessage()


async def test_recovery_is_logged_and_failures_are_logged_again(
    libre: LibreTranslate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    translator = Translator(libre.url, None, timeout_s=1.0)
    try:
        libre.status = 500
        assert await translator.translate("a", "cy", "en") is None
        libre.status = 200
        assert await translator.translate("a", "cy", "en") is not None
        libre.status = 500
        assert await translator.translate("a", "cy", "en") is None
    finally:
        await translator.close()
    assert len(warnings(caplog)) == 2
    assert any("answer again" in r.getMessage() for r in caplog.records)
