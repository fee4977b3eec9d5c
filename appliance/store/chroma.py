"""Chroma as the VectorIndex: a local PersistentClient, telemetry off, our vectors only."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import chromadb
import numpy as np
from chromadb.api import ClientAPI
from chromadb.api.types import Where
from chromadb.config import Settings as ChromaSettings

from appliance.errors import StoreError
from appliance.store.audience import EVERYONE
from appliance.store.vectors import Vectors

_AUDIENCE = "audience"  # each vector's metadata: its document's audience (store/audience.py)
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
        where: Where | None = None
        if audiences is not None:  # filtered in the search, before the k nearest are taken
            allowed: list[str | int | float | bool] = list(audiences)
            where = {_AUDIENCE: {"$in": allowed}}  # type: ignore[dict-item]  # Literal key
        got = self._collection.query(
            query_embeddings=vector.reshape(1, -1), n_results=k, include=["distances"],
            where=where,
        )  # fmt: skip
        distances = got["distances"] or [[]]
        return list(zip(got["ids"][0], (float(d) for d in distances[0]), strict=True))

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
