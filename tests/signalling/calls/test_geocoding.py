"""The what3words and Nominatim adapters against local HTTP servers: request shape, keys,
timeouts, failures, cache and rate limit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from signalling.calls.geocoding import ReverseGeocoder, What3Words


@dataclass
class Service:
    """A stand-in what3words and Nominatim, recording what it was asked."""

    requests: list[web.Request] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    delay_s: float = 0.0
    status: int = 200
    url: str = ""

    async def w3w(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.json_response({"error": {"code": "InvalidKey"}}, status=self.status)
        return web.json_response({"words": "filled.count.soap", "language": "en"})

    async def reverse(self, request: web.Request) -> web.Response:
        self.requests.append(request)
        self.times.append(time.monotonic())
        await asyncio.sleep(self.delay_s)
        if self.status != 200:
            return web.Response(status=self.status, text="down")
        return web.json_response(
            {
                "lat": request.query["lat"],
                "lon": request.query["lon"],
                "display_name": "10 Downing Street, London, SW1A 2AA, United Kingdom",
            }
        )


@pytest.fixture
async def service() -> AsyncIterator[Service]:
    svc = Service()
    app = web.Application()
    app.router.add_get("/v3/convert-to-3wa", svc.w3w)
    app.router.add_get("/nominatim/reverse", svc.reverse)
    server = TestServer(app)
    await server.start_server()
    svc.url = str(server.make_url("")).rstrip("/")
    yield svc
    await server.close()


def failures(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if name in r.getMessage() and r.levelname == "WARNING"]


async def test_what3words_request_shape_and_cache(service: Service) -> None:
    w3w = What3Words("k3y", service.url, timeout_s=2.0)
    try:
        assert await w3w.words(51.5033635, -0.1276248) == "filled.count.soap"
        assert await w3w.words(51.5033636, -0.1276249) == "filled.count.soap"  # same metre
    finally:
        await w3w.close()
    assert len(service.requests) == 1
    query = service.requests[0].query
    assert query["key"] == "k3y"
    assert query["coordinates"] == "51.50336,-0.12762"


async def test_what3words_without_a_key_asks_nothing(service: Service) -> None:
    w3w = What3Words(None, service.url, timeout_s=2.0)
    assert not w3w.enabled
    assert await w3w.words(51.5, -0.12) is None
    await w3w.close()
    assert service.requests == []


@pytest.mark.parametrize("trouble", ["slow", "refused", "down"])
async def test_what3words_failure_is_no_words_logged_once(
    service: Service, caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    url = service.url
    if trouble == "slow":
        service.delay_s = 2.0
    elif trouble == "refused":
        service.status = 401
    else:
        url = "http://127.0.0.1:9"  # nothing listens on the discard port
    w3w = What3Words("k3y", url, timeout_s=0.3)
    try:
        started = time.monotonic()
        assert await w3w.words(51.5, -0.12) is None
        assert time.monotonic() - started < 1.5
        assert await w3w.words(51.6, -0.13) is None
    finally:
        await w3w.close()
    assert len(failures(caplog, "what3words")) == 1


async def test_nominatim_request_shape_cache_and_user_agent(service: Service) -> None:
    geocoder = ReverseGeocoder(f"{service.url}/nominatim", "SceneLink-test/1", timeout_s=2.0)
    assert await geocoder.address(51.50336, -0.12762) == (
        "10 Downing Street, London, SW1A 2AA, United Kingdom"
    )
    assert await geocoder.address(51.50337, -0.12763) is not None  # within the same ~10 m
    assert len(service.requests) == 1
    request = service.requests[0]
    assert request.headers["User-Agent"] == "SceneLink-test/1"
    assert (float(request.query["lat"]), float(request.query["lon"])) == (51.5034, -0.1276)
    assert request.query["format"] == "json"


async def test_nominatim_is_off_without_a_url(service: Service) -> None:
    geocoder = ReverseGeocoder(None, "SceneLink-test/1", timeout_s=2.0)
    assert not geocoder.enabled and await geocoder.address(51.5, -0.12) is None
    assert service.requests == []


async def test_nominatim_at_most_one_request_a_second(service: Service) -> None:
    geocoder = ReverseGeocoder(f"{service.url}/nominatim", "SceneLink-test/1", timeout_s=2.0)
    positions = [(51.50, -0.12), (51.51, -0.12), (51.52, -0.12)]
    answers = await asyncio.gather(*(geocoder.address(lat, lon) for lat, lon in positions))
    assert all(answers)
    gaps = [b - a for a, b in zip(service.times, service.times[1:], strict=False)]
    assert len(service.times) == 3 and min(gaps) >= 0.95


@pytest.mark.parametrize("trouble", ["slow", "down"])
async def test_nominatim_failure_is_no_address_logged_once(
    service: Service, caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    if trouble == "slow":
        service.delay_s = 2.0
    else:
        service.status = 503
    geocoder = ReverseGeocoder(
        f"{service.url}/nominatim", "SceneLink-test/1", timeout_s=0.3, min_interval_s=0.0
    )
    assert await geocoder.address(51.5, -0.12) is None
    assert await geocoder.address(51.6, -0.13) is None
    assert len(failures(caplog, "reverse geocoding")) == 1
    service.delay_s, service.status = 0.0, 200
    assert await geocoder.address(51.7, -0.14) is not None  # and it answers again
