"""An answer's citations as stored: references to catalog chunks, their text read back from
the catalog when shown, so that a stored message holds no document text and a citation whose
chunk is gone (the file deleted or re-indexed) says so."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from appliance.rag.answer import Citation
from appliance.rag.retrieve import snippet
from appliance.store.catalog import StoredChunk

Chunks = Callable[[Sequence[str]], Sequence[StoredChunk]]


class Reference(msgspec.Struct, frozen=True, kw_only=True):
    """What `messages.citations` keeps of a citation. `source` and `page` label it once its
    chunk is gone; the heading and the text come from the chunk, under the documents policy."""

    n: int
    chunk_id: str = ""  # "" in rows stored before references: shown as gone
    source: str
    page: int | None = None
    score: float = 0.0


def stored(citations: Sequence[Citation]) -> str | None:
    """The JSON stored with an answer (None when it cites nothing)."""
    if not citations:
        return None
    refs = [
        Reference(n=c.n, chunk_id=c.chunk_id, source=c.source, page=c.page, score=c.score)
        for c in citations
    ]
    return msgspec.json.encode(refs).decode()


def shown(raw: str | None, chunks: Chunks | None) -> list[Citation]:
    """The stored citations with their chunks' current place and text; a chunk no longer in
    the catalog gives a citation marked `gone`, with no heading and no snippet."""
    if not raw:
        return []
    refs = msgspec.json.decode(raw, type=list[Reference])
    ids = [r.chunk_id for r in refs if r.chunk_id]
    found = {c.id: c for c in chunks(ids)} if chunks is not None and ids else {}
    return [_citation(r, found.get(r.chunk_id)) for r in refs]


def _citation(ref: Reference, chunk: StoredChunk | None) -> Citation:
    if chunk is None:
        return Citation(
            n=ref.n,
            chunk_id=ref.chunk_id,
            source=ref.source,
            page=ref.page,
            heading=None,
            snippet="",
            score=ref.score,
            gone=True,
        )
    return Citation(
        n=ref.n,
        chunk_id=chunk.id,
        source=chunk.path,
        page=chunk.page,
        heading=chunk.heading,
        snippet=snippet(chunk.text),
        score=ref.score,
    )
