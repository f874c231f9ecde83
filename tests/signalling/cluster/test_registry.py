"""Registration, leases and placement against a real redis-server."""

from __future__ import annotations

import asyncio

from signalling.cluster.registry import LocalRegistry, RedisRegistry

LEASE_S = 0.4


def worker(url: str, name: str) -> RedisRegistry:
    return RedisRegistry(url, name, f"http://{name}.internal", LEASE_S)


async def test_workers_register_and_the_least_loaded_is_placed(cluster_redis: str) -> None:
    a, b = worker(cluster_redis, "a"), worker(cluster_redis, "b")
    await a.heartbeat()
    await b.heartbeat()
    assert [w.id for w in await a.workers()] == ["a", "b"]
    assert await a.claim("s1") and await a.claim("s2")  # its load is published at once
    placed = await b.place()
    assert placed is not None and (placed.id, placed.url) == ("b", "http://b.internal")
    b.accepting = False  # draining: never placed, however idle
    await b.heartbeat()
    placed = await a.place()
    assert placed is not None and placed.id == "a"
    await a.close()
    await b.close()


async def test_a_session_has_one_owner_until_its_lease_lapses(cluster_redis: str) -> None:
    a, b = worker(cluster_redis, "a"), worker(cluster_redis, "b")
    assert await a.claim("s")
    assert not await b.claim("s")
    assert await b.owner("s") == "a" and a.holds("s") and not b.holds("s")
    for _ in range(3):  # renewed: still a's after several leases
        await asyncio.sleep(LEASE_S / 2)
        await a.heartbeat()
    assert not await b.claim("s")
    await asyncio.sleep(LEASE_S * 1.5)  # a stops beating (dead): the lease lapses
    assert await b.owner("s") is None
    assert await b.claim("s")
    await a.heartbeat()  # a, back, finds it lost and stops touching it
    assert not a.holds("s") and await a.owner("s") == "b"
    await a.release("s")  # releasing what another holds changes nothing
    assert await b.owner("s") == "b"
    await b.release("s")
    assert await b.owner("s") is None
    await a.close()
    await b.close()


async def test_the_next_owner_hears_who_had_the_session_and_why(cluster_redis: str) -> None:
    a, b = worker(cluster_redis, "a"), worker(cluster_redis, "b")
    assert await b.previous("drained") is None
    assert await a.claim("drained") and await a.claim("lost")
    await a.release("drained", reason="drain")
    assert await b.previous("drained") == ("a", "drain")
    await asyncio.sleep(LEASE_S * 1.5)  # a dies holding "lost"
    assert await b.claim("lost")
    assert await b.previous("lost") == ("b", "failover")  # b's now
    await a.close()
    await b.close()


async def test_a_dead_worker_leaves_the_registry_after_its_lease(cluster_redis: str) -> None:
    a, b = worker(cluster_redis, "a"), worker(cluster_redis, "b")
    await a.heartbeat()
    await b.heartbeat()
    await asyncio.sleep(LEASE_S * 1.5)
    await b.heartbeat()
    assert [w.id for w in await b.workers()] == ["b"]
    await b.close()
    assert await a.workers() == []
    await a.close()


async def test_alone_every_session_is_ours() -> None:
    local = LocalRegistry("solo", "http://127.0.0.1:8080")
    assert not local.clustered and local.holds("any") and await local.claim("any")
    assert await local.owner("any") == "solo"
    placed = await local.place()
    assert placed is not None and placed.id == "solo"
