"""An in-memory VectorIndex for the unit tier; it passes the same contract tests as Chroma."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.store.audience import EVERYONE
from appliance.store.vectors import Vectors


class MemoryIndex:
    def __init__(self) -> None:
        self._rows: dict[str, Vectors] = {}
        self._audience: dict[str, str] = {}

    def upsert(
        self, ids: Sequence[str], vectors: Vectors, audiences: Sequence[str] | None = None
    ) -> None:
        labels = list(audiences) if audiences is not None else [EVERYONE] * len(ids)
        for id_, row, audience in zip(ids, vectors, labels, strict=True):
            self._rows[id_] = np.array(row, dtype=np.float32)
            self._audience[id_] = audience

    def label(self, ids: Sequence[str], audience: str) -> None:
        for id_ in ids:
            if id_ in self._rows:
                self._audience[id_] = audience

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        return {i: self._rows[i] for i in ids if i in self._rows}

    def delete(self, ids: Sequence[str]) -> None:
        for id_ in ids:
            self._rows.pop(id_, None)
            self._audience.pop(id_, None)

    def ids(self) -> set[str]:
        return set(self._rows)

    def query(
        self, vector: Vectors, k: int, audiences: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        allowed = None if audiences is None else set(audiences)
        names = [n for n in self._rows if allowed is None or self._audience[n] in allowed]
        if k <= 0 or not names:
            return []
        matrix = np.stack([self._rows[n] for n in names])
        norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(vector)), 1e-12)
        distances = 1.0 - (matrix @ vector.reshape(-1)) / np.maximum(norms, 1e-12)
        order = np.argsort(distances, kind="stable")[:k]
        return [(names[i], float(distances[i])) for i in order]

    def close(self) -> None:
        self._rows.clear()
        self._audience.clear()
