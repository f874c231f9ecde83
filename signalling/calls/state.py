"""Where session state lives: in memory by default, in Redis when REDIS_URL is set.

Both stores keep the same things: session records, caller links (by hash), each session's
location trail and chat, shares with officers, a per-session event feed that consoles follow (Redis
pub/sub across processes), signed-out console cookies, and the sign-in throttle's attempt
counts.

The memory store, given a file (the data folder's ``state.json``), keeps its sessions, links,
trails, shares and revocations there too, so that a restart on embedded defaults leaves live
sessions resumable: the caller's link keeps working. Each change is written a moment later
(changes close together are written once), whole and atomically, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import redis.asyncio as aioredis

from recorder.durable import make_folder, write_atomic
from signalling.calls.chat import ChatRecord
from signalling.calls.feed import FeedEvent
from signalling.calls.geocoding import PlaceRecord
from signalling.calls.links import CallerLink
from signalling.calls.location import FixRecord
from signalling.calls.sessions import CallSession
from signalling.calls.shares import Share

logger = logging.getLogger(__name__)

SAVE_DELAY_S = 0.2  # changes within this long of each other are written to the file once
STATE_FORMAT = 1
LIVE_STATES = ("connecting", "live")  # a reloaded store has no connection: "reconnecting"
PLACE_SEARCH = 256  # a place arrives within seconds of its fix: this many fixes back at most


class SessionNotFound(KeyError):
    pass


class ShareNotFound(KeyError):
    pass


class StateStore(Protocol):
    async def create(self, session: CallSession) -> None: ...
    async def get(self, session_id: str) -> CallSession: ...
    async def update(self, session_id: str, **changes: Any) -> CallSession: ...
    async def recent(self, limit: int = 100) -> list[CallSession]: ...
    async def save_link(self, digest: str, link: CallerLink, until: float) -> bool:
        """Keep ``link`` under a link id's hash until ``until`` (epoch seconds); False,
        and nothing changed, when the hash is already taken (one session per id)."""
        ...

    async def find_link(self, digest: str) -> CallerLink | None: ...
    async def count_rejected_fix(self, session_id: str) -> None: ...
    async def add_fix(self, session_id: str, fix: FixRecord) -> None: ...
    async def add_place(self, session_id: str, place: PlaceRecord) -> None:
        """Merge a fix's words (what3words, address) into its trail record."""
        ...

    async def trail(self, session_id: str) -> list[FixRecord]: ...
    async def add_chat(self, session_id: str, message: ChatRecord) -> ChatRecord:
        """Keep a chat message, numbered (``seq``) in the order the store took it."""
        ...

    async def save_chat(self, session_id: str, message: ChatRecord) -> None:
        """Keep a message's new delivery or read state (or translation), by its ``seq``."""
        ...

    async def chat(self, session_id: str) -> list[ChatRecord]: ...
    async def trail_summary(self, session_id: str) -> tuple[int, FixRecord | None]: ...
    async def save_share(self, share: Share) -> None: ...
    async def get_share(self, share_id: str) -> Share: ...
    async def session_shares(self, session_id: str) -> list[Share]: ...
    async def recipient_shares(self, username: str) -> list[Share]: ...
    async def publish(self, session_id: str, event: FeedEvent) -> None: ...
    async def revoke(self, token_id: str, until: float) -> None: ...
    async def is_revoked(self, token_id: str) -> bool: ...
    async def count_attempt(self, limits: dict[str, int], attempt: str, window_s: float) -> float:
        """Count ``attempt`` under every key of ``limits`` unless one already holds its limit
        within the window: 0 when counted, else the seconds until it would be."""
        ...

    async def forget_attempt(self, key: str, attempt: str | None = None) -> None:
        """Uncount one attempt under ``key``, or every one (None)."""
        ...

    def subscribe(
        self, session_id: str
    ) -> AbstractAsyncContextManager[AsyncIterator[FeedEvent]]: ...
    async def ping(self) -> None:
        """Raise if the store cannot be reached now (``/readyz``)."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """The embedded default: one process, nothing to install.

    With a ``path`` it is kept in that file (``load`` reads it back at start-up).
    """

    def __init__(self, path: Path | None = None) -> None:
        self._sessions: dict[str, CallSession] = {}
        self._trails: dict[str, list[FixRecord]] = defaultdict(list)
        self._chats: dict[str, list[ChatRecord]] = defaultdict(list)
        self._shares: dict[str, Share] = {}
        self._subscribers: dict[str, set[asyncio.Queue[FeedEvent]]] = defaultdict(set)
        self._revoked: dict[str, float] = {}
        self._links: dict[str, tuple[CallerLink, float]] = {}
        self._attempts: dict[str, dict[str, float]] = defaultdict(dict)
        self.path = path
        self._saver: asyncio.Task[None] | None = None
        self._dirty = False
        self.saves = 0

    # -- the file ------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> MemoryStore:
        """The store kept in ``path`` (empty if there is none yet); blocking, so at start-up
        only. Sessions that were connecting or live have lost their connection with the
        process that held it: they are reconnecting until the caller's page offers again."""
        store = cls(path)
        if not path.exists():
            return store
        data = json.loads(path.read_bytes())
        now = time.time()
        for record in data.get("sessions", []):
            session = CallSession.from_record(record)
            if session.state in LIVE_STATES:
                session.state = "reconnecting"
            store._sessions[session.id] = session
        for session_id, trail in data.get("trails", {}).items():
            store._trails[session_id] = list(trail)
        for session_id, chat in data.get("chats", {}).items():
            store._chats[session_id] = list(chat)
        for record in data.get("shares", []):
            share = Share.from_record(record)
            store._shares[share.id] = share
        store._revoked = {t: u for t, u in data.get("revoked", {}).items() if u > now}
        store._links = {
            digest: (CallerLink.from_record(kept["link"]), kept["until"])
            for digest, kept in data.get("links", {}).items()
            if kept["until"] > now
        }
        return store

    def _snapshot(self) -> bytes:
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "sessions": [s.to_record() for s in self._sessions.values()],
                "trails": {k: v for k, v in self._trails.items() if v},
                "chats": {k: v for k, v in self._chats.items() if v},
                "shares": [s.to_record() for s in self._shares.values()],
                "revoked": self._revoked,
                "links": {
                    d: {"link": link.to_record(), "until": until}
                    for d, (link, until) in self._links.items()
                },
            },
            separators=(",", ":"),
        ).encode()

    def _changed(self) -> None:
        """Write the file soon (a change made now is in the next write)."""
        if self.path is None:
            return
        self._dirty = True
        if self._saver is None or self._saver.done():
            self._saver = asyncio.ensure_future(self._save_soon())

    async def _save_soon(self) -> None:
        while self._dirty:
            await asyncio.sleep(SAVE_DELAY_S)
            await self._save()

    async def _save(self) -> None:
        if self.path is None or not self._dirty:
            return
        self._dirty = False
        data = self._snapshot()  # on the loop: a consistent copy
        try:
            await asyncio.to_thread(_write_state, self.path, data)
            self.saves += 1
        except OSError:
            self._dirty = True  # tried again with the next change, and at close
            logger.exception("state store: cannot write %s", self.path)

    async def flush(self) -> None:
        """Write any change not yet in the file now."""
        saver = self._saver
        if saver is not None and not saver.done():
            saver.cancel()
            try:
                await saver
            except asyncio.CancelledError:
                pass
        await self._save()

    # -- the store -----------------------------------------------------------------------

    async def create(self, session: CallSession) -> None:
        self._sessions[session.id] = session
        self._changed()

    async def get(self, session_id: str) -> CallSession:
        try:
            return CallSession.from_record(self._sessions[session_id].to_record())
        except KeyError:
            raise SessionNotFound(session_id) from None

    async def update(self, session_id: str, **changes: Any) -> CallSession:
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        for key, value in changes.items():
            setattr(session, key, value)
        self._changed()
        return await self.get(session_id)

    async def recent(self, limit: int = 100) -> list[CallSession]:
        newest = sorted(self._sessions.values(), key=lambda s: s.created_at, reverse=True)
        return [await self.get(s.id) for s in newest[:limit]]

    async def save_link(self, digest: str, link: CallerLink, until: float) -> bool:
        now = time.time()
        self._links = {d: kept for d, kept in self._links.items() if kept[1] > now}
        if digest in self._links:
            return False
        self._links[digest] = (link, until)
        self._changed()
        return True

    async def find_link(self, digest: str) -> CallerLink | None:
        link, until = self._links.get(digest, (None, 0.0))
        return link if until > time.time() else None

    async def count_rejected_fix(self, session_id: str) -> None:
        session = self._sessions[session_id]
        session.rejected_fixes += 1
        self._changed()

    async def add_fix(self, session_id: str, fix: FixRecord) -> None:
        self._trails[session_id].append(fix)
        self._changed()

    async def add_place(self, session_id: str, place: PlaceRecord) -> None:
        for fix in reversed(self._trails.get(session_id, [])):
            if fix["received_at"] == place["received_at"]:
                fix["w3w"], fix["address"] = place["w3w"], place["address"]
                self._changed()
                return

    async def trail(self, session_id: str) -> list[FixRecord]:
        return list(self._trails.get(session_id, []))

    async def add_chat(self, session_id: str, message: ChatRecord) -> ChatRecord:
        chat = self._chats[session_id]
        kept: ChatRecord = {**message, "seq": len(chat)}
        chat.append(kept)
        self._changed()
        return dict(kept)  # type: ignore[return-value]  # a copy, as Redis gives

    async def save_chat(self, session_id: str, message: ChatRecord) -> None:
        self._chats[session_id][message["seq"]] = {**message}
        self._changed()

    async def chat(self, session_id: str) -> list[ChatRecord]:
        return [{**m} for m in self._chats.get(session_id, [])]

    async def trail_summary(self, session_id: str) -> tuple[int, FixRecord | None]:
        trail = self._trails.get(session_id, [])
        return len(trail), (trail[-1] if trail else None)

    async def save_share(self, share: Share) -> None:
        self._shares[share.id] = share
        self._changed()

    async def get_share(self, share_id: str) -> Share:
        try:
            return self._shares[share_id]
        except KeyError:
            raise ShareNotFound(share_id) from None

    async def session_shares(self, session_id: str) -> list[Share]:
        return self._oldest_first(s for s in self._shares.values() if s.session_id == session_id)

    async def recipient_shares(self, username: str) -> list[Share]:
        return self._oldest_first(
            s for s in self._shares.values() if s.kind == "account" and s.recipient == username
        )

    @staticmethod
    def _oldest_first(shares: Iterable[Share]) -> list[Share]:
        return sorted(shares, key=lambda s: s.created_at)

    async def publish(self, session_id: str, event: FeedEvent) -> None:
        for queue in self._subscribers.get(session_id, ()):
            queue.put_nowait(event)

    async def revoke(self, token_id: str, until: float) -> None:
        now = time.time()
        self._revoked = {t: u for t, u in self._revoked.items() if u > now} | {token_id: until}
        self._changed()

    async def is_revoked(self, token_id: str) -> bool:
        return self._revoked.get(token_id, 0.0) > time.time()

    async def count_attempt(self, limits: dict[str, int], attempt: str, window_s: float) -> float:
        now = time.monotonic()
        wait = 0.0
        for key, limit in limits.items():
            kept = {a: t for a, t in self._attempts[key].items() if t > now - window_s}
            self._attempts[key] = kept
            if len(kept) >= limit:
                oldest = sorted(kept.values())[len(kept) - limit]
                wait = max(wait, oldest + window_s - now)
        if wait == 0:
            for key in limits:
                self._attempts[key][attempt] = now
        return wait

    async def forget_attempt(self, key: str, attempt: str | None = None) -> None:
        if attempt is None:
            self._attempts.pop(key, None)
        else:
            self._attempts.get(key, {}).pop(attempt, None)

    @asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[AsyncIterator[FeedEvent]]:
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue(maxsize=1000)
        self._subscribers[session_id].add(queue)

        async def events() -> AsyncIterator[FeedEvent]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._subscribers[session_id].discard(queue)

    async def ping(self) -> None:
        """In this process: always reachable."""

    async def close(self) -> None:
        await self.flush()


