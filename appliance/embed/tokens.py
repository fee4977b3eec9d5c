"""The embedding model's own tokenizer (tokenizer.json), for counting and for batches."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from appliance.embed.models import ModelCard
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


class CardModel:
    """What both real embedders share: the model card's sizes and its tokenizer."""

    def __init__(self, card: ModelCard, name: str) -> None:
        self._card = card
        self._tokens = ModelTokenizer(card.path, card.max_tokens)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._card.dim

    @property
    def max_tokens(self) -> int:
        return self._card.max_tokens

    def count_tokens(self, text: str) -> int:
        return self._tokens.count(text)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self._tokens.spans(text)
