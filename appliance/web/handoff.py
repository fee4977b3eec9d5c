"""Questions handed to people: the employee's hand-off, the experts' queue and their answers,
and the page's event stream that shows an answer as it arrives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, get, post
from litestar.params import QueryParameter
from litestar.response import Stream
from msgspec import Meta

from appliance.chat.notify import Notifier
from appliance.errors import NotFound
from appliance.store.conversations import is_conversation_id
from appliance.web.conversations import asker, known_conversation
from appliance.web.deps import JSONBody, PathId, ServicesDep, UserDep
from appliance.web.schemas import HandoffView, handoff_view
from appliance.web.sse import sse
from appliance.web.streaming import event_stream

_KEEPALIVE_S = 20  # a comment line this often keeps proxies from closing a quiet stream


class HandOver(msgspec.Struct, forbid_unknown_fields=True):
    message_id: Annotated[int, Meta(ge=1)] | None = None  # the answer doubted; else the last
    note: Annotated[str, Meta(max_length=2000)] = ""


class ExpertAnswer(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(min_length=1, max_length=20_000)]


class SaveFaq(msgspec.Struct, forbid_unknown_fields=True):
    title: Annotated[str, Meta(max_length=200)] = ""


def _known(handoff_id: str) -> str:
    if not is_conversation_id(handoff_id):  # the same format: 32 hexadecimal digits
        raise NotFound(f"no hand-off {handoff_id}")
    return handoff_id


@post("/api/conversations/{conversation_id:str}/handoff", status_code=200, sync_to_thread=True,
      guards=[known_conversation])  # fmt: skip
def hand_over(
    request: Request[Any, Any, Any], conversation_id: PathId, data: JSONBody[HandOver],
    services: ServicesDep, user: UserDep,
) -> HandoffView:  # fmt: skip
    """Send the conversation's question to the experts (409 while one is still with them)."""
    found = services.handoffs.ask(asker(request, user), conversation_id, data.message_id,
                                  data.note)  # fmt: skip
    return handoff_view(found)


@get("/api/handoffs", sync_to_thread=True)
def queue(
    request: Request[Any, Any, Any], services: ServicesDep, user: UserDep,
    status: Annotated[Literal["open", "claimed", "answered", "closed", "all"],
                      QueryParameter(name="status")] = "open",
) -> list[HandoffView]:  # fmt: skip
    """The hand-offs this expert may take, oldest first; 404 for accounts that are none."""
    return [handoff_view(h) for h in services.handoffs.queue(asker(request, user), status)]


@get("/api/handoffs/{handoff_id:str}", sync_to_thread=True)
def show(request: Request[Any, Any, Any], handoff_id: PathId, services: ServicesDep,
         user: UserDep) -> HandoffView:  # fmt: skip
    found, turns = services.handoffs.show(asker(request, user), _known(handoff_id))
    return handoff_view(found, turns)


@post("/api/handoffs/{handoff_id:str}/claim", status_code=200, sync_to_thread=True)
def claim(request: Request[Any, Any, Any], handoff_id: PathId, services: ServicesDep,
          user: UserDep) -> HandoffView:  # fmt: skip
    return handoff_view(services.handoffs.claim(asker(request, user), _known(handoff_id)))


@post("/api/handoffs/{handoff_id:str}/answer", status_code=200, sync_to_thread=True)
def answer(request: Request[Any, Any, Any], handoff_id: PathId, data: JSONBody[ExpertAnswer],
           services: ServicesDep, user: UserDep) -> HandoffView:  # fmt: skip
    """The answer goes into the employee's conversation, marked as this expert's."""
    found = services.handoffs.answer(asker(request, user), _known(handoff_id), data.text)
    return handoff_view(found)


@post("/api/handoffs/{handoff_id:str}/close", status_code=200, sync_to_thread=True)
def close(request: Request[Any, Any, Any], handoff_id: PathId, services: ServicesDep,
          user: UserDep) -> HandoffView:  # fmt: skip
    return handoff_view(services.handoffs.close(asker(request, user), _known(handoff_id)))


@post("/api/handoffs/{handoff_id:str}/faq", status_code=200, sync_to_thread=True)
def save_faq(request: Request[Any, Any, Any], handoff_id: PathId, data: JSONBody[SaveFaq],
             services: ServicesDep, user: UserDep) -> HandoffView:  # fmt: skip
    """Saved into the watched folder's FAQ folder as Markdown: indexed like any document."""
    return handoff_view(services.handoffs.save_faq(asker(request, user), _known(handoff_id),
                                            data.title))  # fmt: skip


@get("/api/events")
async def events(services: ServicesDep, user: UserDep) -> Stream:
    """The signed-in user's changes while their page is open: `handoff` events
    `{conversation_id, handoff_id, status}` when an expert claims, answers or closes one."""
    return event_stream(_events(services.notifier, user.id))


async def _events(notifier: Notifier, user_id: int | None) -> AsyncGenerator[bytes, None]:
    with notifier.subscribe(user_id) as queue:
        yield b": connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), _KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            yield sse(event, "handoff")
