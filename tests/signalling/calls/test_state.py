"""The same behaviour from the embedded store and from a real redis-server."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from signalling.calls.location import FixRecord
from signalling.calls.sessions import CallSession, utcnow
from signalling.calls.shares import Share
from signalling.calls.state import (
    MemoryStore,
    RedisStore,
    SessionNotFound,
    ShareNotFound,
    StateStore,
)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        made: StateStore = MemoryStore()
    else:
        made = RedisStore(request.getfixturevalue("redis_url"))
    yield made
    await made.close()


def fix(lat: float) -> FixRecord:
    at = "2024-05-01T12:00:00+00:00"
    return {
        "lat": lat,
        "lon": 0.0,
        "accuracy": 5.0,
        "altitude": None,
        "altitude_accuracy": None,
        "heading": None,
        "speed": None,
        "device_time": at,
        "received_at": at,
    }


def new_session(session_id: str, minutes_ago: int = 0) -> CallSession:
    created = utcnow() - timedelta(minutes=minutes_ago)
    return CallSession(
        id=session_id,
        incident_ref="CAD-1",
        phone="+447700900123",
        mode="video",
        state="link_sent",
        created_at=created,
        created_by="alice",
        token_id="t-" + session_id,
        link_expires_at=created + timedelta(minutes=30),
    )


async def test_create_get_update_list(store: StateStore) -> None:
    suffix = str(id(store))
    await store.create(new_session("old" + suffix, minutes_ago=5))
    await store.create(new_session("new" + suffix))
    updated = await store.update("new" + suffix, state="live", codec="VP8")
    assert (updated.state, updated.codec, updated.incident_ref) == ("live", "VP8", "CAD-1")
    assert (await store.get("new" + suffix)).created_at == updated.created_at
    ids = [s.id for s in await store.recent()]
    assert ids.index("new" + suffix) < ids.index("old" + suffix)


async def test_unknown_session(store: StateStore) -> None:
    with pytest.raises(SessionNotFound):
        await store.get("nope")
    with pytest.raises(SessionNotFound):
        await store.update("nope", state="ended")


async def test_trail_and_rejected_count(store: StateStore) -> None:
    sid = "trail" + str(id(store))
    await store.create(new_session(sid))
    assert await store.trail_summary(sid) == (0, None)
    for lat in (51.0, 51.1, 51.2):
        await store.add_fix(sid, fix(lat))
    await store.count_rejected_fix(sid)
    await store.count_rejected_fix(sid)
    assert [f["lat"] for f in await store.trail(sid)] == [51.0, 51.1, 51.2]
    assert await store.trail_summary(sid) == (3, fix(51.2))
    assert (await store.get(sid)).rejected_fixes == 2


async def test_shares_by_session_and_recipient(store: StateStore) -> None:
    suffix = str(id(store))
    now = utcnow()

    def share(n: int, session: str, kind: str, recipient: str) -> Share:
        return Share(
            id=f"sh{n}-{suffix}",
            session_id=session + suffix,
            kind=kind,  # type: ignore[arg-type]
            recipient=recipient + suffix,
            created_by="alice",
            created_at=now + timedelta(seconds=n),
            expires_at=now + timedelta(hours=1) if kind == "link" else None,
        )

    first, link, other = (
        share(1, "a", "account", "bob"),
        share(2, "a", "link", "Car 12"),
        share(3, "b", "account", "bob"),
    )
    for made in (other, link, first):
        await store.save_share(made)
    assert await store.get_share(link.id) == link
    assert [s.id for s in await store.session_shares("a" + suffix)] == [first.id, link.id]
    assert [s.id for s in await store.recipient_shares("bob" + suffix)] == [first.id, other.id]
    assert await store.recipient_shares("Car 12" + suffix) == []  # links have no account

    withdrawn = replace(first, withdrawn_at=now, withdrawn_by="alice")
    await store.save_share(withdrawn)
    assert await store.session_shares("a" + suffix) == [withdrawn, link]
    assert await store.recipient_shares("bob" + suffix) == [withdrawn, other]
    with pytest.raises(ShareNotFound):
        await store.get_share("nope")


async def test_events_reach_subscribers(store: StateStore) -> None:
    sid = "events" + str(id(store))
    async with store.subscribe(sid) as events:
        await asyncio.sleep(0.05)  # let a Redis subscription settle
        await store.publish(sid, {"type": "fix", "fix": fix(51.0)})
        await store.publish("other", {"type": "fix", "fix": fix(52.0)})
        await store.publish(sid, {"type": "share_ended", "share_id": "s2", "reason": "withdrawn"})
        got = [await asyncio.wait_for(anext(events), 2) for _ in range(2)]
    assert got == [
        {"type": "fix", "fix": fix(51.0)},
        {"type": "share_ended", "share_id": "s2", "reason": "withdrawn"},
    ]


async def test_attempts_fill_their_windows_and_are_forgotten(store: StateStore) -> None:
    a, b = "a" + secrets.token_hex(6), "b" + secrets.token_hex(6)
    both = {a: 2, b: 3}
    assert [await store.count_attempt(both, f"t{i}", 60) for i in range(2)] == [0, 0]
    assert 59 < await store.count_attempt(both, "t2", 60) <= 60  # a is full
    assert await store.count_attempt({b: 3}, "t3", 60) == 0  # the refused one was not counted
    assert await store.count_attempt({b: 3}, "t4", 60) > 0
    await store.forget_attempt(a, "t0")
    assert await store.count_attempt({a: 2}, "t5", 60) == 0
    await store.forget_attempt(b)
    assert await store.count_attempt({b: 1}, "t6", 60) == 0


async def test_revoked_until_their_expiry(store: StateStore) -> None:
    token_id = secrets.token_hex(8)
    assert not await store.is_revoked(token_id)
    await store.revoke(token_id, time.time() + 60)
    await store.revoke("old" + token_id, time.time() - 1)
    assert await store.is_revoked(token_id)
    assert not await store.is_revoked("old" + token_id)
