"""The privacy API: redact a text on request, and the policy in force (for the page's notice)."""

from __future__ import annotations

import msgspec
from litestar import get, post

from appliance.pii.policy import Policy
from appliance.web.deps import JSONBody, ServicesDep, UserDep


class RedactRequest(msgspec.Struct, forbid_unknown_fields=True):
    text: str  # longer than limits.redact_max_chars: 413 (the body: limits.max_body_kb)


class EntityView(msgspec.Struct):
    type: str
    start: int  # offsets in the text sent, in code points (Python's characters)
    end: int
    score: float


class Redacted(msgspec.Struct):
    text: str
    entities: list[EntityView]


@post("/api/redact", status_code=200, sync_to_thread=True)
def redact(data: JSONBody[RedactRequest], services: ServicesDep, user: UserDep) -> Redacted:
    """The text with personal data replaced by its type, and what was found where. Limited per
    user like chat (429), counted apart; runs on a thread (Presidio)."""
    text, entities = services.redaction.redact(user.id, data.text)
    return Redacted(text, [EntityView(e.type, e.start, e.end, round(e.score, 3)) for e in entities])


@get("/api/privacy")
async def privacy(services: ServicesDep) -> Policy:
    """What is done with personal data at each point (see the `pii` settings)."""
    return services.conversations.privacy.policy
