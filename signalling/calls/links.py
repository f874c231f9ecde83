"""A caller's SMS link: a short opaque id, kept only as its SHA-256.

The id is the link's whole credential: 128 bits from the operating system's random source,
22 URL-safe characters (``secrets.token_urlsafe(16)``), so the SMS stays one segment. The
state store keeps the id's hash with the session and link it opens, never the id itself: a
copy of the store (a Redis dump, a backup) opens no caller's camera. What a link may do
(its expiry, its replacement by a newer one, the session's end) is read from the session.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

LINK_ID_BYTES = 16
LINK_ID_LENGTH = 22  # base64url of 16 bytes, unpadded
_LINK_ID = re.compile(rf"[A-Za-z0-9_-]{{{LINK_ID_LENGTH}}}")


def new_link_id() -> str:
    return secrets.token_urlsafe(LINK_ID_BYTES)


def link_hash(link_id: str) -> str:
    """What the state store keys a link by (hex SHA-256 of the id)."""
    return hashlib.sha256(link_id.encode()).hexdigest()


def well_formed(link_id: str) -> bool:
    """Could this be a link id at all (checked before anything is looked up)?"""
    return _LINK_ID.fullmatch(link_id) is not None


@dataclass(frozen=True, slots=True)
class CallerLink:
    """What the state store keeps under a link's hash."""

    session_id: str
    token_id: str  # the link's name in the evidence and on the session: no credential

    def to_record(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "token_id": self.token_id}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> CallerLink:
        return cls(session_id=str(record["session_id"]), token_id=str(record["token_id"]))
