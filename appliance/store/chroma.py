"""Chroma as the VectorIndex: a local PersistentClient, telemetry off, our vectors only."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.types import Include, Where
from chromadb.config import Settings as ChromaSettings

from appliance.errors import StoreError
from appliance.store.audience import ADMINS_ONLY, EVERYONE
from appliance.store.vectors import Vectors

_AUDIENCE = "audience"  # each vector's metadata: its document's audience (store/audience.py)
_OVERFETCH = 4  # filtered queries first look this many times further, unfiltered
_PAGE = 5000  # ids per request when listing or writing many (Chroma caps batch sizes)


class ChromaIndex:
    """One collection per embedder, so vectors of different models never meet."""

    def __init__(self, path: Path, embedder_name: str) -> None:
        self.collection_name = "chunks-" + hashlib.sha256(embedder_name.encode()).hexdigest()[:16]
        try:
            self._client = _client(path)
            # embedding_function=None: Chroma must never embed by itself (its default model
            # would be downloaded); this holds on every open, the first and after a restart.
            self._collection = self._client.get_or_create_collection(
                self.collection_name,
                embedding_function=None,
                metadata={"hnsw:space": "cosine", "embedder": embedder_name},
            )
        except Exception as exc:
            raise StoreError(f"cannot open the vector index under {path}: {exc}") from None

    def drop_others(self) -> list[str]:
        """Deletes collections of other embedders (their vectors can't be searched any more)."""
        dropped = []
        for collection in self._client.list_collections():
            if collection.name.startswith("chunks-") and collection.name != self.collection_name:
                self._client.delete_collection(collection.name)
                dropped.append(collection.name)
        return dropped

    def upsert(
        self, ids: Sequence[str], vectors: Vectors, audiences: Sequence[str] | None = None
    ) -> None:
        labels = list(audiences) if audiences is not None else [EVERYONE] * len(ids)
        for start in range(0, len(ids), _PAGE):
            end = start + _PAGE
            self._collection.upsert(
                ids=list(ids[start:end]),
                embeddings=vectors[start:end],
                metadatas=[{_AUDIENCE: a} for a in labels[start:end]],
            )

    def label(self, ids: Sequence[str], audience: str) -> None:
        """Gives these vectors another audience; the vectors themselves stay."""
        for start in range(0, len(ids), _PAGE):
            page = list(ids[start : start + _PAGE])
            self._collection.update(ids=page, metadatas=[{_AUDIENCE: audience}] * len(page))

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        found: dict[str, Vectors] = {}
        for start in range(0, len(ids), _PAGE):
            got = self._collection.get(ids=list(ids[start : start + _PAGE]), include=["embeddings"])
            rows = got["embeddings"]
            if rows is None:
                continue
            for id_, row in zip(got["ids"], rows, strict=True):
                found[id_] = np.asarray(row, dtype=np.float32)
        return found

    def delete(self, ids: Sequence[str]) -> None:
        """Deletes, then checks that none of `ids` is found any more (a vector that stayed
        would be searched, and its chunk could be rebuilt from it in part)."""
        for start in range(0, len(ids), _PAGE):
            page = list(ids[start : start + _PAGE])
            self._collection.delete(ids=page)
            if left := self._collection.get(ids=page, include=[])["ids"]:
                raise StoreError(
                    f"the vector index {self.collection_name} still holds {len(left)} of the "
                    f"{len(page)} vectors just deleted (e.g. {left[0]}); they are deleted "
                    "again at the next start (`appliance ingest` does it now)"
                )

    def ids(self) -> set[str]:
        out: set[str] = set()
        while True:
            page = self._collection.get(include=[], limit=_PAGE, offset=len(out))["ids"]
            out.update(page)
            if len(page) < _PAGE:
                return out

    def query(
        self, vector: Vectors, k: int, audiences: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        if k <= 0 or audiences == []:  # an empty collection answers with no ids
            return []
        if audiences is None:
            return self._nearest(vector, k)
        # Chroma's `where` compares every vector that matches it (no index on metadata): at
        # 100k chunks ~0.6 s, against ~5 ms for the nearest few. So first the nearest
        # `k x _OVERFETCH` unfiltered, of which those the reader may see are kept: when k of
        # them are, they are the k nearest the reader may see, as `where` would give them;
        # when not (a reader who sees a small part), `where`, cheap then (few match it).
        allowed = set(audiences)
        near = self._nearest(vector, k * _OVERFETCH, with_audience=True)
        kept = [(i, d) for i, d, a in near if a in allowed]
        if len(kept) >= k or len(near) < k * _OVERFETCH:
            return kept[:k]
        listed: list[str | int | float | bool] = list(audiences)
        where: Where = {_AUDIENCE: {"$in": listed}}  # type: ignore[dict-item]  # Literal key
        return self._nearest(vector, k, where=where)

    def _nearest(self, vector: Vectors, k: int, *, where: Where | None = None,
                 with_audience: bool = False) -> list[Any]:  # fmt: skip
        """(id, cosine distance) of the k nearest, nearest first; with `with_audience`,
        (id, distance, audience)."""
        include: Include = ["distances", "metadatas"] if with_audience else ["distances"]
        got = self._collection.query(query_embeddings=vector.reshape(1, -1), n_results=k,
                                     include=include, where=where)  # fmt: skip
        ids, distances = got["ids"][0], (got["distances"] or [[]])[0]
        if not with_audience:
            return list(zip(ids, (float(d) for d in distances), strict=True))
        metadatas = (got["metadatas"] or [[]])[0]
        return [(i, float(d), str((m or {}).get(_AUDIENCE, ADMINS_ONLY)))
                for i, d, m in zip(ids, distances, metadatas, strict=True)]  # fmt: skip

    def close(self) -> None:
        # PersistentClient has no close; dropping the references lets the system cache go.
        del self._collection


def _client(path: Path) -> ClientAPI:
    """The one way Chroma is opened here: local files, telemetry off."""
    return chromadb.PersistentClient(
        path=str(path), settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    )


def collections(path: Path) -> dict[str, str]:
    """The collections of the index at `path` and the embedder each was made by; the index
    must exist (it is opened, not created: Chroma adds a row to its own lock table, as at every
    start). No embedding function is attached, no segment loaded. For `appliance doctor`."""
    return {
        c.name: str((c.metadata or {}).get("embedder", "?"))
        for c in _client(path).list_collections()
    }
