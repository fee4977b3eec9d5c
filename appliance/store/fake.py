"""An in-memory VectorIndex for the unit tier; it passes the same contract tests as Chroma."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from appliance.store.vectors import Vectors


class MemoryIndex:
    def __init__(self) -> None:
        self._rows: dict[str, Vectors] = {}

    def upsert(self, ids: Sequence[str], vectors: Vectors) -> None:
        for id_, row in zip(ids, vectors, strict=True):
            self._rows[id_] = np.array(row, dtype=np.float32)

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        return {i: self._rows[i] for i in ids if i in self._rows}

    def delete(self, ids: Sequence[str]) -> None:
        for id_ in ids:
            self._rows.pop(id_, None)

    def ids(self) -> set[str]:
        return set(self._rows)

    def query(self, vector: Vectors, k: int) -> list[tuple[str, float]]:
        if k <= 0 or not self._rows:
            return []
        names = list(self._rows)
        matrix = np.stack([self._rows[n] for n in names])
        norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(vector)), 1e-12)
        distances = 1.0 - (matrix @ vector.reshape(-1)) / np.maximum(norms, 1e-12)
        order = np.argsort(distances, kind="stable")[:k]
        return [(names[i], float(distances[i])) for i in order]

    def close(self) -> None:
        self._rows.clear()
