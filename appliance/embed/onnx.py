"""The default embedder: the model exported to ONNX (int8), run by onnxruntime; no torch here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.embed.embedder import Vectors, normalise
from appliance.embed.models import ModelCard
from appliance.embed.runtime import onnxruntime as ort
from appliance.embed.tokens import CardModel


class OnnxEmbedder(CardModel):
    """Batches texts of similar length together (less padding), pools and normalises."""

    def __init__(self, card: ModelCard, onnx_path: Path, threads: int, batch_size: int) -> None:
        super().__init__(card, f"onnx:{onnx_path.stem}")
        self._batch_size = batch_size
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}

    def embed(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            out[rows] = self._run([texts[i] for i in rows])
        return out

    def _run(self, texts: list[str]) -> Vectors:
        ids, mask = self._tokens.batch(texts)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})[0]
        if self._card.pooling == "cls":
            return normalise(hidden[:, 0])
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return normalise(pooled)
