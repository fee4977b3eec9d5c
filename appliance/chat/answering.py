"""Answering, for the page and the OpenAI API alike: ground the question in the documents
or decline it, generate, pass the answer through the privacy filter, store it (the page's
conversations), and audit who asked and what the answer was given; one path for both."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from functools import partial
from typing import TypeVar

import anyio

from appliance.accounts.limits import ChatLimits
from appliance.chat.citations import stored as stored_citations
from appliance.chat.conversations import Conversations
from appliance.chat.events import Asker, ChatEvent, Finished, Shown, Sources, Started
from appliance.chat.route import Router
from appliance.errors import ApplianceError, InvalidRequest, TooLarge
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
from appliance.ops.metrics import Metrics
from appliance.pii.policy import Prepared
from appliance.rag.answer import Citation, Grounded, Grounding, plain
from appliance.store.audience import Reader
from appliance.store.audit import AuditLog
from appliance.store.conversations import Message

log = logging.getLogger(__name__)
T = TypeVar("T")

_TITLE_CHARS = 60
_TO_A_PERSON = (
    "You asked for a person. Press **Ask an expert** below and your question goes to the "
    "people who answer for the company's documents; their answer will appear in this "
    "conversation, with their name. Add a note there if the question needs more context."
)
_First = tuple[Event, AsyncIterator[Event]]
_Turns = tuple[list[Message], tuple[ChatMessage, ...], tuple[ChatMessage, ...]]
_Prepare = Callable[[], Awaitable[Grounded]]


class Answering:
    def __init__(
        self, engine: Engine, conversations: Conversations, limits: ChatLimits | None = None,
        max_chars: int = 20_000, grounding: Grounding | None = None,
        audit: AuditLog | None = None, router: Router | None = None,
        metrics: Metrics | None = None,
    ) -> None:  # fmt: skip
        """`router`: which messages go to the documents (without one, all do)."""
        self.engine = engine
        self._conversations = conversations
        self._store = conversations.store
        self.privacy = conversations.privacy
        self._grounding = grounding
        self._router = router
        self._audit = audit
        self._limits = limits or ChatLimits(per_minute=10**9, concurrent=10**9)
        self._max_chars = max_chars
        self._metrics = metrics or Metrics()

    # ---- the three ways in, each audited ----------------------------------------------

    async def complete(
        self, asker: Asker, messages: tuple[ChatMessage, ...], params: SamplingParams,
        collections: tuple[str, ...] = (), documents: bool = True, model: str | None = None,
    ) -> AsyncGenerator[Sources | Event, None]:  # fmt: skip
        """A stateless completion (the OpenAI API): the sources, then engine events; nothing
        is stored. `documents=False`: no retrieval, whatever rag.mode says. `model`: the id of
        the model the caller was told answers (None: the one served when it is submitted)."""
        events = self._complete(asker.id, messages, params, collections, documents, model,
                                asker.reader)
        async with aclosing(self._audited(asker, "chat", "api", events)) as audited:
            async for event in audited:
                yield event

    async def reply(
        self, asker: Asker, conversation_id: str, content: str, params: SamplingParams,
        collections: tuple[str, ...] = (),
    ) -> AsyncGenerator[ChatEvent, None]:
        """Answer a new user message; it is stored only once the engine has taken the request."""
        events = self._reply(asker.id, conversation_id, content, params, collections, asker.reader)
        async with aclosing(self._audited(asker, "chat", conversation_id, events)) as audited:
            async for event in audited:
                yield event

    async def regenerate(
        self, asker: Asker, conversation_id: str, params: SamplingParams,
        collections: tuple[str, ...] = (),
    ) -> AsyncGenerator[ChatEvent, None]:
        """Answer the last user message again, replacing the previous answer once accepted."""
        events = self._regenerate(asker.id, conversation_id, params, collections, asker.reader)
        async with aclosing(self._audited(asker, "chat.regenerate", conversation_id,
                                          events)) as audited:  # fmt: skip
            async for event in audited:
                yield event

    async def _audited(
        self, asker: Asker, action: str, target: str, events: AsyncGenerator[T, None]
    ) -> AsyncGenerator[T, None]:
        """`events`, once the audit log has recorded who asked, how (session or API key), and
        the documents the answer was given, or why it was refused; never what was asked."""
        async with aclosing(events):
            try:
                first = await anext(events)
            except ApplianceError as exc:
                await self._record(asker, action, target, f"refused ({type(exc).__name__})")
                raise
            sources = first.sources if isinstance(first, Started) else first
            if isinstance(sources, Sources):
                self._metrics.answer(sources.kind)
                documents = sorted({c.source for c in sources.citations})
                await self._record(asker, action, target, f"{sources.kind}; documents {documents}")
            yield first
            async for event in events:
                yield event

    async def _record(self, asker: Asker, action: str, target: str, detail: str) -> None:
        if self._audit is not None:  # a write behind the one SQLite lock: not on the loop
            await asyncio.to_thread(self._audit.record, asker.name, action, target,
                                    f"via {asker.via}; {detail}")  # fmt: skip

    # ---- the OpenAI API: nothing stored -----------------------------------------------

    async def _complete(
        self, user_id: int | None, messages: tuple[ChatMessage, ...], params: SamplingParams,
        collections: tuple[str, ...], documents: bool, model: str | None, reader: Reader,
    ) -> AsyncGenerator[Sources | Event, None]:  # fmt: skip
        if not messages:
            raise InvalidRequest("messages must not be empty", param="messages")
        self._check_size(sum(len(m.content) for m in messages), "messages")
        key = f"request-{uuid.uuid4().hex}"  # pseudonyms live as long as the request
        try:
            with self._limits.request(user_id):
                typed = messages
                if self.privacy.policy.prompts != "off":  # nothing is stored: else no analysis
                    messages = await asyncio.to_thread(self._for_model, key, messages)
                if documents and messages[-1].role == "user":
                    grounded = await asyncio.to_thread(
                        self._ground, messages[:-1], messages[-1].content, typed, params,
                        collections, reader)  # fmt: skip
                else:
                    grounded = plain(messages)
                yield _sources(grounded)
                # no conversation: a stateless call has no prompt state worth keeping
                first, generation = await self._begin(grounded, params, user_id, None, model)
                try:
                    async for event in self._filtered_events(key, first, []):
                        yield event
                finally:
                    if generation is not None:
                        generation.cancel()
        finally:
            self.privacy.forget(key)

    def _for_model(self, key: str, messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
        return tuple(ChatMessage(m.role, self.privacy.prepare(key, m.content).model_text)
                     for m in messages)  # fmt: skip

    # ---- the page: conversations, stored ----------------------------------------------

    async def _reply(
        self, user_id: int | None, conversation_id: str, content: str, params: SamplingParams,
        collections: tuple[str, ...], reader: Reader,
    ) -> AsyncGenerator[ChatEvent, None]:
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
                                           typed, params, collections, reader)  # fmt: skip

        def accept() -> Shown:
            if not earlier:
                self._store.rename(conversation_id, _title(prepared[0].stored_text))
            stored = self._store.add_message(conversation_id, "user", prepared[0].stored_text)
            return self._conversations.shown(stored)

        async with aclosing(self._respond(user_id, conversation_id, ground, params,
                                          accept)) as events:  # fmt: skip
            async for event in events:
                yield event

    async def _regenerate(
        self, user_id: int | None, conversation_id: str, params: SamplingParams,
        collections: tuple[str, ...], reader: Reader,
    ) -> AsyncGenerator[ChatEvent, None]:
        _, history, typed = await asyncio.to_thread(self._turns, user_id, conversation_id)
        if history and history[-1].role == "assistant":
            history = history[:-1]
        if not history or history[-1].role != "user":
            raise InvalidRequest("there is no question to answer again", param="conversation")
        while typed and typed[-1].role == "assistant":
            typed = typed[:-1]

        async def ground() -> Grounded:
            return await asyncio.to_thread(self._ground, history[:-1], history[-1].content,
                                           typed, params, collections, reader)  # fmt: skip

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
        self, user_id: int | None, conversation_id: str, ground: _Prepare,
        params: SamplingParams, accept: Callable[[], Shown | None],
    ) -> AsyncGenerator[ChatEvent, None]:  # fmt: skip
        """Answer what `ground` prepares; `accept` records the turn once the engine has
        started (at once when the documents don't cover the question: nothing is generated)."""
        with self._conversations.answering(conversation_id), self._limits.request(user_id):
            grounded = await ground()
            first, generation = await self._begin(grounded, params, user_id, conversation_id)
            try:
                accepted = await _kept(accept)  # SQLite: a thread, however the request ends
                yield Started(conversation_id=conversation_id, user_message=accepted,
                              sources=_sources(grounded))  # fmt: skip
                async with aclosing(self._stored(conversation_id, first, grounded.citations,
                                                 grounded.kind)) as answer:  # fmt: skip
                    async for event in answer:
                        yield event
            finally:
                if generation is not None:
                    generation.cancel()

    async def _stored(self, conversation_id: str, first: _First, citations: list[Citation],
                      grounding: str) -> AsyncGenerator[ChatEvent, None]:  # fmt: skip
        """Stream the answer, and store it however the stream ends (a stopped one in part)."""
        parts: list[str] = []
        done: DoneEvent | None = None
        failed = True
        # held, and closed only once the answer is stored: closing it ends the engine's job.
        # (A disconnect that cancels the task while it awaits the engine ends the job at once;
        # the conversation stays busy until the stopped answer is stored all the same.)
        events = self._filtered_events(conversation_id, first, parts)
        try:
            async for event in events:
                if isinstance(event, DoneEvent):
                    done = event
                else:
                    yield event
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
                                          reason, done, citations, grounding))  # fmt: skip
            with anyio.CancelScope(shield=True):
                await events.aclose()
        if message is not None and done is not None:
            shown = self._conversations.shown(message, citations)  # no catalog read on the loop
            yield Finished(message=shown, finish_reason=done.finish_reason)

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
            role = m.role
            if turns and turns[-1].role == role:
                turns[-1] = ChatMessage(turns[-1].role, f"{turns[-1].content}\n\n{content}")
            else:
                turns.append(ChatMessage(role, content))  # type: ignore[arg-type]
        return tuple(turns)

    def _typed(self, conversation_id: str, messages: list[Message]) -> tuple[ChatMessage, ...]:
        """Stored turns with the placeholders of personal data put back, where still known."""
        return tuple(ChatMessage(m.role, self.privacy.shown(conversation_id, m.content)[0])  # type: ignore[arg-type]
                     for m in messages)  # fmt: skip

    def _store_answer(
        self, conversation_id: str, text: str, reason: str, done: DoneEvent | None,
        citations: list[Citation], grounding: str,
    ) -> Message | None:
        try:
            return self._store.add_message(
                conversation_id, "assistant", self.privacy.stored_answer(conversation_id, text),
                finish_reason=reason,
                prompt_tokens=done.prompt_tokens if done else None,
                completion_tokens=done.completion_tokens if done else None,
                citations=stored_citations(citations),  # references: no document text
                grounding=grounding,
            )  # fmt: skip
        except ApplianceError as exc:  # e.g. the database closed during shutdown
            log.warning("answer in conversation %s not stored: %s", conversation_id, exc)
            return None

    # ---- shared by both ---------------------------------------------------------------

    def _check_size(self, chars: int, param: str) -> None:
        if chars > self._max_chars:
            raise TooLarge(f"the message has {chars:,} characters, over the limit of "
                           f"{self._max_chars:,} (limits.max_message_chars); shorten it or "
                           "split it in parts")  # fmt: skip

    def _ground(self, history: tuple[ChatMessage, ...], question: str,
                typed: tuple[ChatMessage, ...], params: SamplingParams,
                collections: tuple[str, ...], reader: Reader) -> Grounded:  # fmt: skip
        """The messages for the model, with sources when documents answer (a thread: this
        embeds the question and tokenizes the prompt). `typed`: the conversation, the
        question last, as the user wrote it (personal data in place), to search with."""
        asked = (*history, ChatMessage("user", question))
        if self._grounding is None or not self._grounding.searches():
            return plain(asked)  # no documents to send it to: nothing to route
        route = self._router.route(typed[-1].content, typed[:-1]) if self._router else None
        if route is not None:
            log.debug("routed to %s: %s", route.kind, route.reason)
            if route.kind == "direct" and route.ruled:  # a task on its own text, writing
                return Grounded(kind="direct", messages=asked, citations=[], query="")
            if route.kind == "person" and route.ruled:  # the embedder's likeness: documents
                return Grounded(kind="person", messages=(), citations=[], query="",
                                answer=_TO_A_PERSON)  # fmt: skip
        grounded = self._grounding.ground(history, question, max_tokens=params.max_tokens,
                                          collections=collections, searched=typed[-1].content,
                                          searched_history=typed[:-1],
                                          reader=reader)  # fmt: skip
        if route is not None and route.kind == "direct" and grounded.kind == "abstained":
            # like general knowledge, and no document speaks to it: the model answers; a
            # question about the company that only looks so is answered from what covers it
            return Grounded(kind="direct", messages=asked, citations=[], query=grounded.query)
        return grounded

    async def _begin(
        self, grounded: Grounded, params: SamplingParams, user_id: int | None,
        conversation_id: str | None, model: str | None = None,
    ) -> tuple[_First, Generation | None]:  # fmt: skip
        """The answer's first event and the rest: the decline as written, when the documents
        don't cover the question (nothing is generated); else the engine's, once it has taken
        the request (a QueuedEvent first while it waits for a slot)."""
        if grounded.kind in ("abstained", "person"):
            return _said(grounded.answer), None
        request = GenerationRequest(messages=grounded.messages, params=params,
                                    user=_whose(user_id), conversation=conversation_id,
                                    model=model)  # fmt: skip
        generation = self.engine.submit(request)
        try:
            events = aiter(generation)
            return (await anext(events), events), generation
        except BaseException:
            generation.cancel()
            raise

    async def _filtered_events(self, key: str, first: _First,
                               parts: list[str]) -> AsyncGenerator[Event, None]:  # fmt: skip
        """The answer's events with its text through the privacy filter of `key` (the
        conversation's, or the request's); the text as generated is appended to `parts`.
        Places in line come only before the first token; the DoneEvent last."""
        event, rest = first
        shown = self.privacy.answer_filter(key)
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
        yield event

    async def _filtered(self, shown: Callable[[], str]) -> str:
        """`shown`: a piece of the answer through its AnswerFilter (feed or flush)."""
        if self.privacy.policy.output == "redact":  # spaCy at each sentence: not on the loop
            return await asyncio.to_thread(shown)
        return shown()


def _sources(grounded: Grounded) -> Sources:
    return Sources(kind=grounded.kind, citations=grounded.citations, query=grounded.query)


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


def _title(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= _TITLE_CHARS else line[: _TITLE_CHARS - 1] + "…"
