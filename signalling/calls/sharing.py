"""Sharing a live session with officers: by account, or by a time-limited officer link.

HTTP-free, like the session service. A share gives access until it expires, is withdrawn,
or its session ends; whichever node ends it, the ``share_ended`` event on the session's
feed cuts off the officer viewers on every node (``guard``).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta

from recorder.events import ShareCreated
from signalling.calls.feed import FeedEvent
from signalling.calls.service import SessionService
from signalling.calls.sessions import CallSession, utcnow
from signalling.calls.shares import Share, ShareKind
from signalling.calls.state import ShareNotFound
from signalling.calls.tokens import OfficerTokens, TokenError
from signalling.operators.accounts import AccountBook

logger = logging.getLogger(__name__)


class AccessRefused(Exception):
    """A share does not (or no longer) give access; the message says why, for the officer."""

    def __init__(self, reason: str, gone: bool = False) -> None:
        super().__init__(reason)
        self.gone = gone  # ended for good (410), rather than never granted (403)


class NotAnOfficer(ValueError):
    """Sessions are shared only with existing, enabled accounts holding the officer role."""


class AlreadyShared(ValueError):
    pass


ENDED = {
    "withdrawn": "access was withdrawn by the call handler",
    "expired": "this officer link has expired",
    "session ended": "the session has ended",
}


def ending(event: FeedEvent, share_id: str) -> str | None:
    """Why an event on the session's feed ends this share (words for the officer), or None."""
    if event["type"] == "share_ended" and event["share_id"] == share_id:
        return ENDED["withdrawn"]
    if event["type"] == "state" and event["session"]["state"] == "ended":
        return ENDED["session ended"]
    return None


def refusal(share: Share, session: CallSession, now: datetime) -> AccessRefused | None:
    """Why this share gives no access now, or None while it does."""
    reason = "session ended" if session.state == "ended" else share.ended_reason(now)
    return AccessRefused(ENDED[reason], gone=True) if reason else None


