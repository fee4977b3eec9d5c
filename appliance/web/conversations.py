"""The chat page's API: conversations, their messages, and answers streamed over SSE."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, TypeVar

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.response import Stream

from appliance.chat.events import Asker, ChatEvent, Finished, Shown, Started
from appliance.errors import NotFound
from appliance.llm.types import QueuedEvent, TokenEvent
from appliance.store.audience import Reader
from appliance.store.conversations import Conversation, is_conversation_id
from appliance.store.users import User
from appliance.web.deps import JSONBody, LlmDep, PathId, ReaderDep, ServicesDep, UserDep
from appliance.web.errors import describe
from appliance.web.markdown import StreamedHtml, render
from appliance.web.schemas import (
    ConversationView,
    DoneData,
    ErrorResponse,
    ExportView,
    MessageView,
    NewConversation,
    PiiSpan,
    PostMessage,
    QueuedData,
    Regenerate,
    RenameConversation,
    RenderData,
    StartData,
    TokenData,
    handoff_view,
    message_view,
)
from appliance.web.sse import sse
from appliance.web.streaming import event_stream, first_event

T = TypeVar("T")

# How often the page gets the streamed answer rendered as Markdown (its last blocks: those
# that may still change).
RENDER_INTERVAL_S = 0.3


def known_conversation(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A `conversation_id` not of the store's format is not found before anything is read,
    audited or echoed (the page pastes ids from its address; a client may send anything)."""
    conversation_id = connection.path_params.get("conversation_id")
    if conversation_id is not None and not is_conversation_id(conversation_id):
        raise NotFound("no such conversation: a conversation id is 32 hexadecimal digits, as "
                       "GET /api/conversations lists them")  # fmt: skip


