"""Questions handed to people: who asked, what was searched, who took it and what they said."""

from __future__ import annotations

import time
import uuid
from typing import Literal

import msgspec

from appliance.errors import Conflict, NotFound
from appliance.store.db import Database

Status = Literal["open", "claimed", "answered", "closed"]


class Handoff(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    conversation_id: str
    user_id: int | None
    asker: str  # the asking account's name ("-" with sign-in off)
    question: str  # as stored (the documents' policy for stored text)
    note: str
    searched: str  # what retrieval searched for it
    collection: str | None  # whose experts take it (None: the fallback's)
    status: Status
    expert_id: int | None
    expert: str | None
    answer: str | None  # as stored
    created_at: float
    claimed_at: float | None = None
    answered_at: float | None = None
    closed_at: float | None = None
    faq_path: str | None = None


_SELECT = (
    "SELECT h.*, COALESCE(a.name, '-') AS asker, e.name AS expert FROM handoffs h "
    "LEFT JOIN users a ON a.id = h.user_id LEFT JOIN users e ON e.id = h.expert_id "
)


class HandoffStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, conversation_id: str, user_id: int | None, question: str, note: str,
               searched: str, collection: str | None) -> Handoff:  # fmt: skip
        """A new open hand-off; Conflict while the conversation has one not yet answered."""
        handoff_id = uuid.uuid4().hex
        with self._db.transaction() as tx:
            waiting = tx.execute(
                "SELECT 1 FROM handoffs WHERE conversation_id = ? AND status IN "
                "('open', 'claimed')", (conversation_id,)).fetchone()  # fmt: skip
            if waiting:
                raise Conflict("this conversation's question is already with the experts; "
                               "their answer will appear here")  # fmt: skip
            tx.execute(
                "INSERT INTO handoffs (id, conversation_id, user_id, question, note, searched, "
                "collection, status, created_at) VALUES (?,?,?,?,?,?,?,'open',?)",
                (handoff_id, conversation_id, user_id, question, note, searched, collection,
                 time.time()))  # fmt: skip
        return self.get(handoff_id)

    def get(self, handoff_id: str) -> Handoff:
        rows = self._db.query(_SELECT + "WHERE h.id = ?", (handoff_id,))
        if not rows:
            raise NotFound(f"no hand-off {handoff_id}")
        return Handoff(**dict(rows[0]))

    def listed(self, status: str = "open") -> list[Handoff]:
        """Oldest first (a queue); `all`: every status."""
        rows = self._db.query(
            _SELECT + "WHERE ? = 'all' OR h.status = ? ORDER BY h.created_at LIMIT 1000",
            (status, status))  # fmt: skip
        return [Handoff(**dict(r)) for r in rows]

    def of_user(self, user_id: int | None) -> list[Handoff]:
        rows = self._db.query(_SELECT + "WHERE h.user_id IS ? ORDER BY h.created_at",
                              (user_id,))  # fmt: skip
        return [Handoff(**dict(r)) for r in rows]

    def of_conversation(self, conversation_id: str) -> list[Handoff]:
        rows = self._db.query(_SELECT + "WHERE h.conversation_id = ? ORDER BY h.created_at",
                              (conversation_id,))  # fmt: skip
        return [Handoff(**dict(r)) for r in rows]

    def claim(self, handoff_id: str, expert_id: int) -> Handoff:
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE handoffs SET status = 'claimed', expert_id = ?, claimed_at = ? "
                "WHERE id = ? AND (status = 'open' OR (status = 'claimed' AND expert_id = ?))",
                (expert_id, time.time(), handoff_id, expert_id))  # fmt: skip
        if cur.rowcount == 0:
            self._refused(handoff_id, "claimed")
        return self.get(handoff_id)

    def answer(self, handoff_id: str, expert_id: int, answer: str) -> Handoff:
        """Open or claimed by this expert: answered (claimed by them if it was open)."""
        now = time.time()
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE handoffs SET status = 'answered', expert_id = ?, answer = ?, "
                "answered_at = ?, claimed_at = COALESCE(claimed_at, ?) WHERE id = ? AND "
                "(status = 'open' OR (status = 'claimed' AND expert_id = ?))",
                (expert_id, answer, now, now, handoff_id, expert_id))  # fmt: skip
        if cur.rowcount == 0:
            self._refused(handoff_id, "answered")
        return self.get(handoff_id)

    def close(self, handoff_id: str) -> Handoff:
        with self._db.transaction() as tx:
            tx.execute("UPDATE handoffs SET status = 'closed', closed_at = ? WHERE id = ? "
                       "AND status != 'closed'", (time.time(), handoff_id))  # fmt: skip
        return self.get(handoff_id)

    def saved(self, handoff_id: str, faq_path: str) -> Handoff:
        with self._db.transaction() as tx:
            tx.execute("UPDATE handoffs SET faq_path = ? WHERE id = ?", (faq_path, handoff_id))
        return self.get(handoff_id)

    def _refused(self, handoff_id: str, what: str) -> None:
        found = self.get(handoff_id)  # NotFound when it is gone
        by = f" by {found.expert}" if found.expert else ""
        raise Conflict(f"this question cannot be {what}: it is {found.status}{by}")
