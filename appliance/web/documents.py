"""The documents API: the catalog of the watched folder (the admin's documents page), the
collections, and the sources that citations open."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import quote

import msgspec
from litestar import get
from litestar.params import FromPath
from litestar.response import Stream

from appliance.errors import Forbidden
from appliance.ingest.library import Passage
from appliance.store.audience import EVERYONE, groups_in
from appliance.web.deps import ReaderDep, ServicesDep, UserDep

_BLOCK = 256 * 1024


class DocumentView(msgspec.Struct, kw_only=True):
    path: str  # relative to the watched folder
    status: Literal["pending", "indexed", "failed", "skipped"]
    chunks: int
    pages: int | None
    error: str | None
    indexed_at: float | None  # seconds since the epoch
    # who may see it, for admins: `everyone`, or the groups (none: admins only); null for
    # others, who see only the documents they may
    audience: list[str] | Literal["everyone"] | None = None


class DocumentsView(msgspec.Struct, kw_only=True):
    watch_dir: str
    indexing: bool  # files are waiting to be read
    counts: dict[str, int]  # documents per status
    documents: list[DocumentView]


@get("/api/documents", sync_to_thread=True)
def list_documents(services: ServicesDep, reader: ReaderDep) -> DocumentsView:
    """The files of the watched folder the catalog knows, with their status and error: for
    admins every one with its audience, for others those they may see."""
    library = services.documents
    docs = [DocumentView(path=d.path, status=d.status, chunks=d.chunks, pages=d.pages,
                         error=d.error, indexed_at=d.indexed_at,
                         audience=_audience(d.audience) if reader.admin else None)
            for d in library.documents(reader)]  # fmt: skip
    counts = dict.fromkeys(("pending", "indexed", "failed", "skipped"), 0)
    for d in docs:
        counts[d.status] += 1
    return DocumentsView(watch_dir=library.watch_dir, indexing=library.indexing(),
                         counts=counts, documents=docs)  # fmt: skip


class DocumentText(msgspec.Struct, kw_only=True):
    path: str
    passages: list[Passage]


@get("/api/collections", sync_to_thread=True)
def list_collections(services: ServicesDep, reader: ReaderDep) -> dict[str, int]:
    """The collections (top-level subfolders) a question may be limited to, with their
    number of indexed documents the user may see."""
    return services.documents.collections(reader)


@get("/api/documents/text/{path:path}", sync_to_thread=True)
def document_text(path: FromPath[str], services: ServicesDep, reader: ReaderDep) -> DocumentText:
    """An indexed document's text (what answers are drawn from), by page and heading: what a
    citation opens for formats a browser cannot show at a heading. Each passage lists its
    chunks' ids, so that the view marks the one a citation names (a link carries no text)."""
    relative = path.lstrip("/")
    return DocumentText(path=relative, passages=services.documents.passages(relative, reader))


@get("/api/documents/file/{path:path}", sync_to_thread=True)
def document_file(path: FromPath[str], services: ServicesDep, user: UserDep,
                  reader: ReaderDep) -> Stream:  # fmt: skip
    """An indexed document's original file: PDF inline (a citation opens it at its page,
    `#page=N`), other formats as a download that never runs on this origin (sandboxed, no
    sniffing). Where documents are indexed redacted (pii.documents), only admins get it."""
    if services.conversations.privacy.policy.documents == "redact" and user.role != "admin":
        raise Forbidden("documents are shown redacted here (pii.documents = redact); the "
                        "original file is for admins")  # fmt: skip
    file = services.documents.open(path.lstrip("/"), reader)  # read from this descriptor only
    name = Path(path).name
    headers = {"X-Content-Type-Options": "nosniff",
               "Content-Length": str(os.fstat(file.fileno()).st_size)}  # fmt: skip
    if name.lower().endswith(".pdf"):  # the browser's PDF viewer: no sandbox, or no viewer
        media, disposition = "application/pdf", "inline"
    else:
        media, disposition = "application/octet-stream", "attachment"
        headers["Content-Security-Policy"] = "sandbox"
    headers["Content-Disposition"] = f"{disposition}; filename*=UTF-8''{quote(name)}"
    return Stream(_chunks(file), media_type=media, headers=headers)


def _audience(audience: str) -> list[str] | Literal["everyone"]:
    return "everyone" if audience == EVERYONE else groups_in(audience)


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    with file:
        while block := file.read(_BLOCK):
            yield block
