"""``scenelink users``: create, disable, enable and list individual operator accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, get_args

from signalling.config import Role, load_settings
from signalling.operators.accounts import AccountBook


def _book() -> AccountBook:
    return AccountBook(load_settings().accounts_path)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise SystemExit("passwords differ; nothing changed")
    return first


def add(args: argparse.Namespace) -> int:
    password = _read_password(args)
    if len(password) < 12:
        print("refused: use a password of at least 12 characters", file=sys.stderr)
        return 2
    try:
        account = _book().add(args.username, password, args.role)
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    print(f"created {account.username} ({', '.join(account.roles)})")
    return 0


def set_disabled(args: argparse.Namespace) -> int:
    try:
        account = _book().set_disabled(args.username, args.disable)
    except KeyError:
        print(f"no stored account {args.username!r}", file=sys.stderr)
        return 2
    print(f"{account.username} {'disabled' if account.disabled else 'enabled'}")
    return 0


def list_accounts(args: argparse.Namespace) -> int:
    for account in _book().all():
        state = "disabled" if account.disabled else "active"
        print(f"{account.username}\t{','.join(account.roles)}\t{state}")
    return 0


def register(commands: Any) -> None:
    users = commands.add_parser("users", help="manage operator accounts")
    actions = users.add_subparsers(dest="action", required=True)
    add_cmd = actions.add_parser("add", help="create an account (individual, never shared)")
    add_cmd.add_argument("username")
    add_cmd.add_argument("--role", action="append", required=True, choices=get_args(Role))
    add_cmd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin"
    )
    add_cmd.set_defaults(run=add)
    for name, disable in (("disable", True), ("enable", False)):
        cmd = actions.add_parser(name, help=f"{name} an account")
        cmd.add_argument("username")
        cmd.set_defaults(run=set_disabled, disable=disable)
    actions.add_parser("list", help="list accounts and roles").set_defaults(run=list_accounts)
