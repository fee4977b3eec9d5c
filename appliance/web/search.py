"""Search over the documents: what retrieval finds for a question, and why (the retrieval
debugger: which retriever found each chunk, its fused score and its similarity)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import post
from msgspec import Meta

from appliance.rag.retrieve import Hit
from appliance.web.deps import JSONBody, ServicesDep


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, Meta(min_length=1, max_length=2000)]
    k: Annotated[int, Meta(ge=1, le=50)] = 5
    collections: list[str] = msgspec.field(default_factory=list)  # top-level subfolders


@post("/api/search", status_code=200)
async def search(data: JSONBody[SearchRequest], services: ServicesDep) -> list[Hit]:
    """Ranked chunks for `query`: `source`, `page`, `heading`, `score`, `snippet`, `found_by`."""
    return await asyncio.to_thread(services.retriever.search, data.query, data.k,
                                   data.collections)  # fmt: skip
