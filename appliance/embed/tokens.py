"""The embedding model's own tokenizer (tokenizer.json), for counting and for batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from appliance.errors import ModelError

Ids = npt.NDArray[np.int64]


class ModelTokenizer:
    """Counts and splits text as the model sees it; pads batches for the ONNX session."""

    def __init__(self, model_dir: Path, max_tokens: int) -> None:
        path = model_dir / "tokenizer.json"
        try:
            self._plain = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise ModelError(
                f"embedding tokenizer {path} cannot be read ({exc}); "
                "embed.model must name a sentence-transformers folder with a tokenizer.json"
            ) from None
        self._plain.no_truncation()
        self._plain.no_padding()
        self._batch = Tokenizer.from_file(str(path))
        self._batch.enable_truncation(max_tokens)
        self._batch.enable_padding(pad_id=self._pad_id())

    def _pad_id(self) -> int:
        padding = self._plain.padding
        if padding is not None:
            return int(padding["pad_id"])
        pad = self._plain.token_to_id("[PAD]")
        return 0 if pad is None else pad

    def count(self, text: str) -> int:
        return len(self._plain.encode(text, add_special_tokens=False).ids)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._plain.encode(text, add_special_tokens=False).offsets)

    def batch(self, texts: Sequence[str]) -> tuple[Ids, Ids]:
        """Token ids and attention mask, padded to the longest text of the batch."""
        encodings = self._batch.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask
