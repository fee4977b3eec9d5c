"""The account commands: users add/passwd/disable/enable/list, keys create/list/revoke."""

from __future__ import annotations

import argparse
import getpass
import sys
import time

from appliance.accounts.service import Accounts
from appliance.cli.output import table
from appliance.config import Settings
from appliance.store.audit import AuditLog
from appliance.store.conversations import ConversationStore
from appliance.store.db import Database
from appliance.store.users import ApiKey, UserStore


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser(
        "users", help="manage accounts: add, passwd, disable, enable, list, groups, erase"
    )
    u = users.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = u.add_parser(
        "add",
        help="create a user (asks for the password; or reads it from "
        "standard input when that is not a terminal)",
    )
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="an admin (documents, users, audit)")
    u.add_parser(
        "passwd", help="set a user's password (ends their sessions and revokes their API keys)"
    ).add_argument("name")
    u.add_parser("disable", help="stop a user from signing in").add_argument("name")
    u.add_parser("enable", help="let a disabled user sign in again").add_argument("name")
    u.add_parser("list", help="list the users, with their source (local, ldap, oidc) and groups")
    groups = u.add_parser(
        "groups",
        help="show a user's groups; --add puts them in a local group (made when new), "
        "--remove takes them out (a directory's group comes back at its next sync)",
    )
    groups.add_argument("name")
    groups.add_argument("--add", action="append", default=[], metavar="GROUP",
                        help="a group to put the user in (may be repeated)")  # fmt: skip
    groups.add_argument("--remove", action="append", default=[], metavar="GROUP",
                        help="a group to take the user out of (may be repeated)")  # fmt: skip
    u.add_parser(
        "erase", help="delete every conversation of a user (the account stays)"
    ).add_argument("name")
    keys = sub.add_parser("keys", help="API keys for the OpenAI-compatible API and /api")
    k = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = k.add_parser("create", help="create a key for USER and print it (only this once)")
    create.add_argument("user")
    create.add_argument("--name", default="api", help="a label to tell keys apart")
    create.add_argument(
        "--days",
        type=int,
        metavar="N",
        help="the key expires after N days (default: it does not; a new "
        "password revokes it anyway)",
    )
    k.add_parser("list", help="list USER's keys").add_argument("user")
    revoke = k.add_parser("revoke", help="revoke key ID of USER")
    revoke.add_argument("user")
    revoke.add_argument("id", type=int)


def run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.data_path / "appliance.db")
    try:
        accounts = Accounts(UserStore(db))
        done = _users(accounts, args, db) if args.command == "users" else _keys(accounts, args)
        looked = args.action == "list" or (
            args.action == "groups" and not (args.add or args.remove)
        )
        if not looked:
            target = str(getattr(args, "name", None) or getattr(args, "user", ""))
            detail = " ".join([*(f"+{g}" for g in getattr(args, "add", [])),
                               *(f"-{g}" for g in getattr(args, "remove", []))])  # fmt: skip
            AuditLog(db).record(
                "cli", f"{'user' if args.command == 'users' else 'key'}.{args.action}", target,
                detail,
            )
        return done
    finally:
        db.close()


def _users(accounts: Accounts, args: argparse.Namespace, db: Database) -> int:
    if args.action == "add":
        user = accounts.add(args.name, _password(), "admin" if args.admin else "employee")
        print(f"user {user.name} ({user.role}) created")
    elif args.action == "passwd":
        revoked = accounts.set_password(args.name, _password())
        print(
            f"password of {args.name} changed; their sessions ended and {revoked} API "
            f"key{'' if revoked == 1 else 's'} revoked"
        )
    elif args.action == "erase":
        user = accounts.users.by_name(args.name)
        gone = ConversationStore(db).delete_all(user.id)
        print(f"{gone} conversations of {user.name} deleted")
    elif args.action == "groups":
        groups = accounts.change_groups(args.name, args.add, args.remove)
        print(f"{args.name}: {', '.join(groups) if groups else 'in no group'}")
    elif args.action in ("disable", "enable"):
        user = accounts.set_disabled(args.name, args.action == "disable")
        print(f"user {user.name} {'disabled' if user.disabled else 'enabled'}")
    else:
        table(
            [("NAME", "SOURCE", "ROLE", "STATUS", "CREATED", "GROUPS")]
            + [
                (
                    u.name,
                    u.source,
                    u.role,
                    "disabled" if u.disabled else "active",
                    _when(u.created_at),
                    ", ".join(g),
                )
                for u, g in accounts.listing()
            ]
        )
    return 0


def _keys(accounts: Accounts, args: argparse.Namespace) -> int:
    if args.action == "create":
        if args.days is not None and not 1 <= args.days <= 3650:
            raise SystemExit("appliance: --days takes 1 to 3650; nothing created")
        expires = time.time() + args.days * 86400 if args.days else None
        key, secret = accounts.create_key(args.user, args.name, expires)
        print(secret)
        until = f"expires {_when(expires)}" if expires else "does not expire"
        print(
            f"key {key.id} ({key.name}) for {args.user}, {until}: shown only now; store it safely",
            file=sys.stderr,
        )
    elif args.action == "revoke":
        accounts.users.revoke_key(accounts.users.by_name(args.user).id, args.id)
        print(f"key {args.id} revoked")
    else:
        user = accounts.users.by_name(args.user)
        now = time.time()
        rows = [
            (
                str(k.id),
                k.name,
                k.prefix + "…",
                _when(k.created_at),
                _when(k.last_used_at),
                _when(k.expires_at),
                _status(k, now),
            )
            for k in accounts.users.keys(user.id)
        ]
        table([("ID", "NAME", "PREFIX", "CREATED", "LAST USED", "EXPIRES", "STATUS"), *rows])
    return 0


def _password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise SystemExit("appliance: the two passwords differ; nothing changed")
    return first


def _status(key: ApiKey, now: float) -> str:
    if key.revoked_at:
        return f"revoked {_when(key.revoked_at)}"
    return "expired" if key.expires_at and key.expires_at <= now else "active"


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M", time.localtime(at)) if at else "-"
