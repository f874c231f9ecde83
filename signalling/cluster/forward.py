"""Pass a request on to the worker that owns its session, and its answer back, streamed.

Method, path, query, headers (Host and cookies included) and status are kept; bodies are
streamed both ways, never held whole (an upload's piece, a photo); nothing is decompressed
or followed (a redirect goes back to the browser as it is).
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web

from signalling.cluster import hop

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
CONNECT_TIMEOUT_S = 5.0
ASK_TIMEOUT_S = 10.0  # a worker's part of a cluster-wide answer
# Hop-by-hop headers (RFC 9110 7.6.1) stay with their own connection; hop headers are
# the forwarding worker's to set.
NOT_FORWARDED = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        *hop.HEADERS,
    )
)


class Unreachable(Exception):
    """The owner did not answer (it may be dying: its lease will tell)."""


class Forwarder:
    """One HTTP client for the worker's forwarded requests (a connection pool per owner)."""

    def __init__(self, secret: bytes, worker_id: str) -> None:
        self.secret = secret
        self.worker_id = worker_id
        self._http = aiohttp.ClientSession(
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S),
        )

    def _headers(self, request: web.Request) -> dict[str, str]:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
        headers.setdefault("X-Forwarded-Proto", request.scheme)
        remote = request.remote or ""
        return headers | hop.sign(
            self.secret, request.method, request.raw_path, self.worker_id, remote
        )

    async def ask(self, request: web.Request, base_url: str) -> Any:
        """The same GET answered by another worker (its own part of a cluster-wide answer,
        e.g. its audit trail): the JSON body of a 200; ``Unreachable`` otherwise."""
        try:
            async with self._http.get(
                base_url.rstrip("/") + request.raw_path,
                headers=self._headers(request),
                timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT_S),
                allow_redirects=False,
            ) as answer:
                if answer.status != 200:
                    raise Unreachable(f"{base_url}: {answer.status}")
                return await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unreachable(f"{base_url}: {exc}") from exc

    async def forward(self, request: web.Request, base_url: str) -> web.StreamResponse:
        headers = self._headers(request)
        body = request.content.iter_chunked(CHUNK) if request.body_exists else None
        response = web.StreamResponse()
        try:
            async with self._http.request(
                request.method,
                base_url.rstrip("/") + request.raw_path,
                headers=headers,
                data=body,
                allow_redirects=False,
            ) as answer:
                response.set_status(answer.status, answer.reason)
                for name, value in answer.headers.items():
                    if name.lower() not in NOT_FORWARDED:
                        response.headers.add(name, value)
                await response.prepare(request)
                async for chunk in answer.content.iter_chunked(CHUNK):
                    await response.write(chunk)
                await response.write_eof()
                return response
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            logger.warning("forward %s %s to %s: %s", request.method, request.path, base_url, exc)
            if response.prepared:
                raise  # half an answer has gone: the connection is cut
            raise Unreachable(base_url) from exc

    async def close(self) -> None:
        await self._http.close()
