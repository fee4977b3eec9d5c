"""A fast stand-in embedder for the unit tier: hashed bag of words, same contract as the real."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from appliance.embed.embedder import Vectors, normalise

_WORD = re.compile(r"\w+|[^\w\s]")


class HashingEmbedder:
    """Each word adds to one of `dim` buckets: texts sharing words point the same way."""

    def __init__(self, dim: int = 64, max_tokens: int = 256) -> None:
        self._dim = dim
        self._max_tokens = max_tokens

    @property
    def name(self) -> str:
        return f"fake:hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def count_tokens(self, text: str) -> int:
        return len(self.token_spans(text))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for start, end in self.token_spans(text)[: self._max_tokens - 2]:
                word = text[start:end].lower().encode()
                bucket = int.from_bytes(hashlib.blake2b(word, digest_size=4).digest(), "big")
                out[row, bucket % self._dim] += 1.0
            if not out[row].any():
                out[row, 0] = 1.0  # no words: still a unit vector, as the real models give
        return normalise(out)
