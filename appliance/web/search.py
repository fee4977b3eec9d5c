"""Search over the documents: what retrieval finds for a question, and why (the retrieval
debugger: which retriever found each chunk, its fused score and its similarity)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import post
from msgspec import Meta

from appliance.rag.retrieve import Hit
from appliance.web.deps import JSONBody, ReaderDep, ServicesDep, UserDep


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    query: Annotated[str, Meta(min_length=1, max_length=2000)]
    k: Annotated[int, Meta(ge=1, le=50)] = 5
    # top-level subfolders; more than limits.search_max_collections: 413
    collections: list[Annotated[str, Meta(max_length=255)]] = msgspec.field(default_factory=list)


@post("/api/search", status_code=200)
async def search(data: JSONBody[SearchRequest], services: ServicesDep, user: UserDep,
                 reader: ReaderDep) -> list[Hit]:  # fmt: skip
    """Ranked chunks for `query`: `source`, `page`, `heading`, `score`, `snippet`, `found_by`,
    among the documents the user may see. Limited per user like chat (429), counted apart."""
    return await asyncio.to_thread(
        services.search.search, user.id, data.query, data.k, data.collections, reader
    )
