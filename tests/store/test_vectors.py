"""The VectorIndex contract, held by Chroma (real) and the in-memory fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.errors import StoreError
from appliance.store.chroma import ChromaIndex
from appliance.store.fake import MemoryIndex
from appliance.store.vectors import VectorIndex


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture(params=["memory", "chroma"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    made: VectorIndex = (
        MemoryIndex()
        if request.param == "memory"
        else ChromaIndex(tmp_path / "chroma", "test-embedder")
    )
    yield made
    made.close()


def test_upsert_query_delete(index: VectorIndex) -> None:
    index.upsert(["a", "b", "c"], np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(1, 1, 0)]))
    assert index.ids() == {"a", "b", "c"}
    hits = index.query(unit(1, 0.1, 0), k=2)
    assert [h[0] for h in hits] == ["a", "c"]
    assert hits[0][1] < hits[1][1]
    index.delete(["a", "unknown"])
    assert index.ids() == {"b", "c"}
    assert index.query(unit(1, 0, 0), k=5)[0][0] == "c"


def test_vectors_come_back_as_stored_and_upsert_replaces(index: VectorIndex) -> None:
    index.upsert(["a"], np.stack([unit(1, 2, 3)]))
    index.upsert(["a"], np.stack([unit(3, 2, 1)]))
    got = index.vectors(["a", "missing"])
    assert list(got) == ["a"]
    assert np.allclose(got["a"], unit(3, 2, 1), atol=1e-6)


def test_an_empty_index_answers_nothing(index: VectorIndex) -> None:
    assert index.query(unit(1, 0, 0), k=3) == []
    assert index.ids() == set()
    index.delete([])
    index.upsert([], np.zeros((0, 3), dtype=np.float32))


def test_chroma_reopens_with_our_vectors_only_and_no_telemetry(tmp_path: Path) -> None:
    first = ChromaIndex(tmp_path, "model-a")
    first.upsert(["x"], np.stack([unit(1, 0, 0)]))
    first.close()
    again = ChromaIndex(tmp_path, "model-a")
    assert again.ids() == {"x"}
    collection = again._collection
    assert collection._embedding_function is None  # Chroma never embeds (nor downloads) itself
    assert again._client.get_settings().anonymized_telemetry is False


def test_a_new_embedder_gets_its_own_collection_and_the_old_one_goes(tmp_path: Path) -> None:
    ChromaIndex(tmp_path, "model-a").upsert(["x"], np.stack([unit(1, 0, 0)]))
    other = ChromaIndex(tmp_path, "model-b")
    assert other.ids() == set()
    assert len(other.drop_others()) == 1
    assert ChromaIndex(tmp_path, "model-a").ids() == set()


def test_a_chroma_delete_that_leaves_vectors_behind_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = ChromaIndex(tmp_path, "model-a")
    index.upsert(["x", "y"], np.stack([unit(1, 0, 0), unit(0, 1, 0)]))
    monkeypatch.setattr(index._collection, "delete", lambda ids: None)  # a delete that failed
    with pytest.raises(StoreError, match="still holds 2 of the 2 vectors just deleted"):
        index.delete(["x", "y"])


def test_chroma_holds_no_text_only_ids_vectors_and_audiences(tmp_path: Path) -> None:
    index = ChromaIndex(tmp_path, "model-a")
    index.upsert(["x", "y"], np.stack([unit(1, 0, 0), unit(0, 1, 0)]), ["*", "hr\nlegal"])
    got = index._collection.get(ids=["x", "y"], include=["documents", "metadatas"])
    assert got["documents"] == [None, None]
    assert got["metadatas"] == [{"audience": "*"}, {"audience": "hr\nlegal"}]


def test_a_query_sees_only_the_audiences_it_names(index: VectorIndex) -> None:
    index.upsert(["hr", "all", "eng"], np.stack([unit(1, 0, 0), unit(0.9, 0.1, 0), unit(0, 1, 0)]),
                 ["hr", "*", "engineering"])  # fmt: skip
    near_hr = unit(1, 0, 0)
    assert [i for i, _ in index.query(near_hr, 3)] == ["hr", "all", "eng"]
    # filtered before the k nearest are taken: k=1 still finds the nearest allowed one
    assert [i for i, _ in index.query(near_hr, 1, ["*", "engineering"])] == ["all"]
    assert [i for i, _ in index.query(near_hr, 3, ["engineering"])] == ["eng"]
    assert index.query(near_hr, 3, []) == []
    index.label(["hr", "unknown"], "*")  # relabelled, the vector kept
    assert [i for i, _ in index.query(near_hr, 1, ["*"])] == ["hr"]
    index.upsert(["new"], np.stack([unit(1, 0, 0)]))  # no audience given: everyone
    assert "new" in [i for i, _ in index.query(near_hr, 5, ["*"])]


def test_a_filtered_query_finds_allowed_vectors_beyond_the_nearest(index: VectorIndex) -> None:
    # 40 hr vectors nearest the query, 2 engineering ones far from it: the engineering reader
    # still gets both (Chroma: past its unfiltered look at the nearest, its `where` query)
    near = [unit(1, 0.01 * n, 0) for n in range(40)]
    index.upsert([f"hr{n}" for n in range(40)] + ["e1", "e2"],
                 np.stack([*near, unit(0, 1, 0), unit(0, 1, 0.2)]),
                 ["hr"] * 40 + ["engineering"] * 2)  # fmt: skip
    assert {i for i, _ in index.query(unit(1, 0, 0), 2, ["engineering"])} == {"e1", "e2"}
    assert [i for i, _ in index.query(unit(1, 0, 0), 1, ["hr", "engineering"])] == ["hr0"]
