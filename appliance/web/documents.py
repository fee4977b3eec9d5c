"""The documents API: the catalog of the watched folder, for the admin's documents page."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import get

from appliance.web.auth import ADMIN
from appliance.web.deps import ServicesDep


class DocumentView(msgspec.Struct, kw_only=True):
    path: str  # relative to the watched folder
    status: Literal["pending", "indexed", "failed", "skipped"]
    chunks: int
    pages: int | None
    error: str | None
    indexed_at: float | None  # seconds since the epoch


class DocumentsView(msgspec.Struct, kw_only=True):
    watch_dir: str
    indexing: bool  # files are waiting to be read
    counts: dict[str, int]  # documents per status
    documents: list[DocumentView]


@get("/api/documents", sync_to_thread=True, opt=ADMIN)
def list_documents(services: ServicesDep) -> DocumentsView:
    """Every file of the watched folder the catalog knows, with its status and error."""
    library = services.documents
    docs = [DocumentView(path=d.path, status=d.status, chunks=d.chunks, pages=d.pages,
                         error=d.error, indexed_at=d.indexed_at)
            for d in library.documents()]  # fmt: skip
    counts = dict.fromkeys(("pending", "indexed", "failed", "skipped"), 0)
    for d in docs:
        counts[d.status] += 1
    return DocumentsView(watch_dir=library.watch_dir, indexing=library.indexing(),
                         counts=counts, documents=docs)  # fmt: skip
