"""A live session shared with an officer, as the state store keeps it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from typing_extensions import TypedDict  # pydantic documents it (Python < 3.12)

from signalling.calls.records import Record

ShareKind = Literal["account", "link"]


class ShareJson(TypedDict):
    """A share as the JSON API shows it."""

    id: str
    session_id: str
    kind: ShareKind
    recipient: str
    created_by: str
    created_at: str
    expires_at: str | None
    withdrawn_at: str | None
    withdrawn_by: str | None
    active: bool


class CreatedShareJson(ShareJson):
    link: str | None  # the officer link, shown once and never kept


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

    def view(self, now: datetime) -> ShareJson:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "kind": self.kind,
            "recipient": self.recipient,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "withdrawn_at": self.withdrawn_at.isoformat() if self.withdrawn_at else None,
            "withdrawn_by": self.withdrawn_by,
            "active": self.ended_reason(now) is None,
        }
