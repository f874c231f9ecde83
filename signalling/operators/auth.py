"""Operators' sign-in: individual accounts, a signed, expiring session cookie that signing
out revokes (in the state store, so on every node)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast

import jwt

from signalling.calls.state import StateStore
from signalling.operators.accounts import AccountBook, check_password

CONSOLE_AUDIENCE = "scenelink:console"
COOKIE_NAME = "scenelink_session"


class CookieClaims(TypedDict):
    """The console cookie's JWT claims (HS256, the server's secret)."""

    aud: str
    sub: str  # the username
    iat: int
    exp: int
    jti: str  # what signing out revokes
    via: NotRequired[Literal["oidc"]]  # no local account: the provider's roles ride along
    roles: NotRequired[list[str]]


@dataclass(frozen=True, slots=True)
class Operator:
    username: str
    roles: tuple[str, ...]
    via: Literal["password", "oidc"] = "password"

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(roles.intersection(self.roles))


class OperatorDirectory:
    def __init__(self, accounts: AccountBook, secret: bytes, ttl_s: int, store: StateStore) -> None:
        self.accounts = accounts
        self._secret = secret
        self._ttl_s = ttl_s
        self._store = store

    def authenticate(self, username: str, password: str) -> Operator | None:
        """Blocking (argon2 is deliberately slow): call it off the event loop. An unknown or
        disabled account costs the same hashing, so timing does not tell which names exist."""
        account = self.accounts.get(username)
        if not check_password(account, password) or account is None:
            return None
        return Operator(account.username, account.roles)

    def issue_cookie(self, operator: Operator) -> str:
        now = int(time.time())
        payload: CookieClaims = {
            "aud": CONSOLE_AUDIENCE,
            "sub": operator.username,
            "iat": now,
            "exp": now + self._ttl_s,
            "jti": secrets.token_urlsafe(16),
        }
        if operator.via == "oidc":
            payload |= {"via": "oidc", "roles": list(operator.roles)}
        return jwt.encode(cast(dict[str, Any], payload), self._secret, algorithm="HS256")

    async def from_cookie(self, value: str) -> Operator | None:
        """The account is looked up again, so a disabled account loses access at once."""
        payload = self._claims(value)
        if payload is None or await self._store.is_revoked(str(payload["jti"])):
            return None
        if payload.get("via") == "oidc":
            return Operator(str(payload["sub"]), tuple(payload["roles"]), "oidc")
        account = self.accounts.get(str(payload["sub"]))
        if account is None or account.disabled:
            return None
        return Operator(account.username, account.roles)

    async def revoke_cookie(self, value: str) -> None:
        """Signing out: the cookie stops working everywhere, though a copy of it may live on."""
        payload = self._claims(value)
        if payload is not None:
            await self._store.revoke(str(payload["jti"]), float(payload["exp"]))

    def _claims(self, value: str) -> CookieClaims | None:
        """The claims of a cookie this server signed and that has not expired, or None."""
        try:
            # Signed by this server, so shaped as it wrote it.
            payload = cast(
                CookieClaims,
                jwt.decode(
                    value,
                    self._secret,
                    algorithms=["HS256"],
                    audience=CONSOLE_AUDIENCE,
                    options={"require": ["exp", "sub", "jti"]},
                ),
            )
        except jwt.InvalidTokenError:
            return None
        return payload
