"""Sign-in throttling, shared by every node through the state store.

Each attempt is counted before its password is checked, so concurrent guesses cannot all
slip past the limit. An address is stopped first; an account only after failures from many
addresses, so one attacker guessing at a named account cannot lock its owner out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from signalling.calls.state import StateStore


class Throttled(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"throttled for {retry_after_s:.0f} s")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class Attempt:
    id: str
    account_key: str
    address_key: str


class LoginThrottle:
    def __init__(
        self, store: StateStore, per_address: int, per_account: int, window_s: float
    ) -> None:
        self._store = store
        self._per_address = per_address
        self._per_account = per_account
        self._window_s = window_s

    async def attempt(self, username: str, address: str | None) -> Attempt:
        """Count a sign-in attempt as a failure until it succeeds; raises Throttled instead
        when the address or the account has failed too often in the window."""
        attempt = Attempt(
            secrets.token_hex(8), f"login:account:{username}", f"login:address:{address}"
        )
        limits = {attempt.address_key: self._per_address, attempt.account_key: self._per_account}
        wait = await self._store.count_attempt(limits, attempt.id, self._window_s)
        if wait > 0:
            raise Throttled(wait)
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        """The right password: the account's failures are forgiven, not the address's."""
        await self._store.forget_attempt(attempt.account_key)
        await self._store.forget_attempt(attempt.address_key, attempt.id)
