"""The audit commands: verify the chain, list records."""

from __future__ import annotations

import argparse
import time

from appliance.cli.output import table
from appliance.config import Settings
from appliance.store.audit import AuditLog, Verdict
from appliance.store.db import Database


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the audit log: verify its chain, list records")
    a = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = a.add_parser(
        "verify",
        help="check that no record was edited or deleted (exit 1 if one was): the records "
        "added since the last verify, and that the last one verified is unchanged",
    )
    verify.add_argument(
        "--full", action="store_true", help="check every record from the first (slower)"
    )
    listing = a.add_parser("list", help="the newest records")
    listing.add_argument("--actor", default="", help="only this user's records")
    listing.add_argument("--action", dest="kind", default="", help="only this action")
    listing.add_argument("--limit", type=int, default=50)


def run(settings: Settings, args: argparse.Namespace) -> int:
    db = Database(settings.data_path / "appliance.db")
    try:
        log = AuditLog(db)
        if args.action == "verify":
            return _verify(log, args.full)
        rows = [
            (
                str(r.id),
                time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.at)),
                r.actor,
                r.action,
                r.target,
                r.detail,
                r.address or "",
            )
            for r in log.records(args.actor, args.kind, limit=args.limit)
        ]
        table([("ID", "AT", "ACTOR", "ACTION", "TARGET", "DETAIL", "ADDRESS"), *rows])
        return 0
    finally:
        db.close()


def _verify(log: AuditLog, full: bool) -> int:
    verdict = log.verify(full=full)
    if not verdict.intact:
        print(f"audit log NOT intact: {verdict.problem}")
        return 1
    head = log.records(limit=1)
    tip = f"; newest record {head[0].id}, hash {head[0].hash}" if head else ""
    print(f"audit log intact: {verdict.records} records ({_scope(verdict)}){tip}")
    return 0


def _scope(verdict: Verdict) -> str:
    if not verdict.since:
        return "all checked"
    return (
        f"{verdict.checked} checked after record {verdict.since}, verified before; "
        "--full checks all"
    )