class ConversationController(Controller):
    """Reads and deletes run SQLite (and the catalog, for citations): in threads."""

    path = "/api/conversations"
    guards = [known_conversation]  # noqa: RUF012 - Litestar's own attribute

    @get("/", sync_to_thread=True)
    def list_all(self, services: ServicesDep, user: UserDep) -> list[ConversationView]:
        unseen = services.conversations.unseen(user.id)
        return [_view(c, unseen=unseen.get(c.id, 0))
                for c in services.conversations.conversations(user.id)]  # fmt: skip

    @get("/export", sync_to_thread=True)
    def export(
        self, request: Request[Any, Any, Any], services: ServicesDep, user: UserDep
    ) -> Response[ExportView]:
        """All of the user's conversations as one JSON file (their right to a copy)."""
        exported = services.conversations.export(asker(request, user))
        data = [_view(c, [_message(m, services.link_hosts) for m in messages])
                for c, messages in exported]  # fmt: skip
        name = f"conversations-{user.name}-{time.strftime('%Y%m%d')}.json"
        handoffs = [handoff_view(h) for h in services.handoffs.exported(user.id)]
        return Response(
            ExportView(user=user.name, exported_at=time.time(), conversations=data,
                       handoffs=handoffs),
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    @delete("/", status_code=200, sync_to_thread=True)
    def remove_all(
        self, request: Request[Any, Any, Any], services: ServicesDep, user: UserDep
    ) -> dict[str, int]:
        """Deletes every conversation of the user."""
        return {"deleted": services.conversations.delete_all(user.id, asker(request, user))}

    @post("/", sync_to_thread=True)  # the title is redacted (spaCy): not on the event loop
    def create(
        self, data: JSONBody[NewConversation], services: ServicesDep, user: UserDep
    ) -> ConversationView:
        return _view(services.conversations.start(user.id, data.title))

    @get("/{conversation_id:str}", sync_to_thread=True)
    def show(
        self, request: Request[Any, Any, Any], conversation_id: PathId, services: ServicesDep,
        user: UserDep,
    ) -> ConversationView:  # fmt: skip
        conv, messages = services.conversations.show(user.id, conversation_id)
        view = _view(conv, [_message(m, services.link_hosts) for m in messages])
        handoffs = services.handoffs.of_conversation(asker(request, user), conversation_id)
        view.handoffs = [handoff_view(h) for h in handoffs]
        return view

    @patch("/{conversation_id:str}", sync_to_thread=True)
    def rename(
        self, conversation_id: PathId, data: JSONBody[RenameConversation],
        services: ServicesDep, user: UserDep,
    ) -> ConversationView:  # fmt: skip
        return _view(services.conversations.rename(user.id, conversation_id, data.title))

    @delete("/{conversation_id:str}", sync_to_thread=True)
    def remove(
        self, request: Request[Any, Any, Any], conversation_id: PathId, services: ServicesDep,
        user: UserDep,
    ) -> None:  # fmt: skip
        services.conversations.delete(asker(request, user), conversation_id)

    @post("/{conversation_id:str}/messages", status_code=200)
    async def post_message(
        self, request: Request[Any, Any, Any], conversation_id: PathId,
        data: JSONBody[PostMessage], services: ServicesDep, llm_settings: LlmDep, user: UserDep,
        reader: ReaderDep,
    ) -> Stream:  # fmt: skip
        params, collections = data.params(llm_settings), tuple(data.collections)
        events = services.chat.reply(asker(request, user, reader), conversation_id, data.content,
                                     params, collections)  # fmt: skip
        first = await first_event(request, events)
        return event_stream(_sse(first, events, services.link_hosts))

    @post("/{conversation_id:str}/regenerate", status_code=200)
    async def regenerate(
        self, request: Request[Any, Any, Any], conversation_id: PathId,
        data: JSONBody[Regenerate], services: ServicesDep, llm_settings: LlmDep, user: UserDep,
        reader: ReaderDep,
    ) -> Stream:  # fmt: skip
        params, collections = data.params(llm_settings), tuple(data.collections)
        events = services.chat.regenerate(asker(request, user, reader), conversation_id, params,
                                          collections)  # fmt: skip
        first = await first_event(request, events)
        return event_stream(_sse(first, events, services.link_hosts))


def asker(request: Request[Any, Any, Any], user: User, reader: Reader | None = None) -> Asker:
    """Who asks, for the audit log: the account, and whether by session or API key; and
    `reader`, the documents an answer may come from (None: those of everyone)."""
    via = "api key" if request.state.identity.session is None else "session"
    return Asker(id=user.id, name=user.name, via=via, reader=reader or Reader())


async def _sse(
    first: ChatEvent, events: AsyncGenerator[ChatEvent, None], link_hosts: tuple[str, ...]
) -> AsyncGenerator[bytes, None]:
    """The events; `render` events with the answer so far as HTML a few times a second (the
    parts that changed); and an `error` event (OpenAI's error body) if the answer fails part
    way. Links in the HTML may point only within the appliance or to `link_hosts`."""
    html, rendered_at = StreamedHtml(link_hosts), time.monotonic()
    async with aclosing(events):
        yield _encode(first, link_hosts)
        try:
            async for event in events:
                yield _encode(event, link_hosts)
                if isinstance(event, TokenEvent):
                    html.add(event.text)
                    if time.monotonic() - rendered_at >= RENDER_INTERVAL_S:
                        for part, changed in html.render():
                            yield sse(RenderData(part=part, html=changed), "render")
                        rendered_at = time.monotonic()
        except Exception as exc:
            yield sse(ErrorResponse(describe(exc)[1]), "error")


def _encode(event: ChatEvent, link_hosts: tuple[str, ...]) -> bytes:
    if isinstance(event, TokenEvent):
        return sse(TokenData(event.text), "token")
    if isinstance(event, QueuedEvent):
        return sse(QueuedData(event.ahead), "queued")
    if isinstance(event, Started):
        user = _message(event.user_message, link_hosts) if event.user_message else None
        return sse(StartData(conversation_id=event.conversation_id, user_message=user), "start")
    assert isinstance(event, Finished)  # noqa: S101 - ChatEvent has four members
    return sse(DoneData(message=_message(event.message, link_hosts),
                        finish_reason=event.finish_reason,
                        citations=event.message.citations), "done")  # fmt: skip


def _message(shown: Shown, link_hosts: tuple[str, ...]) -> MessageView:
    message = shown.message
    html = render(message.content, link_hosts) if message.role == "assistant" else None
    return message_view(message, html, [PiiSpan(type=s.type, start=s.start, end=s.end)
                                        for s in shown.pii], shown.citations)  # fmt: skip


def _view(conv: Conversation, messages: list[MessageView] | None = None,
          unseen: int = 0) -> ConversationView:  # fmt: skip
    return ConversationView(id=conv.id, title=conv.title, created_at=conv.created_at,
                            updated_at=conv.updated_at, messages=messages,
                            unseen=unseen)  # fmt: skip
