"""The Embedder protocol: texts in, L2-normalised float32 vectors out, counted in its own tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class Embedder(Protocol):
    """One embedding model. `embed` keeps the order of `texts`; each row has unit length."""

    @property
    def name(self) -> str:
        """Identifies the model and its numerics: vectors of different names don't mix."""
        ...

    @property
    def dim(self) -> int: ...

    @property
    def max_tokens(self) -> int:
        """Longest input in tokens, special tokens included; longer texts are truncated."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes, without the special tokens the model adds around it."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character (start, end) of each token of `text`, special tokens left out."""
        ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...


def normalise(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Rows scaled to unit length (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    out: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return out
