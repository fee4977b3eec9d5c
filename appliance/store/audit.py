"""The audit log: append-only, each record chained to the one before by a SHA-256 hash, so an
edited or deleted record is detected (`appliance audit verify`)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

import msgspec

from appliance.store.db import Database

GENESIS = "0" * 64
BATCH = 1000  # records read at a time by `verify`: constant memory, the lock held briefly


class Record(msgspec.Struct, frozen=True):
    id: int
    at: float
    actor: str  # a user name, "cli", or "-" (nobody signed in)
    action: str  # e.g. "sign_in", "sign_in_failed", "chat", "user.add"
    target: str  # what it was done to: a conversation id, a user name, ...
    detail: str  # more, as text (redacted of personal data)
    prev_hash: str
    hash: str
    address: str | None = None  # the client's, while kept (audit.address_days); not chained


class Verdict(msgspec.Struct, frozen=True):
    records: int  # in the chain, up to the newest checked
    intact: bool
    problem: str | None = None  # which record, and what is wrong with it
    checked: int = 0  # read this time: those after the checkpoint, or all with `full`
    since: int = 0  # the id of the checkpoint this check started after (0: the first record)


def _digest(
    prev: str, id_: int, at: float, actor: str, action: str, target: str, detail: str
) -> str:
    payload = msgspec.json.encode([prev, id_, repr(at), actor, action, target, detail])
    return hashlib.sha256(payload).hexdigest()


def _sound(r: Record, prev: str) -> bool:
    return r.prev_hash == prev and r.hash == _digest(
        prev, r.id, r.at, r.actor, r.action, r.target, r.detail
    )


class AuditLog:
    def __init__(
        self, db: Database, redact: Callable[[str], str] = lambda t: t, address_days: int = 30
    ) -> None:
        self._db = db
        self._redact = redact
        self._address_days = address_days

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        detail: str = "",
        private: bool = False,
        address: str = "",
    ) -> None:
        """`private`: the detail holds text a person typed, so it is redacted first (spaCy:
        tens of milliseconds). What the server writes itself is not. `address`: the client's,
        kept beside the chain for `audit.address_days`, never in it (the chain is forever)."""
        detail = self._redact(detail) if private and detail else detail
        with self._db.transaction() as tx:  # one writer: the chain cannot fork
            last = tx.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            id_, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            at = time.time()
            tx.execute(
                "INSERT INTO audit (id, at, actor, action, target, detail, prev_hash, hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    id_,
                    at,
                    actor,
                    action,
                    target,
                    detail,
                    prev,
                    _digest(prev, id_, at, actor, action, target, detail),
                ),
            )
            if address and self._address_days:
                tx.execute(
                    "INSERT INTO audit_addresses (record_id, address, at) VALUES (?, ?, ?)",
                    (id_, address, at),
                )

    def records(
        self, actor: str = "", action: str = "", before: int | None = None, limit: int = 100
    ) -> list[Record]:
        """Newest first, filtered by actor and action (exact), paged by `before` (an id)."""
        rows = self._db.query(
            "SELECT a.*, d.address AS address FROM audit a "
            "LEFT JOIN audit_addresses d ON d.record_id = a.id "
            "WHERE (? = '' OR a.actor = ?) AND (? = '' OR a.action = ?) "
            "AND (? IS NULL OR a.id < ?) ORDER BY a.id DESC LIMIT ?",
            (actor, actor, action, action, before, before, limit),
        )
        return [Record(**dict(r)) for r in rows]

    def purge_addresses(self) -> int:
        """Drops the client addresses older than `audit.address_days`; the chain is untouched."""
        cutoff = time.time() - self._address_days * 86400
        with self._db.transaction() as tx:
            gone = tx.execute("DELETE FROM audit_addresses WHERE at < ?", (cutoff,)).rowcount
        if gone:
            self._db.checkpoint()  # else the deleted addresses stay readable in the -wal file
        return int(gone)

    def signed_in_from(self, most: int = 80_000) -> list[tuple[str, str]]:
        """(account, address) of the newest `most` sign-ins whose address is still kept,
        oldest first: where each account signed in from (for the sign-in brake, at start)."""
        cutoff = time.time() - self._address_days * 86400
        rows = self._db.query(
            "SELECT a.actor, d.address FROM audit a JOIN audit_addresses d ON d.record_id = a.id "
            "WHERE a.action = 'sign_in' AND d.at >= ? ORDER BY a.id DESC LIMIT ?",
            (cutoff, most),
        )
        return [(str(r[0]), str(r[1])) for r in reversed(rows)]

    def verify(self, full: bool = False) -> Verdict:
        """Checks the chain from the last checkpoint (or from the first record with `full`),
        in batches, and moves the checkpoint to the newest record when all is intact. The
        checkpoint record itself is checked too, so a rewritten tail is found either way."""
        mark = self._checkpoint()
        if mark is not None and (problem := self._check_mark(mark[0], mark[1], full)):
            return Verdict(0 if full else mark[2], False, problem, 0, 0 if full else mark[0])
        since, prev, count = (0, GENESIS, 0) if full or mark is None else mark
        expected, checked, last = since + 1, 0, None
        for r in self._after(since):
            checked += 1
            if r.id != expected:
                return Verdict(
                    count + checked,
                    False,
                    f"records {expected}..{r.id - 1} are missing (deleted)",
                    checked,
                    since,
                )
            if not _sound(r, prev):
                return Verdict(
                    count + checked,
                    False,
                    f"record {r.id} was changed after it was written",
                    checked,
                    since,
                )
            prev, expected, last = r.hash, r.id + 1, r
        if last is not None:
            self._save_checkpoint(last, count + checked)
        return Verdict(count + checked, True, None, checked, since)

    def _after(self, since: int) -> Iterator[Record]:
        while rows := self._db.query(
            "SELECT * FROM audit WHERE id > ? ORDER BY id LIMIT ?", (since, BATCH)
        ):
            for row in rows:
                yield Record(**dict(row))
            since = rows[-1]["id"]

    def _checkpoint(self) -> tuple[int, str, int] | None:
        rows = self._db.query("SELECT record_id, hash, records FROM audit_checkpoint")
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None

    def _check_mark(self, record_id: int, hash_: str, full: bool = False) -> str | None:
        """The checkpoint's record must still be there, unchanged (else the tail was cut or
        rewritten after it was verified)."""
        rows = self._db.query("SELECT * FROM audit WHERE id = ?", (record_id,))
        if not rows:
            return (
                f"record {record_id}, verified before, is missing (deleted); "
                "records after it may have been cut"
            )
        r = Record(**dict(rows[0]))
        sound = r.hash == hash_ and r.hash == _digest(
            r.prev_hash, r.id, r.at, r.actor, r.action, r.target, r.detail
        )
        if sound:
            return None
        return f"record {record_id} was changed after it was verified" + (
            "" if full else "; `appliance audit verify --full` checks every record"
        )

    def _save_checkpoint(self, last: Record, records: int) -> None:
        with self._db.transaction() as tx:
            tx.execute("DELETE FROM audit_checkpoint")
            tx.execute(
                "INSERT INTO audit_checkpoint (record_id, hash, records, at) VALUES (?, ?, ?, ?)",
                (last.id, last.hash, records, time.time()),
            )
