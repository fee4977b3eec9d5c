"""The chat use case: conversations on the page, and stateless completions for the API."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from typing import Literal

import msgspec

from appliance.accounts.limits import ChatLimits
from appliance.errors import ApplianceError, Conflict, InvalidRequest, NotFound, TooLarge
from appliance.llm.engine import Engine, Generation
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    Event,
    GenerationRequest,
    SamplingParams,
    TokenEvent,
)
from appliance.pii.policy import AnswerFilter, Prepared, Privacy, Span
from appliance.store.conversations import Conversation, ConversationStore, Message
from appliance.store.feedback import FeedbackStore

log = logging.getLogger(__name__)

_TITLE_CHARS = 60


class Shown(msgspec.Struct, frozen=True, kw_only=True):
    """A stored message as its owner sees it: placeholders put back; `pii` marks the spans
    that were personal data (the model saw placeholders or types there)."""

    message: Message
    pii: list[Span]


class Started(msgspec.Struct, frozen=True, kw_only=True):
    """The engine accepted the request; `user_message` is None when regenerating."""

    conversation_id: str
    user_message: Shown | None


class Finished(msgspec.Struct, frozen=True, kw_only=True):
    """The answer is complete and stored as `message`."""

    message: Shown
    finish_reason: Literal["stop", "length", "cancelled"]


ChatEvent = Started | TokenEvent | Finished
_First = tuple[Event, AsyncIterator[Event]]


class ChatService:
    def __init__(self, engine: Engine, conversations: ConversationStore, privacy: Privacy,
                 feedback: FeedbackStore, limits: ChatLimits | None = None,
                 max_chars: int = 20_000) -> None:  # fmt: skip
        self.engine = engine
        self.feedback = feedback
        self._limits = limits or ChatLimits(per_minute=10**9, concurrent=10**9)
        self._max_chars = max_chars
        self._store = conversations
        self.privacy = privacy
        self._answering: set[str] = set()  # conversations with an answer in flight

    # ---- conversations ----------------------------------------------------------------

    # Every call names the user: a conversation of another user is "not found" (404), whether
    # it is read, continued, renamed or deleted.

    def conversations(self, user_id: int | None) -> list[Conversation]:
        return [self._titled(c) for c in self._store.recent(user_id)]

    def start(self, user_id: int | None, title: str) -> Conversation:
        return self._store.create(self.privacy.stored(title) if title else title, user_id)

    def show(self, user_id: int | None, conversation_id: str) -> tuple[Conversation, list[Shown]]:
        conversation = self._titled(self._store.get(conversation_id, user_id))
        return conversation, [self._shown(m) for m in self._store.messages(conversation_id)]

    def rename(self, user_id: int | None, conversation_id: str, title: str) -> Conversation:
        self._store.get(conversation_id, user_id)
        stored = self.privacy.stored(title, conversation_id)
        return self._titled(self._store.rename(conversation_id, stored))

    def delete(self, user_id: int | None, conversation_id: str) -> None:
        self._store.get(conversation_id, user_id)
        if conversation_id in self._answering:
            raise Conflict("this conversation is still answering; press Stop first")
        self._store.delete(conversation_id)
        self.privacy.forget(conversation_id)

    def rate(self, user_id: int | None, conversation_id: str, message_id: int, up: bool,
             comment: str = "") -> None:  # fmt: skip
        """Thumbs up or down on one of the user's answers; the comment is stored redacted."""
        self._store.get(conversation_id, user_id)
        answer = [m for m in self._store.messages(conversation_id)
                  if m.id == message_id and m.role == "assistant"]  # fmt: skip
        if not answer:
            raise NotFound(f"no answer {message_id} in conversation {conversation_id}")
        stored = self.privacy.stored(comment, conversation_id) if comment.strip() else ""
        self.feedback.rate(message_id, user_id, 1 if up else -1, stored)

    def export(self, user_id: int | None) -> list[tuple[Conversation, list[Shown]]]:
        """All of a user's conversations with their messages, as the user sees them."""
        return [self.show(user_id, c.id) for c in self._store.recent(user_id, limit=10**9)]

    def delete_all(self, user_id: int | None) -> int:
        ids = [c.id for c in self._store.recent(user_id, limit=10**9)]
        if self._answering.intersection(ids):
            raise Conflict("a conversation is still answering; press Stop first")
        for conversation_id in ids:
            self.privacy.forget(conversation_id)
        return self._store.delete_all(user_id)

    def purge(self, older_than_days: int) -> int:
        """Retention: deletes conversations untouched for that many days; returns how many."""
        gone = self._store.delete_older(time.time() - older_than_days * 86400)
        for conversation_id in gone:
            self.privacy.forget(conversation_id)
        return len(gone)

    def _shown(self, message: Message) -> Shown:
        content, spans = self.privacy.shown(message.conversation_id, message.content)
        return Shown(message=msgspec.structs.replace(message, content=content), pii=spans)

    def _titled(self, conversation: Conversation) -> Conversation:
        title, _ = self.privacy.shown(conversation.id, conversation.title)
        return msgspec.structs.replace(conversation, title=title)

    # ---- answers ------------------------------------------------------------------------

    async def complete(
        self, user_id: int | None, messages: tuple[ChatMessage, ...], params: SamplingParams
    ) -> AsyncGenerator[Event, None]:
        """A stateless completion (the OpenAI API): engine events, nothing stored."""
        if not messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        self._check_size(sum(len(m.content) for m in messages), "messages")
        key = f"request-{uuid.uuid4().hex}"  # pseudonyms live as long as the request
        try:
            with self._limits.request(user_id):
                async for event in self._complete(key, messages, params):
                    yield event
        finally:
            self.privacy.forget(key)

    def _check_size(self, chars: int, param: str) -> None:
        if chars > self._max_chars:
            raise TooLarge(f"the message has {chars:,} characters, over the limit of "
                           f"{self._max_chars:,} (limits.max_message_chars); shorten it or "
                           "split it in parts")  # fmt: skip

    async def _complete(self, key: str, messages: tuple[ChatMessage, ...],
                        params: SamplingParams) -> AsyncGenerator[Event, None]:  # fmt: skip
        if self.privacy.policy.prompts != "off":  # nothing is stored here: else no analysis
            messages = await asyncio.to_thread(self._for_model, key, messages)  # spaCy: a thread
        shown = self.privacy.answer_filter(key)
        generation = self.engine.submit(GenerationRequest(messages=messages, params=params))
        try:
            async for event in generation:
                if isinstance(event, TokenEvent):
                    if text := shown.feed(event.text):
                        yield TokenEvent(text)
                    continue
                if rest := shown.flush():
                    yield TokenEvent(rest)
                yield event
        finally:
            generation.cancel()

    def _for_model(self, key: str, messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
        return tuple(ChatMessage(m.role, self.privacy.prepare(key, m.content).model_text)
                     for m in messages)  # fmt: skip

    def reply(
        self, user_id: int | None, conversation_id: str, content: str, params: SamplingParams
    ) -> AsyncGenerator[ChatEvent, None]:
        """Answer a new user message; it is stored only once the engine has taken the request."""
        if not content.strip():
            raise InvalidRequest("the message is empty; type a question", param="content")
        self._check_size(len(content), "content")
        self._store.get(conversation_id, user_id)
        messages = self._store.messages(conversation_id)
        stored = [m.content for m in messages]
        earlier = self._history(conversation_id, messages)
        prepared: list[Prepared] = []

        async def history() -> tuple[ChatMessage, ...]:
            # The redactor (spaCy) takes tens of milliseconds: not on the event loop.
            prepared.append(await asyncio.to_thread(self.privacy.prepare, conversation_id,
                                                    content, stored))  # fmt: skip
            return (*earlier, ChatMessage("user", prepared[0].model_text))

        def accept() -> Shown:
            if not earlier:
                self._store.rename(conversation_id, _title(prepared[0].stored_text))
            stored = self._store.add_message(conversation_id, "user", prepared[0].stored_text)
            return self._shown(stored)

        return self._respond(user_id, conversation_id, history, params, accept)

    def regenerate(
        self, user_id: int | None, conversation_id: str, params: SamplingParams
    ) -> AsyncGenerator[ChatEvent, None]:
        """Answer the last user message again, replacing the previous answer once accepted."""
        self._store.get(conversation_id, user_id)
        history = self._history(conversation_id)
        if history and history[-1].role == "assistant":
            history = history[:-1]
        if not history or history[-1].role != "user":
            raise InvalidRequest("there is no question to answer again", param="conversation")

        async def same() -> tuple[ChatMessage, ...]:
            return history

        def accept() -> None:
            self._store.drop_trailing_assistant(conversation_id)

        return self._respond(user_id, conversation_id, same, params, accept)

    async def _respond(
        self,
        user_id: int | None,
        conversation_id: str,
        history: Callable[[], Awaitable[tuple[ChatMessage, ...]]],
        params: SamplingParams,
        accept: Callable[[], Shown | None],
    ) -> AsyncGenerator[ChatEvent, None]:
        """Generate from `history`; `accept` records the turn once the engine has started."""
        with self._one_answer_at_a_time(conversation_id), self._limits.request(user_id):
            messages = await history()
            generation = self.engine.submit(GenerationRequest(messages=messages, params=params))
            try:
                first = await _first(generation)
                yield Started(conversation_id=conversation_id, user_message=accept())
                async with aclosing(self._answer(conversation_id, first)) as answer:
                    async for event in answer:
                        yield event
            finally:
                generation.cancel()

    @contextmanager
    def _one_answer_at_a_time(self, conversation_id: str) -> Iterator[None]:
        """Two answers at once would interleave the conversation's turns (two tabs, say)."""
        if conversation_id in self._answering:
            raise Conflict("this conversation is already answering; wait or press Stop")
        self._answering.add(conversation_id)
        try:
            yield
        finally:
            self._answering.discard(conversation_id)

    def _history(self, conversation_id: str,
                 messages: list[Message] | None = None) -> tuple[ChatMessage, ...]:  # fmt: skip
        """The stored turns, with consecutive turns of one role joined into one.

        A question whose answer was never stored (the process died mid-answer) would otherwise
        put two user turns in a row, which many chat templates refuse for good. `messages`: the
        conversation's stored messages, when the caller has read them already.
        """
        turns: list[ChatMessage] = []
        for m in self._store.messages(conversation_id) if messages is None else messages:
            content = self.privacy.for_model(conversation_id, m.content)
            if turns and turns[-1].role == m.role:
                turns[-1] = ChatMessage(turns[-1].role, f"{turns[-1].content}\n\n{content}")
            else:
                turns.append(ChatMessage(m.role, content))  # type: ignore[arg-type]
        return tuple(turns)

    async def _answer(self, conversation_id: str, first: _First) -> AsyncGenerator[ChatEvent, None]:
        """Stream the answer, and store it however the stream ends (a stopped one in part)."""
        event, rest = first
        parts: list[str] = []
        shown = self.privacy.answer_filter(conversation_id)
        done: DoneEvent | None = None
        failed = True
        try:
            while isinstance(event, TokenEvent):
                parts.append(event.text)
                if text := await self._filtered(shown, event.text):
                    yield TokenEvent(text)
                event = await anext(rest)
            if text := shown.flush():
                yield TokenEvent(text)
            done = event
            failed = False
        except BaseException as exc:
            failed = not isinstance(exc, GeneratorExit | asyncio.CancelledError)
            raise
        finally:
            reason = done.finish_reason if done else ("error" if failed else "cancelled")
            message = self._store_answer(conversation_id, "".join(parts), reason, done)
        if message is not None and done is not None:
            yield Finished(message=self._shown(message), finish_reason=done.finish_reason)

    async def _filtered(self, shown: AnswerFilter, piece: str) -> str:
        if self.privacy.policy.output == "redact":  # spaCy at each sentence: not on the loop
            return await asyncio.to_thread(shown.feed, piece)
        return shown.feed(piece)

    def _store_answer(
        self, conversation_id: str, text: str, reason: str, done: DoneEvent | None
    ) -> Message | None:
        try:
            return self._store.add_message(
                conversation_id, "assistant", self.privacy.stored_answer(conversation_id, text),
                finish_reason=reason,
                prompt_tokens=done.prompt_tokens if done else None,
                completion_tokens=done.completion_tokens if done else None,
            )  # fmt: skip
        except ApplianceError as exc:  # e.g. the database closed during shutdown
            log.warning("answer in conversation %s not stored: %s", conversation_id, exc)
            return None


async def _first(generation: Generation) -> _First:
    """Wait for the engine's first event, so that errors surface before anything is stored."""
    events = aiter(generation)
    return await anext(events), events


def _title(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1] + "…"
