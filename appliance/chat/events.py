"""What the chat use cases hand the web layer: who asks, and the events of an answer."""

from __future__ import annotations

from typing import Literal

import msgspec

from appliance.llm.types import QueuedEvent, TokenEvent
from appliance.pii.policy import Span
from appliance.rag.answer import Citation, Kind
from appliance.store.audience import Reader
from appliance.store.conversations import Message


class Asker(msgspec.Struct, frozen=True, kw_only=True):
    """Who makes a request, as the audit log records it: the account (None: signed-in
    checks off), its name, and how it came (`session` or `api key`); and the documents it
    may be answered from."""

    id: int | None
    name: str = "-"
    via: str = "session"
    # whose documents the answer may come from: by default those of everyone only
    reader: Reader = Reader()


class Shown(msgspec.Struct, frozen=True, kw_only=True):
    """A stored message as its owner sees it: placeholders put back; `pii` marks the spans
    that were personal data (the model saw placeholders or types there); `citations` are the
    sources an answer was given."""

    message: Message
    pii: list[Span]
    citations: list[Citation] = msgspec.field(default_factory=list)


class Sources(msgspec.Struct, frozen=True, kw_only=True):
    """What retrieval gave an answer: the first event of a completion (the OpenAI API)."""

    kind: Kind
    citations: list[Citation]
    query: str


class Started(msgspec.Struct, frozen=True, kw_only=True):
    """The engine accepted the request; `user_message` is None when regenerating."""

    conversation_id: str
    user_message: Shown | None
    sources: Sources


class Finished(msgspec.Struct, frozen=True, kw_only=True):
    """The answer is complete and stored as `message`."""

    message: Shown
    finish_reason: Literal["stop", "length", "cancelled"]


ChatEvent = Started | QueuedEvent | TokenEvent | Finished
