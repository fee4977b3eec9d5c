"""Hybrid retrieval: Chroma's nearest vectors and SQLite's BM25 matches, fused by reciprocal
rank fusion, each hit scoped to a collection (a top-level subfolder) and held to a floor."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, NamedTuple

import msgspec
import numpy as np

from appliance.embed.embedder import Embedder
from appliance.ingest.folder import collection_of
from appliance.ops.metrics import Metrics
from appliance.store.audience import EVERYTHING, Reader
from appliance.store.catalog import Catalog, StoredChunk
from appliance.store.keywords import STOP_WORDS, KeywordIndex, Terms
from appliance.store.vectors import VectorIndex, Vectors

_SCOPED = 10  # candidates are multiplied by this when collections limit a search
_MOST = 5000  # ... up to about this many
RRF_K = 60  # the usual constant of reciprocal rank fusion: damps the head of each list
SNIPPET_CHARS = 240


class Hit(msgspec.Struct, frozen=True):
    chunk_id: str
    source: str  # path relative to the watched folder
    page: int | None
    heading: str | None
    score: float  # the fused score (higher is better)
    similarity: float  # cosine similarity of the chunk to the query
    snippet: str
    found_by: list[Literal["vector", "keyword"]]
    text: str  # the whole chunk, as the model is given it


class _Seen(NamedTuple):
    """What one search may see: the reader, and the audiences to filter by (None: all)."""

    reader: Reader
    audiences: list[str] | None


class Retriever:
    def __init__(self, embedder: Embedder, vectors: VectorIndex, keywords: KeywordIndex,
                 catalog: Catalog, *, candidates: int = 20, vector_weight: float = 1.0,
                 keyword_weight: float = 1.0, min_similarity: float = 0.25,
                 metrics: Metrics | None = None) -> None:  # fmt: skip
        self._embedder, self._vectors, self._keywords = embedder, vectors, keywords
        self._metrics = metrics or Metrics()
        self._catalog = catalog
        self._candidates = candidates
        self._weights = {"vector": vector_weight, "keyword": keyword_weight}
        self.min_similarity = min_similarity
        # Vector queries of concurrent searches, each beside its keyword query; the threads
        # start when first needed and end with the retriever.
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="retrieve")

    def apart(self) -> Retriever:
        """This retriever with threads of its own for the vector queries (one at a time)."""
        other = copy.copy(self)
        other._pool = ThreadPoolExecutor(1, thread_name_prefix="retrieve-apart")
        return other

    def search(self, query: str, k: int, collections: Sequence[str] = (),
               reader: Reader = EVERYTHING) -> list[Hit]:  # fmt: skip
        """The `k` best chunks for `query` that clear the relevance floor, best first, among
        the documents `reader` may see: both retrievers filter by audience before they rank,
        so a chunk the reader may not see is never a candidate. `collections` (top-level
        subfolders) limits where they may come from: the others' chunks are left out after
        ranking, so each retriever then offers ten times the candidates, and ten times more
        again while too few are in scope and more may be."""
        with self._metrics.timed(self._metrics.retrieval):
            return self._search(query, k, collections, reader)

    def _search(self, query: str, k: int, collections: Sequence[str],
                reader: Reader) -> list[Hit]:  # fmt: skip
        audiences = reader.allowed(self._catalog.audiences())
        if audiences == []:
            return []  # no document this reader may see
        vector = self._embedder.embed([query])[0]
        terms = self._keywords.terms(query) if self._weights["keyword"] else None
        candidates = self._candidates * (_SCOPED if collections else 1)
        seen = _Seen(reader, audiences)
        while True:
            hits, more = self._ranked(query, vector, terms, k, collections, candidates, seen)
            if len(hits) >= k or not (collections and more) or candidates >= _MOST:
                return hits
            candidates *= _SCOPED

    def _ranked(self, query: str, vector: np.ndarray, terms: Terms | None, k: int,
                collections: Sequence[str], candidates: int,
                seen: _Seen) -> tuple[list[Hit], bool]:  # fmt: skip
        """The hits among each retriever's `candidates` best, and whether either had more."""
        # A retriever weighted 0 is not asked at all. The vector query runs in a thread beside
        # the keyword ranking: Chroma holds the GIL while it searches, SQLite lets it go while
        # it ranks (so the quick part of the keyword search comes first).
        nearest = (self._pool.submit(self._vectors.query, vector, candidates, seen.audiences)
                   if self._weights["vector"] else None)  # fmt: skip
        keyword = ([i for i, _ in self._keywords.ranked(terms, candidates, seen.audiences)]
                   if terms is not None else [])  # fmt: skip
        distances = dict(nearest.result()) if nearest else {}
        ranked = {"vector": list(distances), "keyword": keyword}
        fused: dict[str, float] = {}
        found: dict[str, list[Literal["vector", "keyword"]]] = {}
        for name in ("vector", "keyword"):
            for rank, chunk_id in enumerate(ranked[name]):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + self._weights[name] / (RRF_K + rank)
                found.setdefault(chunk_id, []).append(name)
        chunks = {c.id: c for c in self._catalog.chunks(list(fused))}
        # The audience once more, as the catalog has it now: a document relabelled between
        # the two stores, or a vector labelled before audiences were, is not let through.
        order = [i for i in sorted(fused, key=fused.__getitem__, reverse=True)
                 if i in chunks and _in(chunks[i].path, collections)
                 and seen.reader.may_see(chunks[i].audience)]  # fmt: skip
        # Similarity: 1 - the cosine distance the vector query returned; a chunk only BM25
        # found has its vector read, first for the k best places, the rest only if needed.
        similarity = {i: 1.0 - d for i, d in distances.items()}
        exact = exact_terms(query)

        def relevant(i: str) -> bool:
            # A code or a name of the question, found as written by BM25, is relevant however
            # far the chunk's meaning is: embeddings barely see "SUP-19" or "Ingrid Solberg".
            return similarity.get(i, 0.0) >= self.min_similarity or (
                "keyword" in found[i] and _holds(chunks[i].text, exact))

        kept: list[str] = []
        for part in (order[:k], order[k:]):
            if len(kept) < k:
                self._read_similarity(vector, [i for i in part if i not in similarity], similarity)
                kept += [i for i in part if relevant(i)]
        more = max(len(keyword), len(distances)) >= candidates
        hits = [_hit(chunks[i], fused[i], similarity.get(i, 0.0), found[i]) for i in kept[:k]]
        return hits, more

    def empty(self) -> bool:
        """True while no chunk is indexed at all (nothing to ground an answer on)."""
        return not self._catalog.has_chunks()

    def allowed(self, reader: Reader) -> list[str] | None:
        """The audiences `reader` may see among those indexed (None: all of them)."""
        return reader.allowed(self._catalog.audiences())

    # What coverage.CoverageCheck asks of the index.
    def embed(self, texts: list[str]) -> Vectors:
        return self._embedder.embed(texts)

    def stored_vectors(self, chunk_ids: list[str]) -> dict[str, Vectors]:
        return self._vectors.vectors(chunk_ids)

    def unknown(self, words: list[str], reader: Reader = EVERYTHING) -> list[str]:
        """The `words` that no indexed chunk `reader` may see holds (as BM25 reads them,
        stemmed): a word only forbidden documents hold is as unknown as one none holds."""
        audiences = self.allowed(reader)
        if audiences is None:
            return [w for w in words if not self._keywords.terms(w).words]
        return [w for w in words if not self._keywords.search(w, 1, audiences)]

    def _read_similarity(self, query: np.ndarray, ids: list[str],
                         similarity: dict[str, float]) -> None:  # fmt: skip
        """Adds the cosine similarity of these chunks' stored vectors to the query."""
        if ids:
            stored = self._vectors.vectors(ids)
            similarity.update((i, float(np.dot(query, v))) for i, v in stored.items())


