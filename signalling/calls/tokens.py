"""Officer link tokens: signed, bound to one session and share, expiring; only their id is
ever kept.

A caller's SMS link is no token of this kind but a short random id (``calls.links``), so the
SMS stays one segment.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

OFFICER_AUDIENCE = "scenelink:officer"
ISSUER = "scenelink"


class TokenError(Exception):
    """The token is forged, expired, malformed or for something else; the reason is loggable."""


@dataclass(frozen=True, slots=True)
class LinkClaims:
    session_id: str
    token_id: str
    expires_at: float


class LinkTokens:
    """Mints and checks one audience's link tokens (HS256 with a server-only key)."""

    algorithm = "HS256"
    audience = ""

    def __init__(self, secret: bytes, lifetime_s: int) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret
        self._lifetime_s = lifetime_s

    def mint(
        self,
        session_id: str,
        now: float | None = None,
        *,
        token_id: str | None = None,
        lifetime_s: float | None = None,
    ) -> tuple[str, LinkClaims]:
        issued = time.time() if now is None else now
        claims = LinkClaims(
            session_id=session_id,
            token_id=token_id or secrets.token_urlsafe(12),
            expires_at=issued + (self._lifetime_s if lifetime_s is None else lifetime_s),
        )
        payload = {
            "iss": ISSUER,
            "aud": self.audience,
            "sub": session_id,
            "jti": claims.token_id,
            "iat": int(issued),
            "exp": int(claims.expires_at),
        }
        return jwt.encode(payload, self._secret, algorithm=self.algorithm), claims

    def verify(self, token: str) -> LinkClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid: {exc}") from exc
        return LinkClaims(
            session_id=str(payload["sub"]),
            token_id=str(payload["jti"]),
            expires_at=float(payload["exp"]),
        )


class OfficerTokens(LinkTokens):
    """The token in an officer link; its id is the share's id, so withdrawing the share
    ends it."""

    audience = OFFICER_AUDIENCE
