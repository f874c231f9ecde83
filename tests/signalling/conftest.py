from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis


@pytest.fixture
async def cluster_redis(redis_url: str) -> AsyncIterator[str]:
    """The tests' redis-server, on a database of the cluster tests' own, emptied first (a
    worker another test registered would take part in placement)."""
    url = redis_url.rsplit("/", 1)[0] + "/7"
    client = aioredis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url
