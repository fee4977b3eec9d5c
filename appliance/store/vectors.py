"""The VectorIndex protocol: chunk vectors by id, each labelled with who may see it, and
nearest-neighbour search among those a reader may see."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class VectorIndex(Protocol):
    """Holds one vector per chunk id; the catalog (SQLite) holds everything else about it."""

    def upsert(
        self, ids: Sequence[str], vectors: Vectors, audiences: Sequence[str] | None = None
    ) -> None:
        """Stores the vectors, each labelled with its document's audience (None: everyone)."""
        ...

    def label(self, ids: Sequence[str], audience: str) -> None:
        """Gives these stored vectors another audience; unknown ids are ignored."""
        ...

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """The stored vectors of those `ids` that exist."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Removes these ids; unknown ids are ignored."""
        ...

    def ids(self) -> set[str]: ...

    def query(
        self, vector: Vectors, k: int, audiences: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """The `k` nearest ids with their cosine distance, nearest first; `audiences`: only
        among the vectors labelled with one of them (None: all), filtered before the k
        nearest are taken."""
        ...

    def close(self) -> None: ...
