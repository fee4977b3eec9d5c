"""Thumbs up or down (and a comment) on answers, and the list of bad ones for admins."""

from __future__ import annotations

import time

import msgspec

from appliance.store.db import Database


class Rated(msgspec.Struct, frozen=True):
    message_id: int
    conversation_id: str
    user: str | None
    rating: int  # 1 up, -1 down
    comment: str
    created_at: float
    question: str  # the user message the answer replied to (as stored: no personal data)
    answer: str


_LIST = """
SELECT f.message_id, m.conversation_id, u.name AS user, f.rating, f.comment, f.created_at,
       m.content AS answer,
       COALESCE((SELECT q.content FROM messages q WHERE q.conversation_id = m.conversation_id
                 AND q.role = 'user' AND q.id < m.id ORDER BY q.id DESC LIMIT 1), '') AS question
FROM feedback f JOIN messages m ON m.id = f.message_id LEFT JOIN users u ON u.id = f.user_id
WHERE (? = 0 OR f.rating = ?) ORDER BY f.created_at DESC LIMIT ?
"""


class FeedbackStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def rate(self, message_id: int, user_id: int | None, rating: int, comment: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("INSERT INTO feedback (message_id, user_id, rating, comment, created_at) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (message_id, user_id) DO UPDATE SET "
                       "rating = excluded.rating, comment = excluded.comment, "
                       "created_at = excluded.created_at",
                       (message_id, user_id, rating, comment, time.time()))  # fmt: skip

    def listed(self, rating: int = 0, limit: int = 200) -> list[Rated]:
        """Newest first; `rating` -1 for thumbs down only, 1 up only, 0 both."""
        return [Rated(**dict(r)) for r in self._db.query(_LIST, (rating, rating, limit))]
