"""Questions handed to people: an employee sends a question the assistant declined (or any
answer they doubt) to the experts of its collection; an expert claims it, answers it into the
employee's conversation, closes it, and may save it as an FAQ document in the watched folder,
which is indexed like any file, so the next person gets a cited answer."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from appliance.chat.conversations import Conversations
from appliance.chat.events import Asker
from appliance.chat.notify import Notifier
from appliance.config import HandoffSettings
from appliance.errors import InvalidRequest, NotFound
from appliance.llm.types import ChatMessage
from appliance.ops.metrics import Metrics
from appliance.rag.answer import search_query
from appliance.store.audit import AuditLog
from appliance.store.conversations import Message
from appliance.store.handoffs import Handoff, HandoffStore
from appliance.store.users import User, UserStore

_SLUG_WORDS = 8


# The audit's action for each step, as the metrics name it.
_STEPS = {"handoff.ask": "asked", "handoff.claim": "claimed", "handoff.answer": "answered",
          "handoff.close": "closed", "handoff.faq": "saved"}  # fmt: skip


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """A message of the conversation as an expert sees it (personal data as the model saw it)."""

    role: str
    content: str
    author: str | None = None


class Handoffs:
    def __init__(self, store: HandoffStore, conversations: Conversations, users: UserStore,
                 settings: HandoffSettings, watch_path: Path, notifier: Notifier,
                 audit: AuditLog | None = None,
                 metrics: Metrics | None = None) -> None:  # fmt: skip
        self._store, self._conversations, self._users = store, conversations, users
        self._metrics = metrics or Metrics()
        self._settings, self._watch, self._notifier = settings, watch_path, notifier
        self._audit = audit
        self._privacy = conversations.privacy

    # ---- who answers ------------------------------------------------------------------

    def is_expert(self, user: User) -> bool:
        named = {n for names in self._settings.experts.values() for n in names}
        return user.role == "admin" or user.name in named | set(self._settings.fallback)

    def may_take(self, user: User, handoff: Handoff) -> bool:
        """An administrator takes any; an expert those of their collections; the fallback
        (every administrator when none is named) those no collection's experts take."""
        if user.role == "admin":
            return True
        experts = self._settings.experts.get(handoff.collection or "")
        if experts:
            return user.name in experts
        return user.name in self._settings.fallback

    # ---- the employee -----------------------------------------------------------------

    def ask(self, asker: Asker, conversation_id: str, message_id: int | None = None,
            note: str = "") -> Handoff:  # fmt: skip
        """Hand the conversation's question (the one `message_id` answered, else the last)
        to the experts; 404 for another's conversation."""
        self._conversations.store.get(conversation_id, asker.id)
        messages = self._conversations.store.messages(conversation_id)
        upto = len(messages)
        if message_id is not None:
            found = [i for i, m in enumerate(messages) if m.id == message_id]
            if not found or messages[found[0]].role == "user":
                raise NotFound(f"no answer {message_id} in conversation {conversation_id}")
            upto = found[0]
        asked = [i for i, m in enumerate(messages[:upto]) if m.role == "user"]
        if not asked:
            raise InvalidRequest("there is no question in this conversation to hand over",
                                 param="conversation")  # fmt: skip
        question = messages[asked[-1]]
        answer = next((m for m in messages[asked[-1] + 1 :] if m.role == "assistant"), None)
        earlier = [ChatMessage("user", m.content) for m in messages[: asked[-1]]
                   if m.role == "user"]  # fmt: skip
        handoff = self._store.create(
            conversation_id, asker.id, question.content,
            self._privacy.stored(note, conversation_id) if note.strip() else "",
            search_query(question.content, earlier), _collection(answer))  # fmt: skip
        self._record(asker, "handoff.ask", conversation_id, f"collection {handoff.collection}")
        return handoff

    def of_conversation(self, asker: Asker, conversation_id: str) -> list[Handoff]:
        """The hand-offs of the asker's conversation, as its owner sees them."""
        self._conversations.store.get(conversation_id, asker.id)  # another's: 404
        return [self._for_owner(h) for h in self._store.of_conversation(conversation_id)]

    def exported(self, user_id: int | None) -> list[Handoff]:
        """The user's own hand-offs as they see them (their export)."""
        return [self._for_owner(h) for h in self._store.of_user(user_id)]

    # ---- the experts ------------------------------------------------------------------

    def queue(self, asker: Asker, status: str = "open") -> list[Handoff]:
        expert = self._expert(asker)
        return [h for h in self._store.listed(status) if self.may_take(expert, h)]

    def show(self, asker: Asker, handoff_id: str) -> tuple[Handoff, list[Turn]]:
        """The hand-off and its conversation so far, as the model saw it (the prompt policy's
        placeholders for personal data)."""
        handoff = self._taken(asker, handoff_id)[1]
        key = handoff.conversation_id
        turns = [Turn(role="expert" if m.author else m.role,
                      content=self._privacy.for_model(key, m.content),
                      author=m.author)
                 for m in self._conversations.store.messages(key)]  # fmt: skip
        return self._for_expert(handoff), turns

    def claim(self, asker: Asker, handoff_id: str) -> Handoff:
        expert, handoff = self._taken(asker, handoff_id)
        handoff = self._store.claim(handoff.id, expert.id)
        self._changed(asker, "handoff.claim", handoff)
        return self._for_expert(handoff)

    def answer(self, asker: Asker, handoff_id: str, text: str) -> Handoff:
        """The answer goes into the employee's conversation, marked as the expert's."""
        if not text.strip():
            raise InvalidRequest("the answer is empty; write one", param="text")
        expert, handoff = self._taken(asker, handoff_id)
        stored = self._privacy.stored(text, handoff.conversation_id)
        handoff = self._store.answer(handoff.id, expert.id, stored)
        self._conversations.store.add_expert_answer(handoff.conversation_id, stored, expert.name)
        self._changed(asker, "handoff.answer", handoff)
        return self._for_expert(handoff)

    def close(self, asker: Asker, handoff_id: str) -> Handoff:
        handoff = self._store.close(self._taken(asker, handoff_id)[1].id)
        self._changed(asker, "handoff.close", handoff)
        return self._for_expert(handoff)

    def save_faq(self, asker: Asker, handoff_id: str, title: str = "") -> Handoff:
        """The question and the answer as a Markdown file in the watched folder's FAQ folder
        (a new file; the watcher indexes it). The question is written as the experts see it."""
        handoff = self._taken(asker, handoff_id)[1]
        if handoff.answer is None:
            raise InvalidRequest("answer the question before saving it as an FAQ",
                                 param="handoff")  # fmt: skip
        shown = self._for_expert(handoff)
        question, answer = shown.question, shown.answer or ""
        heading = " ".join((title or question).split())
        day = time.strftime("%Y-%m-%d", time.localtime(handoff.answered_at or time.time()))
        text = (f"# {heading}\n\n**Question:** {question}\n\n"
                f"**Answer** ({handoff.expert}, {day}):\n\n{answer.strip()}\n")  # fmt: skip
        path = self._write_new(self._watch / self._settings.faq_folder, _slug(heading), text)
        handoff = self._store.saved(handoff.id, path.relative_to(self._watch).as_posix())
        self._record(asker, "handoff.faq", handoff.id, handoff.faq_path or "")
        return self._for_expert(handoff)

    # ---- inside -----------------------------------------------------------------------

    def _expert(self, asker: Asker) -> User:
        """The asking account, if it answers hand-offs; 404 otherwise (nothing to see)."""
        user = self._users.by_id(asker.id) if asker.id is not None else None
        if user is None or not self.is_expert(user):
            raise NotFound("no such page: only experts answer handed-over questions "
                           "(handoff.experts, handoff.fallback)")  # fmt: skip
        return user

    def _taken(self, asker: Asker, handoff_id: str) -> tuple[User, Handoff]:
        expert = self._expert(asker)
        handoff = self._store.get(handoff_id)
        if not self.may_take(expert, handoff):
            raise NotFound(f"no hand-off {handoff_id}")
        return expert, handoff

    def _for_expert(self, handoff: Handoff) -> Handoff:
        """The asker's words as the model saw them; the expert's own answer as written."""
        return self._viewed(handoff, self._privacy.for_model)

    def _for_owner(self, handoff: Handoff) -> Handoff:
        return self._viewed(handoff, lambda key, text: self._privacy.shown(key, text)[0])

    def _viewed(self, handoff: Handoff, asked: Callable[[str, str], str]) -> Handoff:
        """`handoff` with the asker's texts through `asked` (conversation key, stored text)
        and the answer with its placeholders put back."""
        key = handoff.conversation_id
        answer = None if handoff.answer is None else self._privacy.shown(key, handoff.answer)[0]
        return msgspec.structs.replace(
            handoff, question=asked(key, handoff.question), note=asked(key, handoff.note),
            searched=asked(key, handoff.searched), answer=answer)  # fmt: skip

    def _changed(self, asker: Asker, action: str, handoff: Handoff) -> None:
        self._record(asker, action, handoff.id, handoff.conversation_id)
        self._notifier.publish(handoff.user_id, {
            "conversation_id": handoff.conversation_id, "handoff_id": handoff.id,
            "status": handoff.status, "expert": handoff.expert})  # fmt: skip

    def _record(self, asker: Asker, action: str, target: str, detail: str) -> None:
        self._metrics.handoffs.labels(_STEPS.get(action, action)).inc()
        if self._audit is not None:
            self._audit.record(asker.name, action, target, f"via {asker.via}; {detail}")

    @staticmethod
    def _write_new(folder: Path, stem: str, text: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            path = folder / (f"{stem}.md" if n == 1 else f"{stem}-{n}.md")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            except FileExistsError:
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            return path
        raise InvalidRequest(f"too many FAQ files named {stem} in {folder}", param="title")


def _collection(answer: Message | None) -> str | None:
    """The collection (top-level folder) of the answer's first source, if it had one."""
    if answer is None or not answer.citations:
        return None
    for citation in json.loads(answer.citations):
        source = str(citation.get("source", ""))
        if "/" in source:
            return source.split("/", 1)[0]
    return None


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:_SLUG_WORDS]
    return "-".join(words) or "faq"