# One script, so that nodes counting sign-in attempts at once never both take the last place.
# KEYS: the windows; ARGV: the window (ms), the attempt, then each key's limit. Redis's clock.
_COUNT_ATTEMPT = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local window = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local limit = tonumber(ARGV[i + 2])
  local count = redis.call('ZCARD', key)
  if count >= limit then
    local oldest = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
if wait == 0 then
  for _, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, window)
  end
end
return wait
"""


class RedisStore:
    """Shared state for several processes or nodes (issue: scale, DESIGN.md section 9)."""

    prefix = "scenelink:"

    def __init__(self, url: str) -> None:
        # redis-py types replies as bytes | str whatever decode_responses says.
        self._redis: Any = aioredis.from_url(url, decode_responses=True)
        self._count_attempt = self._redis.register_script(_COUNT_ATTEMPT)

    def _key(self, kind: str, session_id: str) -> str:
        return f"{self.prefix}{kind}:{session_id}"

    async def create(self, session: CallSession) -> None:
        record = {k: json.dumps(v) for k, v in session.to_record().items()}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key("session", session.id), mapping=record)
            pipe.zadd(self.prefix + "sessions", {session.id: session.created_at.timestamp()})
            await pipe.execute()

    async def get(self, session_id: str) -> CallSession:
        raw = await self._redis.hgetall(self._key("session", session_id))
        if not raw:
            raise SessionNotFound(session_id)
        return CallSession.from_record({k: json.loads(v) for k, v in raw.items()})

    async def update(self, session_id: str, **changes: Any) -> CallSession:
        key = self._key("session", session_id)
        if not await self._redis.exists(key):
            raise SessionNotFound(session_id)
        encoded = CallSession.from_record(
            {**(await self.get(session_id)).to_record(), **changes}
        ).to_record()
        # Only the changed fields are written, so concurrent updates of different fields
        # from several processes do not overwrite each other.
        await self._redis.hset(key, mapping={k: json.dumps(encoded[k]) for k in changes})
        return await self.get(session_id)

    async def recent(self, limit: int = 100) -> list[CallSession]:
        ids = await self._redis.zrevrange(self.prefix + "sessions", 0, limit - 1)
        return [await self.get(session_id) for session_id in ids]

    async def save_link(self, digest: str, link: CallerLink, until: float) -> bool:
        record = json.dumps(link.to_record())
        saved = await self._redis.set(
            self._key("link", digest), record, pxat=int(until * 1000), nx=True
        )
        return bool(saved)

    async def find_link(self, digest: str) -> CallerLink | None:
        raw = await self._redis.get(self._key("link", digest))
        return None if raw is None else CallerLink.from_record(json.loads(raw))

    async def count_rejected_fix(self, session_id: str) -> None:
        # The field holds JSON, and a JSON integer is what HINCRBY increments atomically.
        await self._redis.hincrby(self._key("session", session_id), "rejected_fixes", 1)

    async def add_fix(self, session_id: str, fix: FixRecord) -> None:
        await self._redis.rpush(self._key("trail", session_id), json.dumps(fix))

    async def add_place(self, session_id: str, place: PlaceRecord) -> None:
        # The trail is only ever appended to, so an index found here stays the fix's.
        key = self._key("trail", session_id)
        count = await self._redis.llen(key)
        start = max(0, count - PLACE_SEARCH)
        recent = await self._redis.lrange(key, start, count - 1)
        for offset in range(len(recent) - 1, -1, -1):
            fix = json.loads(recent[offset])
            if fix.get("received_at") == place["received_at"]:
                fix["w3w"], fix["address"] = place["w3w"], place["address"]
                await self._redis.lset(key, start + offset, json.dumps(fix))
                return

    async def trail(self, session_id: str) -> list[FixRecord]:
        return [
            json.loads(x) for x in await self._redis.lrange(self._key("trail", session_id), 0, -1)
        ]

    async def add_chat(self, session_id: str, message: ChatRecord) -> ChatRecord:
        # A hash by number: nodes adding at once each take the next number and their place.
        seq = int(await self._redis.incr(self._key("chat_seq", session_id))) - 1
        kept: ChatRecord = {**message, "seq": seq}
        await self._redis.hset(self._key("chat", session_id), str(seq), json.dumps(kept))
        return kept

    async def save_chat(self, session_id: str, message: ChatRecord) -> None:
        key = self._key("chat", session_id)
        await self._redis.hset(key, str(message["seq"]), json.dumps(message))

    async def chat(self, session_id: str) -> list[ChatRecord]:
        kept = await self._redis.hvals(self._key("chat", session_id))
        return sorted((json.loads(x) for x in kept), key=lambda m: m["seq"])

    async def trail_summary(self, session_id: str) -> tuple[int, FixRecord | None]:
        key = self._key("trail", session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.llen(key)
            pipe.lindex(key, -1)
            count, last = await pipe.execute()
        return int(count), (json.loads(last) if last else None)

    async def save_share(self, share: Share) -> None:
        created = {share.id: share.created_at.timestamp()}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("share", share.id), json.dumps(share.to_record()))
            pipe.zadd(self._key("session_shares", share.session_id), created)
            if share.kind == "account":
                pipe.zadd(self._key("recipient_shares", share.recipient), created)
            await pipe.execute()

    async def get_share(self, share_id: str) -> Share:
        raw = await self._redis.get(self._key("share", share_id))
        if raw is None:
            raise ShareNotFound(share_id)
        return Share.from_record(json.loads(raw))

    async def session_shares(self, session_id: str) -> list[Share]:
        return await self._shares_listed(self._key("session_shares", session_id))

    async def recipient_shares(self, username: str) -> list[Share]:
        return await self._shares_listed(self._key("recipient_shares", username))

    async def _shares_listed(self, key: str) -> list[Share]:
        """The shares an index names, oldest first."""
        ids = await self._redis.zrange(key, 0, -1)
        if not ids:
            return []
        raws = await self._redis.mget([self._key("share", i) for i in ids])
        return [Share.from_record(json.loads(r)) for r in raws if r is not None]

    async def publish(self, session_id: str, event: FeedEvent) -> None:
        await self._redis.publish(self._key("events", session_id), json.dumps(event))

    async def revoke(self, token_id: str, until: float) -> None:
        await self._redis.set(self._key("revoked", token_id), "1", pxat=int(until * 1000))

    async def is_revoked(self, token_id: str) -> bool:
        return bool(await self._redis.exists(self._key("revoked", token_id)))

    async def count_attempt(self, limits: dict[str, int], attempt: str, window_s: float) -> float:
        keys = [self._key("attempts", key) for key in limits]
        wait_ms = await self._count_attempt(
            keys=keys, args=[int(window_s * 1000), attempt, *limits.values()]
        )
        return int(wait_ms) / 1000

    async def forget_attempt(self, key: str, attempt: str | None = None) -> None:
        if attempt is None:
            await self._redis.delete(self._key("attempts", key))
        else:
            await self._redis.zrem(self._key("attempts", key), attempt)

    @asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[AsyncIterator[FeedEvent]]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._key("events", session_id))

        async def events() -> AsyncIterator[FeedEvent]:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    yield json.loads(message["data"])

        try:
            yield events()
        finally:
            await pubsub.unsubscribe()
            await pubsub.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()


def _write_state(path: Path, data: bytes) -> None:
    make_folder(path.parent)
    write_atomic(path, data)


def open_state_store(redis_url: str | None, state_file: Path | None = None) -> StateStore:
    """Redis when a URL is given; else the memory store, kept in ``state_file`` if given
    (blocking: it is read here)."""
    if redis_url:
        return RedisStore(redis_url)
    return MemoryStore.load(state_file) if state_file is not None else MemoryStore()
