"""The chat use case: conversations on the page, and stateless completions for the API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

import msgspec

from appliance.errors import InvalidRequest
from appliance.llm.engine import Engine, Generation
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    Event,
    GenerationRequest,
    SamplingParams,
    TokenEvent,
)
from appliance.store.conversations import ConversationStore, Message

_TITLE_CHARS = 60


class Started(msgspec.Struct, frozen=True, kw_only=True):
    """The engine accepted the request; `user_message` is None when regenerating."""

    conversation_id: str
    user_message: Message | None


class Finished(msgspec.Struct, frozen=True, kw_only=True):
    """The answer is complete (or was stopped) and stored as `message`."""

    message: Message
    finish_reason: Literal["stop", "length", "cancelled"]


ChatEvent = Started | TokenEvent | Finished


class ChatService:
    def __init__(self, engine: Engine, conversations: ConversationStore) -> None:
        self.engine = engine
        self.conversations = conversations

    async def complete(
        self, messages: tuple[ChatMessage, ...], params: SamplingParams
    ) -> AsyncIterator[Event]:
        """A stateless completion (the OpenAI API): engine events, nothing stored."""
        if not messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        async for event in self.engine.submit(GenerationRequest(messages=messages, params=params)):
            yield event

    async def reply(
        self, conversation_id: str, content: str, params: SamplingParams
    ) -> AsyncIterator[ChatEvent]:
        """Answer a new user message; it is stored only once the engine has taken the request."""
        if not content.strip():
            raise InvalidRequest("the message is empty; type a question", param="content")
        conv = self.conversations.get(conversation_id)
        history = (*self._history(conversation_id), ChatMessage("user", content))
        generation = self.engine.submit(GenerationRequest(messages=history, params=params))
        first = await _first(generation)
        if not self.conversations.messages(conversation_id):
            self.conversations.rename(conversation_id, _title(content))
        user = self.conversations.add_message(conv.id, "user", content)
        yield Started(conversation_id=conv.id, user_message=user)
        async for event in self._answer(conv.id, generation, first):
            yield event

    async def regenerate(
        self, conversation_id: str, params: SamplingParams
    ) -> AsyncIterator[ChatEvent]:
        """Answer the last user message again, replacing the previous answer once accepted."""
        history = self._history(conversation_id)
        if history and history[-1].role == "assistant":
            history = history[:-1]
        if not history or history[-1].role != "user":
            raise InvalidRequest("there is no question to answer again", param="conversation")
        generation = self.engine.submit(GenerationRequest(messages=history, params=params))
        first = await _first(generation)
        self.conversations.drop_trailing_assistant(conversation_id)
        yield Started(conversation_id=conversation_id, user_message=None)
        async for event in self._answer(conversation_id, generation, first):
            yield event

    def _history(self, conversation_id: str) -> tuple[ChatMessage, ...]:
        self.conversations.get(conversation_id)
        return tuple(
            ChatMessage(m.role, m.content)  # type: ignore[arg-type]  # roles are checked by SQLite
            for m in self.conversations.messages(conversation_id)
        )

    async def _answer(
        self, conversation_id: str, generation: Generation, first: _First
    ) -> AsyncIterator[ChatEvent]:
        event, rest = first
        parts: list[str] = []
        done: DoneEvent | None = None
        try:
            while True:
                if isinstance(event, DoneEvent):
                    done = event
                    break
                parts.append(event.text)
                yield event
                event = await anext(rest)
        finally:
            generation.cancel()
            # A stopped answer is kept as far as it got, as the page showed it.
            reason = done.finish_reason if done else "cancelled"
            message = self.conversations.add_message(
                conversation_id, "assistant", "".join(parts), finish_reason=reason,
                prompt_tokens=done.prompt_tokens if done else None,
                completion_tokens=done.completion_tokens if done else None,
            )  # fmt: skip
        yield Finished(message=message, finish_reason=reason)


_First = tuple[Event, AsyncIterator[Event]]


async def _first(generation: Generation) -> _First:
    """Wait for the engine's first event, so that errors surface before anything is stored."""
    events = aiter(generation)
    try:
        return await anext(events), events
    except BaseException:
        generation.cancel()  # also when the client went away while the request was queued
        raise


def _title(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1] + "…"
