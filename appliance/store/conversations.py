"""Conversations and their messages, persisted in SQLite."""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec

from appliance.errors import NotFound
from appliance.store.db import Database


class Conversation(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    created_at: float
    updated_at: float


class Message(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    conversation_id: str
    role: str
    content: str
    created_at: float
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    citations: str | None = None  # JSON: the sources the answer was given
    grounding: str | None = None  # how an answer was made: rag.answer.Kind
    author: str | None = None  # an expert's answer (an assistant turn): the account's name
    seen: int = 1  # 0: an expert's answer its owner has not read yet


_COLUMNS = "id, title, created_at, updated_at"
# The ids `create` makes (uuid4().hex); anything else names no conversation, and the web layer
# answers 404 before reading, auditing or echoing it.
_ID = re.compile(r"[0-9a-f]{32}")


def is_conversation_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


class ConversationStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, title: str, user_id: int | None = None) -> Conversation:
        now = time.time()
        conv = Conversation(id=uuid.uuid4().hex, title=title, created_at=now, updated_at=now)
        with self._db.transaction() as tx:
            tx.execute(
                "INSERT INTO conversations (id, title, created_at, updated_at, user_id) "
                "VALUES (?,?,?,?,?)",
                (conv.id, conv.title, conv.created_at, conv.updated_at, user_id),
            )
        return conv

    def recent(self, user_id: int | None = None, limit: int = 200) -> list[Conversation]:
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM conversations WHERE user_id IS ? "  # noqa: S608
            "ORDER BY updated_at DESC LIMIT ?", (user_id, limit)
        )
        return [Conversation(**dict(row)) for row in rows]

    def get(self, conversation_id: str, user_id: int | None = None) -> Conversation:
        """The conversation, if it exists and belongs to `user_id`; another's is not found."""
        rows = self._db.query(
            f"SELECT {_COLUMNS} FROM conversations WHERE id = ? AND user_id IS ?",  # noqa: S608
            (conversation_id, user_id),
        )
        if not rows:
            raise NotFound(f"conversation {conversation_id} does not exist")
        return Conversation(**dict(rows[0]))

    def messages(self, conversation_id: str) -> list[Message]:
        rows = self._db.query(
            "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        )
        return [Message(**dict(row)) for row in rows]

    def add_expert_answer(self, conversation_id: str, content: str, author: str) -> Message:
        """An expert's answer (a hand-off's), unseen until the owner reads the conversation."""
        now = time.time()
        with self._db.transaction() as tx, _missing_conversation(conversation_id):
            cur = tx.execute(
                "INSERT INTO messages (conversation_id, role, content, created_at, author, seen) "
                "VALUES (?, 'assistant', ?, ?, ?, 0)", (conversation_id, content, now, author))
            tx.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return Message(id=int(cur.lastrowid or 0), conversation_id=conversation_id,
                       role="assistant", content=content, created_at=now, author=author,
                       seen=0)  # fmt: skip

    def unseen(self, user_id: int | None) -> dict[str, int]:
        """Per conversation of the user, the experts' answers not read yet."""
        rows = self._db.query(
            "SELECT m.conversation_id, COUNT(*) FROM messages m JOIN conversations c "
            "ON c.id = m.conversation_id WHERE c.user_id IS ? AND m.seen = 0 "
            "GROUP BY m.conversation_id", (user_id,))  # fmt: skip
        return {row[0]: int(row[1]) for row in rows}

    def mark_seen(self, conversation_id: str) -> None:
        with self._db.transaction() as tx:
            tx.execute("UPDATE messages SET seen = 1 WHERE conversation_id = ? AND seen = 0",
                       (conversation_id,))  # fmt: skip

    def rename(self, conversation_id: str, title: str) -> Conversation:
        with self._db.transaction() as tx:
            cur = tx.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
            )
        if cur.rowcount == 0:
            raise NotFound(f"conversation {conversation_id} does not exist")
        rows = self._db.query(f"SELECT {_COLUMNS} FROM conversations WHERE id = ?",  # noqa: S608
                              (conversation_id,))  # fmt: skip
        return Conversation(**dict(rows[0]))

    def delete(self, conversation_id: str) -> None:
        with self._db.transaction() as tx:
            cur = tx.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        if cur.rowcount == 0:
            raise NotFound(f"conversation {conversation_id} does not exist")
        self._db.checkpoint()  # erased from the file, not only from the table

    def add_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        *,
        finish_reason: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        citations: str | None = None,
        grounding: str | None = None,
    ) -> Message:
        now = time.time()
        with self._db.transaction() as tx, _missing_conversation(conversation_id):
            cur = _insert_message(tx, conversation_id, role, content, now, finish_reason,
                                  prompt_tokens, completion_tokens, citations,
                                  grounding)  # fmt: skip
            tx.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return Message(
            id=int(cur.lastrowid or 0), conversation_id=conversation_id, role=role,
            content=content, created_at=now, finish_reason=finish_reason,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, citations=citations,
            grounding=grounding,
        )  # fmt: skip

    def drop_trailing_assistant(self, conversation_id: str) -> None:
        """Remove the last message if it is the assistant's answer (Regenerate replaces it;
        an expert's stays)."""
        with self._db.transaction() as tx:
            tx.execute(
                "DELETE FROM messages WHERE id = (SELECT id FROM messages WHERE "
                "conversation_id = ? ORDER BY id DESC LIMIT 1) AND role = 'assistant' "
                "AND author IS NULL",
                (conversation_id,),
            )

    def delete_all(self, user_id: int | None) -> int:
        """Deletes every conversation of `user_id`; returns how many."""
        with self._db.transaction() as tx:
            cur = tx.execute("DELETE FROM conversations WHERE user_id IS ?", (user_id,))
        if cur.rowcount:
            self._db.checkpoint()
        return cur.rowcount

    def delete_older(self, before: float) -> list[str]:
        """Deletes the conversations last changed before `before`; returns their ids."""
        with self._db.transaction() as tx:
            rows = tx.execute("DELETE FROM conversations WHERE updated_at < ? RETURNING id",
                              (before,)).fetchall()  # fmt: skip
        if rows:
            self._db.checkpoint()
        return [r[0] for r in rows]


@contextmanager
def _missing_conversation(conversation_id: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError:
        raise NotFound(f"conversation {conversation_id} does not exist") from None


def _insert_message(tx: sqlite3.Connection, *values: object) -> sqlite3.Cursor:
    return tx.execute(
        "INSERT INTO messages (conversation_id, role, content, created_at, finish_reason, "
        "prompt_tokens, completion_tokens, citations, grounding) VALUES (?,?,?,?,?,?,?,?,?)",
        values,
    )