# Words of a question that name one thing: hyphenated with a capital or digit (XJ-4471, HR-PL3),
# letters with digits (ISO9001), three or more capitals (VPN), or capitalized inside a sentence
# (Ingrid Solberg).
_CODE = re.compile(r"(?<![\w-])(?:(?=[\w-]*[A-Z\d])[A-Za-z\d]+(?:-[A-Za-z\d]+)+"
                   r"|(?=[\w-]*[A-Za-z])(?=[\w-]*\d)[A-Za-z\d]+|[A-Z]{3,})(?![\w-])")
_NAME = re.compile(r"(?<![.?!:;\s])\s+([A-Z][a-z]+(?:-[A-Z][a-z]+)?)(?![\w-])")


def exact_terms(query: str) -> list[str]:
    """The codes and names in `query`, as written (a capitalized stop word is no name; an
    amount is no code: "a claim of 4,000 EUR" is answered by a passage on claims over 2,500)."""
    names = [n for n in _NAME.findall(query) if n.lower() not in STOP_WORDS]
    return list(dict.fromkeys(_CODE.findall(query) + names))


def holds(text: str, term: str, *, any_case: bool = False) -> bool:
    """Whether `text` holds `term` as a word of its own (a code's hyphens belong to it)."""
    pattern = rf"(?<![\w-]){re.escape(term)}(?![\w-])"
    return re.search(pattern, text, re.I if any_case else 0) is not None


def _holds(text: str, terms: list[str]) -> bool:
    return any(holds(text, t) for t in terms)


def _in(path: str, collections: Sequence[str]) -> bool:
    return not collections or collection_of(path) in collections


def _hit(chunk: StoredChunk, score: float, similarity: float,
         found_by: list[Literal["vector", "keyword"]]) -> Hit:  # fmt: skip
    return Hit(chunk_id=chunk.id, source=chunk.path, page=chunk.page, heading=chunk.heading,
               score=round(score, 6), similarity=round(similarity, 4),
               snippet=snippet(chunk.text), found_by=found_by, text=chunk.text)  # fmt: skip


def snippet(text: str) -> str:
    """A chunk's text shown in a hit or a citation: one line, at most SNIPPET_CHARS."""
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"
