"""Caller link tokens: signed, bound to one session, expiring; only their id is ever kept."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

CALLER_AUDIENCE = "scenelink:caller"
ISSUER = "scenelink"


class TokenError(Exception):
    """The token is forged, expired, malformed or for something else; the reason is loggable."""


@dataclass(frozen=True, slots=True)
class CallerClaims:
    session_id: str
    token_id: str
    expires_at: float


class CallerTokens:
    """Mints and checks the token in a caller's SMS link (HS256 with a server-only key)."""

    algorithm = "HS256"

    def __init__(self, secret: bytes, lifetime_s: int) -> None:
        if len(secret) < 32:
            raise ValueError("the token secret must be at least 32 bytes")
        self._secret = secret
        self._lifetime_s = lifetime_s

    def mint(self, session_id: str, now: float | None = None) -> tuple[str, CallerClaims]:
        issued = time.time() if now is None else now
        claims = CallerClaims(
            session_id=session_id,
            token_id=secrets.token_urlsafe(12),
            expires_at=issued + self._lifetime_s,
        )
        payload = {
            "iss": ISSUER,
            "aud": CALLER_AUDIENCE,
            "sub": session_id,
            "jti": claims.token_id,
            "iat": int(issued),
            "exp": int(claims.expires_at),
        }
        return jwt.encode(payload, self._secret, algorithm=self.algorithm), claims

    def verify(self, token: str) -> CallerClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                audience=CALLER_AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "jti", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("expired") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid: {exc}") from exc
        return CallerClaims(
            session_id=str(payload["sub"]),
            token_id=str(payload["jti"]),
            expires_at=float(payload["exp"]),
        )
