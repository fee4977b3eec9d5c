"""The chat use case: conversations on the page, and stateless completions for the API."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing, contextmanager
from functools import partial
from typing import Literal, TypeVar

import anyio
import msgspec

from appliance.accounts.limits import ChatLimits
from appliance.chat.citations import Chunks
from appliance.chat.citations import shown as cited
from appliance.chat.citations import stored as stored_citations
from appliance.errors import ApplianceError, Conflict, InvalidRequest, NotFound, TooLarge
from appliance.llm.engine import Engine, Generation
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    Event,
    GenerationRequest,
    QueuedEvent,
    SamplingParams,
    TokenEvent,
)
from appliance.pii.policy import Prepared, Privacy, Span
from appliance.rag.answer import Citation, Grounded, Grounding, Kind, plain
from appliance.store.conversations import Conversation, ConversationStore, Message
from appliance.store.feedback import FeedbackStore

log = logging.getLogger(__name__)
T = TypeVar("T")

_TITLE_CHARS = 60


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
_First = tuple[Event, AsyncIterator[Event]]
_Turns = tuple[list[Message], tuple[ChatMessage, ...], tuple[ChatMessage, ...]]
_Prepare = Callable[[], Awaitable[Grounded]]


class ChatService:
    def __init__(self, engine: Engine, conversations: ConversationStore, privacy: Privacy,
                 feedback: FeedbackStore, limits: ChatLimits | None = None,
                 max_chars: int = 20_000, grounding: Grounding | None = None, *,
                 chunks: Chunks | None = None) -> None:  # fmt: skip
        """`chunks`: the catalog's chunks by id, which stored citations are shown from."""
        self.engine = engine
        self._chunks = chunks
        self._grounding = grounding
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

    def _shown(self, message: Message, citations: list[Citation] | None = None) -> Shown:
        """`citations`: the answer's own, as just given; else the stored ones, read back."""
        content, spans = self.privacy.shown(message.conversation_id, message.content)
        if citations is None:
            citations = cited(message.citations, self._chunks)
        return Shown(message=msgspec.structs.replace(message, content=content), pii=spans,
                     citations=citations)  # fmt: skip

    def _titled(self, conversation: Conversation) -> Conversation:
        title, _ = self.privacy.shown(conversation.id, conversation.title)
        return msgspec.structs.replace(conversation, title=title)

    # ---- answers ------------------------------------------------------------------------

    def _ground(self, history: tuple[ChatMessage, ...], question: str,
                typed: tuple[ChatMessage, ...], params: SamplingParams,
                collections: tuple[str, ...]) -> Grounded:  # fmt: skip
        """The messages for the model, with sources when documents answer (a thread: this
        embeds the question and tokenizes the prompt). `typed`: the conversation, the
        question last, as the user wrote it (personal data in place), to search with."""
        if self._grounding is None:
            return plain((*history, ChatMessage("user", question)))
        return self._grounding.ground(history, question, max_tokens=params.max_tokens,
                                      collections=collections, searched=typed[-1].content,
                                      searched_history=typed[:-1])  # fmt: skip

    def _typed(self, conversation_id: str, messages: list[Message]) -> tuple[ChatMessage, ...]:
        """Stored turns with the placeholders of personal data put back, where still known."""
        return tuple(ChatMessage(m.role, self.privacy.shown(conversation_id, m.content)[0])  # type: ignore[arg-type]
                     for m in messages)  # fmt: skip

    async def complete(
        self, user_id: int | None, messages: tuple[ChatMessage, ...], params: SamplingParams,
        collections: tuple[str, ...] = (), documents: bool = True,
    ) -> AsyncGenerator[Sources | Event, None]:
        """A stateless completion (the OpenAI API): the sources, then engine events; nothing
        is stored. `documents=False`: no retrieval, whatever rag.mode says."""
        if not messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        self._check_size(sum(len(m.content) for m in messages), "messages")
        key = f"request-{uuid.uuid4().hex}"  # pseudonyms live as long as the request
        try:
            with self._limits.request(user_id):
                answer = self._complete(user_id, key, messages, params, collections, documents)
                async for event in answer:
                    yield event
        finally:
            self.privacy.forget(key)

    def _check_size(self, chars: int, param: str) -> None:
        if chars > self._max_chars:
            raise TooLarge(f"the message has {chars:,} characters, over the limit of "
                           f"{self._max_chars:,} (limits.max_message_chars); shorten it or "
                           "split it in parts")  # fmt: skip

    async def _complete(
        self, user_id: int | None, key: str, messages: tuple[ChatMessage, ...],
        params: SamplingParams, collections: tuple[str, ...], documents: bool,
    ) -> AsyncGenerator[Sources | Event, None]:  # fmt: skip
        typed = messages
        if self.privacy.policy.prompts != "off":  # nothing is stored here: else no analysis
            messages = await asyncio.to_thread(self._for_model, key, messages)  # spaCy: a thread
        if documents and messages[-1].role == "user":
            grounded = await asyncio.to_thread(self._ground, messages[:-1], messages[-1].content,
                                               typed, params, collections)  # fmt: skip
        else:
            grounded = plain(messages)
        yield Sources(kind=grounded.kind, citations=grounded.citations, query=grounded.query)
        if grounded.kind == "abstained":
            yield TokenEvent(grounded.answer)
            yield DoneEvent(finish_reason="stop", prompt_tokens=0, completion_tokens=0)
            return
        shown = self.privacy.answer_filter(key)
        # no conversation: a stateless call has no prompt state worth keeping for its next turn
        request = GenerationRequest(messages=grounded.messages, params=params, user=_whose(user_id))
        generation = self.engine.submit(request)
        try:
            async for event in generation:
                if isinstance(event, TokenEvent):
                    if text := await self._filtered(partial(shown.feed, event.text)):
                        yield TokenEvent(text)
                    continue
                if isinstance(event, DoneEvent) and (rest := await self._filtered(shown.flush)):
                    yield TokenEvent(rest)
                yield event
        finally:
            generation.cancel()

    def _for_model(self, key: str, messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
        return tuple(ChatMessage(m.role, self.privacy.prepare(key, m.content).model_text)
                     for m in messages)  # fmt: skip

    async def reply(
        self, user_id: int | None, conversation_id: str, content: str, params: SamplingParams,
        collections: tuple[str, ...] = (),
    ) -> AsyncGenerator[ChatEvent, None]:
        """Answer a new user message; it is stored only once the engine has taken the request."""
        if not content.strip():
            raise InvalidRequest("the message is empty; type a question", param="content")
        self._check_size(len(content), "content")
        messages, earlier, typed = await asyncio.to_thread(self._turns, user_id, conversation_id)
        stored = [m.content for m in messages]
        typed = (*typed, ChatMessage("user", content))
        prepared: list[Prepared] = []

        async def ground() -> Grounded:
            # The redactor (spaCy) and retrieval take tens of milliseconds: not on the loop.
            prepared.append(await asyncio.to_thread(self.privacy.prepare, conversation_id,
                                                    content, stored))  # fmt: skip
            return await asyncio.to_thread(self._ground, earlier, prepared[0].model_text,
                                           typed, params, collections)  # fmt: skip

        def accept() -> Shown:
            if not earlier:
                self._store.rename(conversation_id, _title(prepared[0].stored_text))
            stored = self._store.add_message(conversation_id, "user", prepared[0].stored_text)
            return self._shown(stored)

        async with aclosing(self._respond(user_id, conversation_id, ground, params,
                                          accept)) as events:  # fmt: skip
            async for event in events:
                yield event

    async def regenerate(
        self, user_id: int | None, conversation_id: str, params: SamplingParams,
        collections: tuple[str, ...] = (),
    ) -> AsyncGenerator[ChatEvent, None]:
        """Answer the last user message again, replacing the previous answer once accepted."""
        _, history, typed = await asyncio.to_thread(self._turns, user_id, conversation_id)
        if history and history[-1].role == "assistant":
            history = history[:-1]
        if not history or history[-1].role != "user":
            raise InvalidRequest("there is no question to answer again", param="conversation")
        while typed and typed[-1].role == "assistant":
            typed = typed[:-1]

        async def ground() -> Grounded:
            return await asyncio.to_thread(self._ground, history[:-1], history[-1].content,
                                           typed, params, collections)  # fmt: skip

        def accept() -> None:
            self._store.drop_trailing_assistant(conversation_id)

        async with aclosing(self._respond(user_id, conversation_id, ground, params,
                                          accept)) as events:  # fmt: skip
            async for event in events:
                yield event

    def _turns(self, user_id: int | None, conversation_id: str) -> _Turns:
        """The user's conversation as stored, as the model sees it, and as the user typed it
        (SQLite reads: on a thread)."""
        self._store.get(conversation_id, user_id)
        messages = self._store.messages(conversation_id)
        return (messages, self._history(conversation_id, messages),
                self._typed(conversation_id, messages))  # fmt: skip

    async def _respond(
        self,
        user_id: int | None,
        conversation_id: str,
        ground: _Prepare,
        params: SamplingParams,
        accept: Callable[[], Shown | None],
    ) -> AsyncGenerator[ChatEvent, None]:
        """Answer what `ground` prepares; `accept` records the turn once the engine has
        started (at once when the documents don't cover the question: nothing is generated)."""
        with self._one_answer_at_a_time(conversation_id), self._limits.request(user_id):
            grounded = await ground()
            sources = Sources(kind=grounded.kind, citations=grounded.citations,
                              query=grounded.query)  # fmt: skip
            if grounded.kind == "abstained":
                accepted = await _kept(accept)  # SQLite: a thread, however the request ends
                yield Started(conversation_id=conversation_id, user_message=accepted,
                              sources=sources)  # fmt: skip
                async with aclosing(self._answer(conversation_id, _said(grounded.answer),
                                                 [])) as answer:  # fmt: skip
                    async for event in answer:
                        yield event
                return
            request = GenerationRequest(
                messages=grounded.messages,
                params=params,
                user=_whose(user_id),
                conversation=conversation_id,
            )
            generation = self.engine.submit(request)
            try:
                first = await _first(generation)  # a QueuedEvent when it waits for a slot
                accepted = await _kept(accept)
                yield Started(conversation_id=conversation_id, user_message=accepted,
                              sources=sources)  # fmt: skip
                async with aclosing(self._answer(conversation_id, first,
                                                 grounded.citations)) as answer:  # fmt: skip
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

    async def _answer(self, conversation_id: str, first: _First,
                      citations: list[Citation]) -> AsyncGenerator[ChatEvent, None]:  # fmt: skip
        """Stream the answer, and store it however the stream ends (a stopped one in part);
        while the request waits for a slot, its place in line (QueuedEvent, before any token)."""
        event, rest = first
        parts: list[str] = []
        shown = self.privacy.answer_filter(conversation_id)
        done: DoneEvent | None = None
        failed = True
        try:
            while not isinstance(event, DoneEvent):
                if isinstance(event, QueuedEvent):
                    yield event
                else:
                    parts.append(event.text)
                    if text := await self._filtered(partial(shown.feed, event.text)):
                        yield TokenEvent(text)
                event = await anext(rest)
            if text := await self._filtered(shown.flush):
                yield TokenEvent(text)
            done = event
            failed = False
        except BaseException as exc:
            failed = not isinstance(exc, GeneratorExit | asyncio.CancelledError)
            raise
        finally:
            reason = done.finish_reason if done else ("error" if failed else "cancelled")
            # the redactor reads the whole answer (tens of ms): a thread, which a stopped
            # answer waits for too, so that it is stored before the engine or the
            # conversation is free for the next question
            message = await _kept(partial(self._store_answer, conversation_id, "".join(parts),
                                          reason, done, citations))  # fmt: skip
        if message is not None and done is not None:
            shown_message = self._shown(message, citations)  # no catalog read on the loop
            yield Finished(message=shown_message, finish_reason=done.finish_reason)

    async def _filtered(self, shown: Callable[[], str]) -> str:
        """`shown`: a piece of the answer through its AnswerFilter (feed or flush)."""
        if self.privacy.policy.output == "redact":  # spaCy at each sentence: not on the loop
            return await asyncio.to_thread(shown)
        return shown()

    def _store_answer(
        self, conversation_id: str, text: str, reason: str, done: DoneEvent | None,
        citations: list[Citation],
    ) -> Message | None:
        try:
            return self._store.add_message(
                conversation_id, "assistant", self.privacy.stored_answer(conversation_id, text),
                finish_reason=reason,
                prompt_tokens=done.prompt_tokens if done else None,
                completion_tokens=done.completion_tokens if done else None,
                citations=stored_citations(citations),  # references: no document text
            )  # fmt: skip
        except ApplianceError as exc:  # e.g. the database closed during shutdown
            log.warning("answer in conversation %s not stored: %s", conversation_id, exc)
            return None


def _whose(user_id: int | None) -> str:
    """The engine's name for a user (its turns, its cached prompts): the account's id, which
    its API keys share; never the name, which may be personal data and reach a log line."""
    return "" if user_id is None else f"user-{user_id}"


def _said(answer: str) -> _First:
    """A fixed answer as the events the engine would send."""

    async def rest() -> AsyncIterator[Event]:
        yield DoneEvent(finish_reason="stop", prompt_tokens=0, completion_tokens=0)

    return TokenEvent(answer), aiter(rest())


async def _kept(work: Callable[[], T]) -> T:
    """`work` on a thread, waited for to its end even when the caller is being cancelled (a
    client that disconnects mid-answer: Litestar and the disconnect watch cancel by anyio scope,
    which would cancel any await of the generator's `finally` again; a plain cancel, at
    shutdown, stops the wait but not the work)."""
    with anyio.CancelScope(shield=True):
        done = await asyncio.shield(asyncio.to_thread(work))
    return done


async def _first(generation: Generation) -> _First:
    """Wait for the engine's first event, so that errors surface before anything is stored."""
    events = aiter(generation)
    return await anext(events), events


def _title(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1] + "…"
