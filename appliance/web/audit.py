"""The audit log for admins: newest first, filtered by actor and action."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from appliance.store.audit import Record, Verdict
from appliance.web.auth import ADMIN
from appliance.web.deps import MAX_ROW_ID, ServicesDep


@get("/api/audit", opt=ADMIN)
async def audit_records(
    services: ServicesDep,
    actor: Annotated[str, QueryParameter(name="actor")] = "",
    action: Annotated[str, QueryParameter(name="action")] = "",
    before: Annotated[int | None, QueryParameter(name="before", le=MAX_ROW_ID)] = None,
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=1000)] = 100,
) -> list[Record]:
    return await asyncio.to_thread(services.audit.records, actor, action, before, limit)


@get("/api/audit/verify", opt=ADMIN)
async def audit_verify(
    services: ServicesDep, full: Annotated[bool, QueryParameter(name="full")] = False
) -> Verdict:
    """Whether the chain of records is intact (no record edited or deleted): the records since
    the last check, and that the last one checked is unchanged; `?full=true` checks all."""
    return await asyncio.to_thread(services.audit.verify, full)
