"""The OpenAI-compatible API: /v1/chat/completions and /v1/models."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Stream

from appliance.chat.events import Sources
from appliance.llm.types import DoneEvent, TokenEvent
from appliance.rag.answer import Citation
from appliance.web.conversations import asker
from appliance.web.deps import JSONBody, LlmDep, ReaderDep, ServicesDep, UserDep
from appliance.web.disconnect import until_disconnect
from appliance.web.errors import describe
from appliance.web.schemas import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ErrorResponse,
    ModelCard,
    ModelList,
    PromptTokensDetails,
    Usage,
)
from appliance.web.sse import sse
from appliance.web.streaming import event_stream, first_event

Answer = TokenEvent | DoneEvent


class OpenAIController(Controller):
    path = "/v1"

    @get("/models")
    async def models(self, services: ServicesDep) -> ModelList:
        """The model served: the one `model` may name (or `default`)."""
        return ModelList(data=[ModelCard(id=services.models.served_id())])

    @post("/chat/completions", status_code=200)
    async def chat_completions(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[ChatCompletionRequest],
        services: ServicesDep,
        llm_settings: LlmDep,
        user: UserDep,
        reader: ReaderDep,
    ) -> ChatCompletion | Stream:
        model = services.models.resolve(data.model)  # another model's answer is no answer
        params = data.params(llm_settings, data.max_completion_tokens)
        events = services.chat.complete(asker(request, user, reader), data.chat_messages(), params,
                                        tuple(data.collections), data.documents, model)  # fmt: skip
        sources = await first_event(request, events)
        assert isinstance(sources, Sources)  # noqa: S101 - complete() starts with them
        answer = _answer(events)
        first = await first_event(request, answer)  # past the queue: errors are HTTP errors
        if data.stream:
            usage = data.stream_options is not None and data.stream_options.include_usage
            return event_stream(_chunks(first, answer, model, sources.citations,
                                        include_usage=usage))  # fmt: skip
        async with aclosing(answer):
            return await until_disconnect(request, _collect(first, answer, model,
                                                            sources.citations))  # fmt: skip


async def _answer(events: AsyncGenerator[object, None]) -> AsyncGenerator[Answer, None]:
    """The engine's events but its places in line while queued: OpenAI's API has no word for
    them (the client waits for its first chunk, as for a slow first token)."""
    async with aclosing(events):
        async for event in events:
            if isinstance(event, TokenEvent | DoneEvent):
                yield event


async def _collect(first: Answer, events: AsyncIterator[Answer], model: str,
                   citations: list[Citation]) -> ChatCompletion:  # fmt: skip
    parts: list[str] = []
    event = first
    while isinstance(event, TokenEvent):
        parts.append(event.text)
        event = await anext(events)
    return ChatCompletion(
        id=_completion_id(), created=int(time.time()), model=model,
        choices=[Choice(index=0, message=AssistantMessage("".join(parts), citations=citations),
                        finish_reason=event.finish_reason)],
        usage=_usage(event),
    )  # fmt: skip


async def _chunks(
    first: Answer,
    events: AsyncGenerator[Answer, None],
    model: str,
    citations: list[Citation],
    *,
    include_usage: bool,
) -> AsyncGenerator[bytes, None]:
    """OpenAI's chunks; a failure part way is sent as `data: {"error": ...}`, as OpenAI does."""
    cid, created = _completion_id(), int(time.time())

    def chunk(delta: Delta, finish: str | None = None, usage: Usage | None = None) -> bytes:
        choices = [] if usage else [ChunkChoice(index=0, delta=delta, finish_reason=finish)]
        cited = citations if finish else None
        return sse(ChatCompletionChunk(id=cid, created=created, model=model, choices=choices,
                                       object="chat.completion.chunk", usage=usage,
                                       citations=cited))  # fmt: skip

    event = first
    async with aclosing(events):
        yield chunk(Delta(role="assistant", content=""))
        try:
            while isinstance(event, TokenEvent):
                yield chunk(Delta(content=event.text))
                event = await anext(events)
        except Exception as exc:
            yield sse(ErrorResponse(describe(exc)[1]))
            return
    yield chunk(Delta(), event.finish_reason)
    if include_usage:
        yield chunk(Delta(), usage=_usage(event))
    yield sse(b"[DONE]")


def _usage(done: DoneEvent) -> Usage:
    total = done.prompt_tokens + done.completion_tokens
    return Usage(done.prompt_tokens, done.completion_tokens, total,
                 PromptTokensDetails(cached_tokens=done.cached_tokens))


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"
