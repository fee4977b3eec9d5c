"""Conversations on the page: list, read, rename, rate, export and delete a user's own, and
the retention purge. Answering them is `chat/answering.py`'s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import msgspec

from appliance.chat.citations import Chunks
from appliance.chat.citations import shown as cited
from appliance.chat.events import Asker, Shown
from appliance.errors import Conflict, NotFound
from appliance.pii.policy import Privacy
from appliance.rag.answer import Citation
from appliance.store.audit import AuditLog
from appliance.store.conversations import Conversation, ConversationStore, Message
from appliance.store.feedback import FeedbackStore


class Conversations:
    """Every call names the user: a conversation of another user is "not found" (404),
    whether it is read, continued, renamed or deleted. What a user does to their data
    (export, deletion) is audited here."""

    def __init__(
        self, store: ConversationStore, privacy: Privacy, feedback: FeedbackStore,
        audit: AuditLog | None = None, *, chunks: Chunks | None = None,
    ) -> None:  # fmt: skip
        """`chunks`: the catalog's chunks by id, which stored citations are shown from."""
        self.store = store
        self.privacy = privacy
        self.feedback = feedback
        self._audit = audit
        self._chunks = chunks
        self._answering: set[str] = set()  # conversations with an answer in flight

    def conversations(self, user_id: int | None) -> list[Conversation]:
        return [self._titled(c) for c in self.store.recent(user_id)]

    def start(self, user_id: int | None, title: str) -> Conversation:
        return self.store.create(self.privacy.stored(title) if title else title, user_id)

    def show(self, user_id: int | None, conversation_id: str) -> tuple[Conversation, list[Shown]]:
        """The conversation as its owner sees it; experts' answers in it are seen from now."""
        conversation = self._titled(self.store.get(conversation_id, user_id))
        messages = self.store.messages(conversation_id)
        if any(not m.seen for m in messages):
            self.store.mark_seen(conversation_id)
        return conversation, [self.shown(m) for m in messages]

    def unseen(self, user_id: int | None) -> dict[str, int]:
        """Per conversation, experts' answers its owner has not read yet (the page's badge)."""
        return self.store.unseen(user_id)

    def rename(self, user_id: int | None, conversation_id: str, title: str) -> Conversation:
        self.store.get(conversation_id, user_id)
        stored = self.privacy.stored(title, conversation_id)
        return self._titled(self.store.rename(conversation_id, stored))

    def delete(self, asker: Asker, conversation_id: str) -> None:
        self.store.get(conversation_id, asker.id)
        if conversation_id in self._answering:
            raise Conflict("this conversation is still answering; press Stop first")
        self.store.delete(conversation_id)
        self.privacy.forget(conversation_id)
        self._record(asker, "conversation.delete", conversation_id)

    def rate(self, user_id: int | None, conversation_id: str, message_id: int, up: bool,
             comment: str = "") -> None:  # fmt: skip
        """Thumbs up or down on one of the user's answers; the comment is stored redacted."""
        self.store.get(conversation_id, user_id)
        answer = [m for m in self.store.messages(conversation_id)
                  if m.id == message_id and m.role == "assistant"]  # fmt: skip
        if not answer:
            raise NotFound(f"no answer {message_id} in conversation {conversation_id}")
        stored = self.privacy.stored(comment, conversation_id) if comment.strip() else ""
        self.feedback.rate(message_id, user_id, 1 if up else -1, stored)

    def export(self, asker: Asker) -> list[tuple[Conversation, list[Shown]]]:
        """All of a user's conversations with their messages, as the user sees them."""
        found = [self.show(asker.id, c.id) for c in self.store.recent(asker.id, limit=10**9)]
        self._record(asker, "conversation.export", asker.name, f"{len(found)}")
        return found

    def delete_all(self, user_id: int | None, asker: Asker | None = None) -> int:
        """Every conversation of the user; audited as the user's own deletion when `asker`
        is given (an administrator's erasure is audited as such by its caller)."""
        ids = [c.id for c in self.store.recent(user_id, limit=10**9)]
        if self._answering.intersection(ids):
            raise Conflict("a conversation is still answering; press Stop first")
        for conversation_id in ids:
            self.privacy.forget(conversation_id)
        deleted = self.store.delete_all(user_id)
        if asker is not None:
            self._record(asker, "conversation.delete_all", asker.name, f"{deleted}")
        return deleted

    def purge(self, older_than_days: int) -> int:
        """Retention: deletes conversations untouched for that many days; returns how many."""
        gone = self.store.delete_older(time.time() - older_than_days * 86400)
        for conversation_id in gone:
            self.privacy.forget(conversation_id)
        return len(gone)

    @contextmanager
    def answering(self, conversation_id: str) -> Iterator[None]:
        """One answer at a time: two would interleave the conversation's turns (two tabs,
        say); and no deletion while it runs."""
        if conversation_id in self._answering:
            raise Conflict("this conversation is already answering; wait or press Stop")
        self._answering.add(conversation_id)
        try:
            yield
        finally:
            self._answering.discard(conversation_id)

    def shown(self, message: Message, citations: list[Citation] | None = None) -> Shown:
        """`citations`: the answer's own, as just given; else the stored ones, read back."""
        content, spans = self.privacy.shown(message.conversation_id, message.content)
        if citations is None:
            citations = cited(message.citations, self._chunks)
        return Shown(message=msgspec.structs.replace(message, content=content), pii=spans,
                     citations=citations)  # fmt: skip

    def _titled(self, conversation: Conversation) -> Conversation:
        title, _ = self.privacy.shown(conversation.id, conversation.title)
        return msgspec.structs.replace(conversation, title=title)

    def _record(self, asker: Asker, action: str, target: str, detail: str = "") -> None:
        if self._audit is not None:
            self._audit.record(asker.name, action, target, detail)
