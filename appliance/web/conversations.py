"""The chat page's API: conversations, their messages, and answers streamed over SSE."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from litestar import Controller, delete, get, patch, post
from litestar.response import Stream

from appliance.chat.service import ChatEvent, Finished, Started
from appliance.llm.types import TokenEvent
from appliance.store.conversations import Conversation, Message
from appliance.web.deps import JSONBody, LlmDep, PathId, ServicesDep
from appliance.web.markdown import render
from appliance.web.schemas import (
    ConversationView,
    MessageView,
    NewConversation,
    PostMessage,
    RenameConversation,
    Sampling,
    message_view,
)
from appliance.web.sse import SSE_HEADERS, sse

# How often the page gets the streamed answer rendered as Markdown; each render re-parses the
# whole answer so far, so this bounds the cost to a few parses a second.
RENDER_INTERVAL_S = 0.3


class ConversationController(Controller):
    path = "/api/conversations"

    @get("/")
    async def list_all(self, services: ServicesDep) -> list[ConversationView]:
        return [_view(c) for c in services.chat.conversations.recent()]

    @post("/")
    async def create(
        self, data: JSONBody[NewConversation], services: ServicesDep
    ) -> ConversationView:
        return _view(services.chat.conversations.create(data.title))

    @get("/{conversation_id:str}")
    async def show(self, conversation_id: PathId, services: ServicesDep) -> ConversationView:
        store = services.chat.conversations
        conv = store.get(conversation_id)
        return _view(conv, [_message(m) for m in store.messages(conversation_id)])

    @patch("/{conversation_id:str}")
    async def rename(
        self, conversation_id: PathId, data: JSONBody[RenameConversation], services: ServicesDep
    ) -> ConversationView:
        return _view(services.chat.conversations.rename(conversation_id, data.title))

    @delete("/{conversation_id:str}")
    async def remove(self, conversation_id: PathId, services: ServicesDep) -> None:
        services.chat.conversations.delete(conversation_id)

    @post("/{conversation_id:str}/messages", status_code=200)
    async def post_message(
        self, conversation_id: PathId, data: JSONBody[PostMessage], services: ServicesDep,
        llm_settings: LlmDep,
    ) -> Stream:  # fmt: skip
        events = services.chat.reply(conversation_id, data.content, data.params(llm_settings))
        return await _stream(events)

    @post("/{conversation_id:str}/regenerate", status_code=200)
    async def regenerate(
        self,
        conversation_id: PathId,
        data: JSONBody[Sampling],
        services: ServicesDep,
        llm_settings: LlmDep,
    ) -> Stream:
        events = services.chat.regenerate(conversation_id, data.params(llm_settings))
        return await _stream(events)


async def _stream(events: AsyncIterator[ChatEvent]) -> Stream:
    """Pull the first event before answering, so that a refused request is an HTTP error."""
    first = await anext(events)
    return Stream(_sse(first, events), media_type="text/event-stream", headers=SSE_HEADERS)


async def _sse(first: ChatEvent, events: AsyncIterator[ChatEvent]) -> AsyncIterator[bytes]:
    """The events, plus a `render` event with the answer so far as HTML a few times a second."""
    yield _encode(first)
    text, rendered_at = "", time.monotonic()
    async for event in events:
        yield _encode(event)
        if isinstance(event, TokenEvent):
            text += event.text
            if time.monotonic() - rendered_at >= RENDER_INTERVAL_S:
                yield sse({"html": render(text)}, "render")
                rendered_at = time.monotonic()


def _encode(event: ChatEvent) -> bytes:
    if isinstance(event, TokenEvent):
        return sse({"text": event.text}, "token")
    if isinstance(event, Started):
        user = event.user_message and _message(event.user_message)
        return sse({"conversation_id": event.conversation_id, "user_message": user}, "start")
    assert isinstance(event, Finished)  # noqa: S101 - ChatEvent has three members
    return sse({"message": _message(event.message), "finish_reason": event.finish_reason}, "done")


def _message(message: Message) -> MessageView:
    return message_view(message, render(message.content) if message.role == "assistant" else None)


def _view(conv: Conversation, messages: list[MessageView] | None = None) -> ConversationView:
    return ConversationView(id=conv.id, title=conv.title, created_at=conv.created_at,
                            updated_at=conv.updated_at, messages=messages)  # fmt: skip
