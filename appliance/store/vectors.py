"""The VectorIndex protocol: chunk vectors by id, nearest-neighbour search, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class VectorIndex(Protocol):
    """Holds one vector per chunk id; the catalog (SQLite) holds everything else about it."""

    def upsert(self, ids: Sequence[str], vectors: Vectors) -> None: ...

    def vectors(self, ids: Sequence[str]) -> dict[str, Vectors]:
        """The stored vectors of those `ids` that exist."""
        ...

    def delete(self, ids: Sequence[str]) -> None:
        """Removes these ids; unknown ids are ignored."""
        ...

    def ids(self) -> set[str]: ...

    def query(self, vector: Vectors, k: int) -> list[tuple[str, float]]:
        """The `k` nearest ids with their cosine distance, nearest first."""
        ...

    def close(self) -> None: ...
