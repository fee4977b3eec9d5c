"""The audit log: append-only, each record chained to the one before by a SHA-256 hash, so an
edited or deleted record is detected (`appliance audit verify`)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

import msgspec

from appliance.store.db import Database

GENESIS = "0" * 64


class Record(msgspec.Struct, frozen=True):
    id: int
    at: float
    actor: str  # a user name, "cli", or "-" (nobody signed in)
    action: str  # e.g. "sign_in", "sign_in_failed", "chat", "user.add"
    target: str  # what it was done to: a conversation id, a user name, ...
    detail: str  # more, as text (redacted of personal data)
    prev_hash: str
    hash: str


class Verdict(msgspec.Struct, frozen=True):
    records: int
    intact: bool
    problem: str | None = None  # which record, and what is wrong with it


def _digest(prev: str, id_: int, at: float, actor: str, action: str, target: str,
            detail: str) -> str:  # fmt: skip
    payload = msgspec.json.encode([prev, id_, repr(at), actor, action, target, detail])
    return hashlib.sha256(payload).hexdigest()


class AuditLog:
    def __init__(self, db: Database, redact: Callable[[str], str] = lambda t: t) -> None:
        self._db = db
        self._redact = redact

    def record(self, actor: str, action: str, target: str = "", detail: str = "",
               private: bool = False) -> None:  # fmt: skip
        """`private`: the detail holds text a person typed, so it is redacted first (spaCy:
        tens of milliseconds). What the server writes itself is not."""
        detail = self._redact(detail) if private and detail else detail
        with self._db.transaction() as tx:  # one writer: the chain cannot fork
            last = tx.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            id_, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            at = time.time()
            tx.execute("INSERT INTO audit (id, at, actor, action, target, detail, prev_hash, hash)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (id_, at, actor, action, target, detail, prev,
                        _digest(prev, id_, at, actor, action, target, detail)))  # fmt: skip

    def records(self, actor: str = "", action: str = "", before: int | None = None,
                limit: int = 100) -> list[Record]:  # fmt: skip
        """Newest first, filtered by actor and action (exact), paged by `before` (an id)."""
        rows = self._db.query(
            "SELECT * FROM audit WHERE (? = '' OR actor = ?) AND (? = '' OR action = ?) "
            "AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
            (actor, actor, action, action, before, before, limit))  # fmt: skip
        return [Record(**dict(r)) for r in rows]

    def verify(self) -> Verdict:
        prev, expected_id, count = GENESIS, 1, 0
        for row in self._db.query("SELECT * FROM audit ORDER BY id"):
            r = Record(**dict(row))
            count += 1
            if r.id != expected_id:
                return Verdict(count, False, f"records {expected_id}..{r.id - 1} are missing "
                               "(deleted)")  # fmt: skip
            if r.prev_hash != prev or r.hash != _digest(prev, r.id, r.at, r.actor, r.action,
                                                        r.target, r.detail):  # fmt: skip
                return Verdict(count, False, f"record {r.id} was changed after it was written")
            prev, expected_id = r.hash, r.id + 1
        return Verdict(count, True)
