"""Operators' sign-in: individual accounts from configuration, a signed session cookie.

Issue 5 replaces configured passwords with hashed accounts and SSO; the cookie and the
role check stay.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import jwt

from .config import OperatorAccount

CONSOLE_AUDIENCE = "scenelink:console"
COOKIE_NAME = "scenelink_session"


@dataclass(frozen=True, slots=True)
class Operator:
    username: str
    roles: tuple[str, ...]

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(roles.intersection(self.roles))


class OperatorDirectory:
    def __init__(self, accounts: list[OperatorAccount], secret: bytes, ttl_s: int) -> None:
        self._accounts = {a.username: a for a in accounts}
        self._secret = secret
        self._ttl_s = ttl_s

    def authenticate(self, username: str, password: str) -> Operator | None:
        account = self._accounts.get(username)
        expected = account.password.get_secret_value() if account else "\0unusable"
        matches = hmac.compare_digest(expected.encode(), password.encode())
        if account is None or not matches:
            return None
        return Operator(account.username, tuple(account.roles))

    def issue_cookie(self, operator: Operator) -> str:
        now = int(time.time())
        payload = {
            "aud": CONSOLE_AUDIENCE,
            "sub": operator.username,
            "iat": now,
            "exp": now + self._ttl_s,
        }
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def from_cookie(self, value: str) -> Operator | None:
        """The account is looked up again, so a removed account loses access at once."""
        try:
            payload = jwt.decode(
                value,
                self._secret,
                algorithms=["HS256"],
                audience=CONSOLE_AUDIENCE,
                options={"require": ["exp", "sub"]},
            )
        except jwt.InvalidTokenError:
            return None
        account = self._accounts.get(str(payload["sub"]))
        return Operator(account.username, tuple(account.roles)) if account else None
