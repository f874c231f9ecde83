"""An optional outside JSON service (what3words, LibreTranslate): one aiohttp session made on
first use, one deadline per request, and a failure that is an answer of None, logged once
until the service answers again. A slow or broken service never holds up a call."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from signalling.safejson import BadJson, parse_json

logger = logging.getLogger(__name__)


class Outage:
    """Log a service's failure once, and its recovery once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down = False

    def failed(self, why: str) -> None:
        if not self.down:
            self.down = True
            logger.warning("%s lookup failed (%s); further failures not logged", self.name, why)

    def answered(self) -> None:
        if self.down:
            self.down = False
            logger.info("%s lookups answer again", self.name)


def _error_of(body: object) -> str:
    """The service's own word for a refusal: what3words' ``{"error": {"code"}}``,
    LibreTranslate's ``{"error": "..."}``."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code", ""))
    return str(error) if isinstance(error, str) else ""


class JsonService:
    """Requests to one service; ``call`` answers the JSON of a 200 or None."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.outage = Outage(name)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def call(self, method: str, url: str, **kwargs: Any) -> Any:
        """The decoded answer, or None with the failure logged (once, see ``Outage``). The
        caller checks the answer's shape and then says ``outage.answered()``."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._session.request(method, url, **kwargs) as resp:
                text = await resp.text()
                try:
                    body: Any = parse_json(text)
                except BadJson:
                    body = None
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status} {_error_of(body)}".strip())
                if body is None:
                    raise ValueError("the answer is not JSON")
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError, ValueError) as exc:
            self.outage.failed(type(exc).__name__ + (f": {exc}" if str(exc) else ""))
            return None
        return body

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
