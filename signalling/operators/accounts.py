"""Individual operator accounts: argon2-hashed passwords, roles, disable rather than delete.

Kept in ``<data_dir>/accounts.json`` (written atomically, re-read when it changes so the
``scenelink users`` CLI takes effect on a running server). Accounts named in configuration
are added at start-up with their passwords hashed; they never reach the file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from signalling.calls.sessions import utcnow
from signalling.config import OperatorAccount, Role

_HASHER = PasswordHasher()
# Verified against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _HASHER.hash("unusable dummy password")


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password_hash: str
    roles: tuple[Role, ...]
    disabled: bool = False
    created_at: str = ""


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(account: Account | None, password: str) -> bool:
    try:
        return _HASHER.verify(account.password_hash if account else _DUMMY_HASH, password) and (
            account is not None and not account.disabled
        )
    except (VerificationError, InvalidHashError):
        return False


class AccountBook:
    def __init__(self, path: Path, configured: list[OperatorAccount] | None = None) -> None:
        self.path = path
        self._configured = {
            a.username: Account(
                a.username, hash_password(a.password.get_secret_value()), tuple(a.roles)
            )
            for a in configured or []
        }
        self._stamp: float | None = None
        self._stored: dict[str, Account] = {}

    def get(self, username: str) -> Account | None:
        self._reload_if_changed()
        return self._stored.get(username) or self._configured.get(username)

    def all(self) -> list[Account]:
        self._reload_if_changed()
        return sorted({**self._configured, **self._stored}.values(), key=lambda a: a.username)

    def add(self, username: str, password: str, roles: list[Role]) -> Account:
        if self.get(username) is not None:
            raise ValueError(f"account {username!r} exists already; accounts are never reused")
        account = Account(
            username, hash_password(password), tuple(roles), created_at=utcnow().isoformat()
        )
        self._write({**self._stored, username: account})
        return account

    def set_disabled(self, username: str, disabled: bool) -> Account:
        self._reload_if_changed()
        account = self._stored.get(username)
        if account is None:
            raise KeyError(username)
        changed = replace(account, disabled=disabled)
        self._write({**self._stored, username: changed})
        return changed

    def _reload_if_changed(self) -> None:
        try:
            stamp = self.path.stat().st_mtime
        except FileNotFoundError:
            self._stored, self._stamp = {}, None
            return
        if stamp != self._stamp:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            self._stored = {
                a["username"]: Account(**(a | {"roles": tuple(a["roles"])}))
                for a in raw["accounts"]
            }
            self._stamp = stamp

    def _write(self, accounts: dict[str, Account]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"accounts": [asdict(a) for a in accounts.values()]}
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".accounts-")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)
        self._stamp = None
        self._reload_if_changed()
