"""Retrieval quality on the fixture corpus (tests/data/rag_corpus/, questions in
tests/data/rag_questions.jsonl): hybrid search keeps the hit rates measured with the real
embedder, Chroma and SQLite, and does at least as well as either retriever alone
(scripts/eval/retrieval.py prints the table)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.embed.embedder import Embedder
from appliance.store.catalog import Catalog
from tests.conftest import load_script
from tests.data import make_rag_corpus

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "eval" / "retrieval.py"
# Measured on 60 questions, top 5, min_similarity -1, then set a little lower:
#           hit@1  hit@5  MRR
# vector     0.85   0.98  0.90
# bm25       0.93   0.98  0.96
# hybrid     0.93   1.00  0.96
HYBRID_FLOORS = {"hit@1": 0.85, "hit@5": 0.93, "mrr": 0.9}
# Hybrid with the default floor (0.25) measured hit@5 1.00 (0.90 before a code or name of the
# question found as written by BM25 was let through the floor: "SUP-19", "Ingrid Solberg").
SERVED_HIT5_FLOOR = 0.93
TOLERANCE = 0.02  # about one question in 60


retrieval_eval = load_script(SCRIPT, "retrieval_eval")


@pytest.fixture(scope="module")
def questions() -> list[Any]:
    return list(retrieval_eval.load())


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, onnx_embedder: Embedder) -> Iterator[Any]:
    built = retrieval_eval.index_corpus(onnx_embedder, tmp_path_factory.mktemp("eval"))
    yield built
    built.close()


@pytest.fixture(scope="module")
def results(index: Any, questions: list[Any]) -> dict[str, Any]:
    return dict(retrieval_eval.evaluate(index, questions))


def _measures(scores: Any) -> dict[str, float]:
    return {"hit@1": scores.hit_at(1), "hit@5": scores.hit_at(5), "mrr": scores.mrr}


def _content(name: str, data: bytes) -> object:
    """A .docx by its members' content: another zlib may compress them differently."""
    if not name.endswith(".docx"):
        return data
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {member: archive.read(member) for member in archive.namelist()}


def test_the_binary_files_are_what_the_script_makes() -> None:
    for name, data in make_rag_corpus.files().items():
        on_disk = (retrieval_eval.CORPUS / name).read_bytes()
        assert _content(name, on_disk) == _content(name, data), f"{name}: run the script"


def test_questions_cover_every_document_and_real_pages(index: Any, questions: list[Any]) -> None:
    documents = {d.path: d for d in Catalog(index.db).documents()}
    assert 40 <= len(questions) <= 80
    assert {q.source for q in questions} == set(documents)
    paged = [q for q in questions if q.page is not None]
    assert len(paged) >= 10
    assert all(1 <= q.page <= documents[q.source].pages for q in paged)


def test_hybrid_keeps_its_measured_quality(results: dict[str, Any]) -> None:
    measured = _measures(results["hybrid"])
    misses = [(q.question, got) for q, got in results["hybrid"].misses]
    for name, floor in HYBRID_FLOORS.items():
        assert measured[name] >= floor, (name, measured, misses)


@pytest.mark.parametrize("alone", ["vector", "bm25"])
def test_hybrid_does_at_least_as_well_as_one_retriever(results: dict[str, Any],
                                                       alone: str) -> None:  # fmt: skip
    hybrid, other = _measures(results["hybrid"]), _measures(results[alone])
    assert hybrid["hit@5"] >= other["hit@5"] - TOLERANCE, (hybrid, other)
    assert hybrid["mrr"] >= other["mrr"] - TOLERANCE, (hybrid, other)


def test_the_default_relevance_floor_keeps_most_hits(index: Any, questions: list[Any]) -> None:
    floor = retrieval_eval.RagSettings().min_similarity
    served = retrieval_eval.evaluate(index, questions, {"hybrid": (1.0, 1.0)}, floor)["hybrid"]
    assert served.hit_at(5) >= SERVED_HIT5_FLOOR, [q.question for q, _ in served.misses]


# Declines through Grounding with the default rag settings (scripts/eval/retrieval.py prints
# them). Measured: uncovered 0.60 (21/35), covered 0.05 (3/65: "Spain" and "Singapore" are
# names no passage holds, "How quickly does IT respond when the whole production network is
# down?" has four words no document holds and a weak best passage, 0.40). The floor alone
# declined none of either.
UNCOVERED_GOAL, COVERED_GOAL = 0.90, 0.05
UNCOVERED_MEASURED = 0.57  # 0.60 less about one question in 35


@pytest.fixture(scope="module")
def declines(index: Any, questions: list[Any]) -> dict[str, list[Any]]:
    rag = retrieval_eval.RagSettings()
    uncovered = [q.question for q in retrieval_eval.load_uncovered()]
    covered = [q.question for q in questions]
    return {"uncovered": retrieval_eval.grounded(index, uncovered, rag),
            "covered": retrieval_eval.grounded(index, covered, rag)}  # fmt: skip


def test_uncovered_questions_are_company_questions_near_documents() -> None:
    uncovered = retrieval_eval.load_uncovered()
    assert len(uncovered) >= 30
    assert len({q.near for q in uncovered}) >= 10


def test_few_covered_questions_are_declined(declines: dict[str, list[Any]]) -> None:
    wrong = [(a.query, a.reason, a.missing) for a in declines["covered"] if a.kind == "abstained"]
    assert retrieval_eval.declined(declines["covered"]) <= COVERED_GOAL, wrong


def test_uncovered_questions_are_declined_as_measured(declines: dict[str, list[Any]]) -> None:
    answered = [a.query for a in declines["uncovered"] if a.kind != "abstained"]
    assert retrieval_eval.declined(declines["uncovered"]) >= UNCOVERED_MEASURED, answered


@pytest.mark.xfail(
    strict=True,
    reason="measured 0.60: near misses (breakfast at a canteen "
    "that serves lunch, payday in a payroll page) need a reader, not words",
)
def test_uncovered_questions_meet_the_goal(declines: dict[str, list[Any]]) -> None:
    assert retrieval_eval.declined(declines["uncovered"]) >= UNCOVERED_GOAL
