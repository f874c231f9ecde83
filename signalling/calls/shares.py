"""A live session shared with an officer, as the state store keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from signalling.calls.records import Record

ShareKind = Literal["account", "link"]


@dataclass(frozen=True, slots=True)
class Share(Record):
    """An account share names the officer's username; a link share is held by whoever has
    the link (its token's id is the share's id, the token itself is never kept)."""

    id: str
    session_id: str
    kind: ShareKind
    recipient: str  # the officer's username, or the link's label
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None  # account shares last as long as the session
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None

    def ended_reason(self, now: datetime) -> str | None:
        """Why this share no longer gives access (its session aside), or None."""
        if self.withdrawn_at is not None:
            return "withdrawn"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return None
