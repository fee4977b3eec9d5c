"""The sentence-transformers embedder (torch): the reference the ONNX one is checked against."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from appliance.embed.embedder import Vectors, normalise
from appliance.embed.export import weights_key
from appliance.embed.models import ModelCard
from appliance.embed.tokens import CardModel


class SentenceTransformerEmbedder(CardModel):
    """Loads the folder with sentence-transformers on the CPU, from local files only."""

    def __init__(self, card: ModelCard, threads: int, batch_size: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        torch.set_num_threads(threads)
        super().__init__(card, f"sentence-transformers:{card.path.name}-{weights_key(card.path)}")
        self._batch_size = batch_size
        self._model = SentenceTransformer(str(card.path), device="cpu", local_files_only=True)

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(list(texts), batch_size=self._batch_size,
                                     convert_to_numpy=True, show_progress_bar=False)  # fmt: skip
        return normalise(np.asarray(vectors))
