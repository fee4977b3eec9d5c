"""The Embedder contract, held by the fake, the ONNX (default) and the sentence-transformers one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from appliance.embed.embedder import Embedder
from appliance.embed.export import onnx_file
from appliance.embed.fake import HashingEmbedder
from appliance.embed.models import resolve_model_dir

TEXTS = [
    "Employees get 25 days of paid leave per year.",
    "How many vacation days do staff receive annually?",
    "The server room door code changes every quarter.",
    "",
    "Reisekosten werden innerhalb von 30 Tagen erstattet. Café, naïve façade, 東京.",
]


@pytest.fixture(params=["fake", "onnx", "sentence-transformers"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    if request.param == "fake":
        return HashingEmbedder()
    name = "onnx_embedder" if request.param == "onnx" else "st_embedder"
    found: Embedder = request.getfixturevalue(name)
    return found


def test_vectors_have_the_model_dimension_and_unit_length(embedder: Embedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), embedder.dim)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_order_is_kept_and_results_do_not_depend_on_the_batch(embedder: Embedder) -> None:
    together = embedder.embed(TEXTS)
    alone = np.stack([embedder.embed([t])[0] for t in TEXTS])
    # int8 activations are quantised per batch: equal up to that rounding, never reordered
    assert np.all(np.sum(together * alone, axis=1) > 0.98)


def test_no_texts_give_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_related_texts_are_closer_than_unrelated(embedder: Embedder) -> None:
    if isinstance(embedder, HashingEmbedder):
        pair = ["paid leave days per year", "leave days per year granted"]
    else:
        pair = TEXTS[:2]
    a, b, c = embedder.embed([*pair, TEXTS[2]])
    assert float(a @ b) > float(a @ c)


def test_token_spans_cover_the_text_and_count_agrees(embedder: Embedder) -> None:
    text = TEXTS[4]
    spans = embedder.token_spans(text)
    assert len(spans) == embedder.count_tokens(text) > 0
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert [s for s, _ in spans] == sorted(s for s, _ in spans)
    assert embedder.max_tokens >= 128
    assert embedder.name


def test_onnx_int8_keeps_the_reference_vectors(onnx_embedder: Embedder,
                                               st_embedder: Embedder) -> None:  # fmt: skip
    texts = [t for t in TEXTS if t] + [" ".join(["policy handbook travel expense"] * 40)]
    cos = np.sum(onnx_embedder.embed(texts) * st_embedder.embed(texts), axis=1)
    assert cos.min() > 0.97, cos
    assert onnx_embedder.name != st_embedder.name  # their vectors are never mixed in one index


def test_the_onnx_export_is_made_once_from_local_weights(tmp_path: Path) -> None:
    model = resolve_model_dir("")
    made = onnx_file(model, tmp_path, quantize=True)
    stamp = made.stat().st_mtime_ns
    assert onnx_file(model, tmp_path, quantize=True) == made
    assert made.stat().st_mtime_ns == stamp  # reused, not exported again
    assert [p.name for p in tmp_path.iterdir()] == [made.name]  # no leftovers
