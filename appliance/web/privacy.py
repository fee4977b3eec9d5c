"""The privacy API: redact a text on request, and the policy in force (for the page's notice)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import get, post
from msgspec import Meta

from appliance.pii.policy import Policy
from appliance.web.deps import JSONBody, ServicesDep

MAX_CHARS = 100_000


class RedactRequest(msgspec.Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(max_length=MAX_CHARS)]


class EntityView(msgspec.Struct):
    type: str
    start: int  # offsets in the text sent, in code points (Python's characters)
    end: int
    score: float


class Redacted(msgspec.Struct):
    text: str
    entities: list[EntityView]


@post("/api/redact", status_code=200, sync_to_thread=True)
def redact(data: JSONBody[RedactRequest], services: ServicesDep) -> Redacted:
    """The text with personal data replaced by its type, and what was found where."""
    redactor = services.chat.privacy.redactor
    entities = redactor.analyze(data.text)
    return Redacted(text=redactor.redact(data.text, entities),
                    entities=[EntityView(e.type, e.start, e.end, round(e.score, 3))
                              for e in entities])  # fmt: skip


@get("/api/privacy")
async def privacy(services: ServicesDep) -> Policy:
    """What is done with personal data at each point (see the `pii` settings)."""
    return services.chat.privacy.policy
