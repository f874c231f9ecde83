"""Operators' sign-in: individual accounts, a signed, expiring session cookie."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from .accounts import AccountBook, check_password

CONSOLE_AUDIENCE = "scenelink:console"
COOKIE_NAME = "scenelink_session"


@dataclass(frozen=True, slots=True)
class Operator:
    username: str
    roles: tuple[str, ...]
    via: Literal["password", "oidc"] = "password"

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(roles.intersection(self.roles))


class OperatorDirectory:
    def __init__(self, accounts: AccountBook, secret: bytes, ttl_s: int) -> None:
        self.accounts = accounts
        self._secret = secret
        self._ttl_s = ttl_s

    def authenticate(self, username: str, password: str) -> Operator | None:
        """Blocking (argon2 is deliberately slow): call it off the event loop."""
        account = self.accounts.get(username)
        if account is None or not check_password(account, password):
            return None
        return Operator(account.username, account.roles)

    def issue_cookie(self, operator: Operator) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "aud": CONSOLE_AUDIENCE,
            "sub": operator.username,
            "iat": now,
            "exp": now + self._ttl_s,
        }
        if operator.via == "oidc":  # no local account: the provider's roles ride along
            payload |= {"via": "oidc", "roles": list(operator.roles)}
        return jwt.encode(payload, self._secret, algorithm="HS256")

    def from_cookie(self, value: str) -> Operator | None:
        """The account is looked up again, so a disabled account loses access at once."""
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
        if payload.get("via") == "oidc":
            return Operator(str(payload["sub"]), tuple(payload["roles"]), "oidc")
        account = self.accounts.get(str(payload["sub"]))
        if account is None or account.disabled:
            return None
        return Operator(account.username, account.roles)
