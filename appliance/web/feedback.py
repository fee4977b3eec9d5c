"""Feedback on answers: thumbs up or down with a comment; the list for admins."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from litestar import get, post
from litestar.params import QueryParameter
from msgspec import Meta

from appliance.store.feedback import Rated
from appliance.web.auth import ADMIN
from appliance.web.conversations import known_conversation
from appliance.web.deps import JSONBody, PathId, RowId, ServicesDep, UserDep


class Rating(msgspec.Struct, forbid_unknown_fields=True):
    rating: Literal["up", "down"]
    comment: Annotated[str, Meta(max_length=2000)] = ""


@post("/api/conversations/{conversation_id:str}/messages/{message_id:int}/feedback",
      status_code=200, sync_to_thread=True, guards=[known_conversation])  # redacts: spaCy
def rate_answer(conversation_id: PathId, message_id: RowId, data: JSONBody[Rating],
                services: ServicesDep, user: UserDep) -> dict[str, str]:  # fmt: skip
    services.conversations.rate(user.id, conversation_id, message_id, data.rating == "up",
                                data.comment)  # fmt: skip
    return {"status": "thanks"}


@get("/api/feedback", opt=ADMIN, sync_to_thread=True)  # SQLite: not on the event loop
def list_feedback(
    services: ServicesDep,
    rating: Annotated[Literal["up", "down", "all"], QueryParameter(name="rating")] = "down",
) -> list[Rated]:
    """Rated answers, newest first, with the question each replied to (thumbs down by
    default). The chunks used will show here once answers come from documents."""
    return services.conversations.feedback.listed({"down": -1, "up": 1, "all": 0}[rating])
