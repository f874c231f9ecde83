"""The place in words: what3words and a reverse-geocoded address, each through an adapter
that is off unless configured and never holds up a fix.

what3words: their REST API (``GET /v3/convert-to-3wa``) with aiohttp, a key and a deadline.
Address: geopy's Nominatim client against a self-hosted server (``SCENELINK_GEOCODER_URL``),
run in a thread (geopy is synchronous), at most one request a second (Nominatim's usage
policy) and cached per rounded position. A service that is down or slow gives no answer; its
failure is logged once until it answers again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from urllib.parse import urlsplit

from geopy.adapters import URLLibAdapter
from geopy.exc import GeopyError
from geopy.geocoders import Nominatim
from typing_extensions import TypedDict

from signalling.calls.webservice import JsonService, Outage

CACHE_SIZE = 4096


class PlaceRecord(TypedDict):
    """The words for a fix's place, found after the fix (a ``location.jsonl`` line of its own
    and a feed message): ``received_at`` names the fix."""

    type: str  # "place"
    received_at: str
    w3w: str | None  # "filled.count.soap"
    address: str | None


class GeocodingFailed(Exception):
    """An address could not be looked up: no geocoder configured, or it did not answer."""


class _Cache:
    """Answers per rounded position (``places`` decimals of a degree), least recently used
    dropped first; None (no address there) is kept too."""

    def __init__(self, places: int, size: int = CACHE_SIZE) -> None:
        self.places = places
        self.size = size
        self._items: OrderedDict[tuple[float, float], str | None] = OrderedDict()

    def key(self, lat: float, lon: float) -> tuple[float, float]:
        return round(lat, self.places), round(lon, self.places)

    def get(self, key: tuple[float, float]) -> tuple[bool, str | None]:
        if key not in self._items:
            return False, None
        self._items.move_to_end(key)
        return True, self._items[key]

    def put(self, key: tuple[float, float], value: str | None) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class What3Words:
    """Three words for a position, when an API key is configured (else no request at all)."""

    def __init__(
        self, api_key: str | None, base_url: str, timeout_s: float, language: str = "en"
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.language = language
        self._cache = _Cache(places=5)  # about a metre: a what3words square is 3 m
        self._service = JsonService("what3words", timeout_s)

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    async def words(self, lat: float, lon: float) -> str | None:
        if not self.api_key:
            return None
        key = self._cache.key(lat, lon)
        found, cached = self._cache.get(key)
        if found:
            return cached
        params = {
            "coordinates": f"{key[0]:.5f},{key[1]:.5f}",
            "key": self.api_key,
            "language": self.language,
            "format": "json",
        }
        body = await self._service.call("GET", f"{self.base_url}/v3/convert-to-3wa", params=params)
        if body is None:
            return None
        words = body.get("words") if isinstance(body, dict) else None
        if not isinstance(words, str) or words.count(".") != 2:
            self._service.outage.failed("no words in the answer")
            return None
        self._service.outage.answered()
        self._cache.put(key, words)
        return words

    async def close(self) -> None:
        await self._service.close()


class ReverseGeocoder:
    """An address for a position from a Nominatim server (geopy), when one is configured."""

    def __init__(
        self,
        url: str | None,
        user_agent: str,
        timeout_s: float,
        min_interval_s: float = 1.0,
        places: int = 4,  # about 10 m: the same building
    ) -> None:
        self.min_interval_s = min_interval_s
        self._geocoder: Nominatim | None = None
        if url:
            parts = urlsplit(url)
            self._geocoder = Nominatim(
                scheme=parts.scheme or "https",
                domain=(parts.netloc + parts.path).rstrip("/"),
                user_agent=user_agent,
                timeout=timeout_s,
                adapter_factory=URLLibAdapter,  # no retries: the deadline is the deadline
            )
        self._cache = _Cache(places=places)
        self._outage = Outage("reverse geocoding")
        self._lock = asyncio.Lock()
        self._last_request = -float("inf")  # time.monotonic() of the last request sent

    @property
    def enabled(self) -> bool:
        return self._geocoder is not None

    async def address(self, lat: float, lon: float) -> str | None:
        geocoder = self._geocoder
        if geocoder is None:
            return None
        key = self._cache.key(lat, lon)
        found, cached = self._cache.get(key)
        if found:
            return cached
        async with self._lock:  # one request at a time, spaced by the policy's interval
            found, cached = self._cache.get(key)  # answered while this one waited
            if found:
                return cached
            await self._spaced()
            try:
                location = await asyncio.to_thread(
                    geocoder.reverse, key, exactly_one=True, zoom=18, addressdetails=False
                )
            except (GeopyError, OSError, ValueError) as exc:
                self._outage.failed(type(exc).__name__)
                return None
        self._outage.answered()
        address = getattr(location, "address", None)
        address = address if isinstance(address, str) and address else None
        self._cache.put(key, address)
        return address

    async def _spaced(self) -> None:
        """Wait (holding the lock) until the policy's interval since the last request."""
        wait = self._last_request + self.min_interval_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = time.monotonic()

    async def locate(self, query: str) -> tuple[float, float, str] | None:
        """Where an address is (a bail check's required place, typed by the handler): its
        position and the geocoder's wording, None when it knows no such place. Shares the
        rate limit; ``GeocodingFailed`` when none is configured or it does not answer."""
        geocoder = self._geocoder
        if geocoder is None:
            raise GeocodingFailed("no geocoder is configured (SCENELINK_GEOCODER_URL)")
        async with self._lock:
            await self._spaced()
            try:
                location = await asyncio.to_thread(geocoder.geocode, query, exactly_one=True)
            except (GeopyError, OSError, ValueError) as exc:
                raise GeocodingFailed(
                    f"the geocoder did not answer ({type(exc).__name__})"
                ) from None
        if location is None:
            return None
        return float(location.latitude), float(location.longitude), str(location.address)