class ShareService:
    def __init__(
        self,
        sessions: SessionService,
        tokens: OfficerTokens,
        accounts: AccountBook,
    ) -> None:
        self.sessions = sessions
        self.store = sessions.store
        self.settings = sessions.settings
        self.tokens = tokens
        self.accounts = accounts
        self._guards: dict[str, asyncio.Task[None]] = {}

    # -- the call handler -------------------------------------------------------------

    async def share_with(self, session_id: str, username: str, by: str) -> Share:
        session = await self._open_session(session_id)
        account = self.accounts.get(username)
        if account is None or account.disabled or "officer" not in account.roles:
            raise NotAnOfficer(f"no enabled officer account named {username!r}")
        now = utcnow()
        for share in await self.store.recipient_shares(username):
            if share.session_id == session.id and share.ended_reason(now) is None:
                raise AlreadyShared(f"already shared with {username}")
        return await self._created(session, "account", username, by, None)

    async def create_link(
        self, session_id: str, label: str, by: str, lifetime_s: int | None = None
    ) -> tuple[Share, str]:
        """A link for an in-vehicle tablet; it lives no longer than its session can."""
        session = await self._open_session(session_id)
        now = utcnow()
        wanted = now + timedelta(seconds=lifetime_s or self.settings.officer_link_ttl_s)
        latest = session.created_at + timedelta(seconds=self.settings.session_max_s)
        share = await self._created(session, "link", label, by, min(wanted, latest))
        assert share.expires_at is not None
        token, _ = self.tokens.mint(
            session.id,
            now.timestamp(),
            token_id=share.id,
            lifetime_s=(share.expires_at - now).total_seconds(),
        )
        return share, token

    async def withdraw(self, session_id: str, share_id: str, by: str) -> Share:
        share = await self.share_of(session_id, share_id)
        if share.withdrawn_at is not None:
            return share
        share = replace(share, withdrawn_at=utcnow(), withdrawn_by=by)
        await self.store.save_share(share)
        await self.sessions.record_event(
            session_id,
            {
                "event": "share_withdrawn",
                "share_id": share.id,
                "kind": share.kind,
                "recipient": share.recipient,
                "by": by,
                "at": (share.withdrawn_at or utcnow()).isoformat(),
            },
        )
        await self.store.publish(
            session_id, {"type": "share_ended", "share_id": share.id, "reason": "withdrawn"}
        )
        closed = await self.sessions.close_viewers(session_id, share.id)
        logger.info(
            "session %s: share %s withdrawn by %s; %d viewer(s) cut off",
            session_id,
            share.id,
            by,
            closed,
        )
        return share

    async def share_of(self, session_id: str, share_id: str) -> Share:
        share = await self.store.get_share(share_id)
        if share.session_id != session_id:
            raise ShareNotFound(share_id)
        return share

    async def shares(self, session_id: str) -> list[Share]:
        return await self.store.session_shares(session_id)

    # -- officers ----------------------------------------------------------------------

    async def by_link(self, token: str) -> tuple[Share, CallSession]:
        """The share and session an officer link opens; AccessRefused says why not."""
        try:
            claims = self.tokens.verify(token)
        except TokenError as exc:
            logger.info("officer link refused: %s", exc)
            if str(exc) == "expired":
                raise AccessRefused(ENDED["expired"], gone=True) from None
            raise AccessRefused("this is not a valid officer link") from None
        try:
            share = await self.store.get_share(claims.token_id)
            session = await self.store.get(share.session_id)
        except KeyError:
            raise AccessRefused("this is not a valid officer link") from None
        if share.kind != "link" or share.session_id != claims.session_id:
            raise AccessRefused("this is not a valid officer link")
        return self._checked(share, session)

    async def for_officer(self, username: str, session: CallSession) -> Share:
        """The share through which this officer (an account) watches this session."""
        mine = [
            s for s in await self.store.recipient_shares(username) if s.session_id == session.id
        ]
        if not mine:
            raise AccessRefused("this session has not been shared with you")
        now = utcnow()
        current = [s for s in mine if s.ended_reason(now) is None]
        return self._checked(current[0] if current else mine[-1], session)[0]

    async def shared_sessions(self, username: str) -> set[str]:
        now = utcnow()
        return {
            s.session_id
            for s in await self.store.recipient_shares(username)
            if s.ended_reason(now) is None
        }

    def guard(self, share: Share) -> None:
        """Cut off this node's viewers under ``share`` as soon as it ends (once per share)."""
        if share.id in self._guards:
            return
        task = asyncio.ensure_future(self._guard(share))
        self._guards[share.id] = task
        task.add_done_callback(lambda _: self._guards.pop(share.id, None))

    async def follow(
        self,
        share: Share,
        events: AsyncIterator[FeedEvent],
        on_event: Callable[[FeedEvent], Awaitable[None]],
    ) -> str:
        """Hand on the session's events until this share ends; returns why it ended."""
        remaining = (share.expires_at - utcnow()).total_seconds() if share.expires_at else None
        try:
            async with asyncio.timeout(remaining):
                async for event in events:
                    await on_event(event)
                    if reason := ending(event, share.id):
                        return reason
        except TimeoutError:
            return ENDED["expired"]
        return "the session's feed closed"

    async def close(self) -> None:
        guards = list(self._guards.values())
        for task in guards:
            task.cancel()
        await asyncio.gather(*guards, return_exceptions=True)

    # -- inside ------------------------------------------------------------------------

    async def _guard(self, share: Share) -> None:
        async with self.store.subscribe(share.session_id) as events:
            # Subscribed first, then checked: an end in between is not missed.
            share = await self.store.get_share(share.id)
            if refusal(share, await self.store.get(share.session_id), utcnow()) is None:
                await self.follow(share, events, _ignore)
        if closed := await self.sessions.close_viewers(share.session_id, share.id):
            logger.info(
                "session %s: share %s ended; %d viewer(s) cut off",
                share.session_id,
                share.id,
                closed,
            )

    def _checked(self, share: Share, session: CallSession) -> tuple[Share, CallSession]:
        refused = refusal(share, session, utcnow())
        if refused is not None:
            raise refused
        return share, session

    async def _open_session(self, session_id: str) -> CallSession:
        session = await self.store.get(session_id)
        if session.state == "ended":
            raise AccessRefused("the session has ended", gone=True)
        return session

    async def _created(
        self,
        session: CallSession,
        kind: ShareKind,
        recipient: str,
        by: str,
        expires_at: datetime | None,
    ) -> Share:
        share = Share(
            id=secrets.token_hex(8),
            session_id=session.id,
            kind=kind,
            recipient=recipient,
            created_by=by,
            created_at=utcnow(),
            expires_at=expires_at,
        )
        await self.store.save_share(share)
        logger.info("session %s: shared (%s) by %s as %s", session.id, kind, by, share.id)
        event: ShareCreated = {
            "event": "share_created",
            "share_id": share.id,
            "kind": kind,
            "recipient": recipient,
            "by": by,
            "at": share.created_at.isoformat(),
            "expires_at": expires_at.isoformat() if expires_at else None,
        }
        await self.sessions.record_event(session.id, event)
        return share


async def _ignore(event: FeedEvent) -> None:
    return None
