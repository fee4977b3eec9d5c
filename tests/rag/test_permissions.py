"""Retrieval filtered by who asks, on the real embedder, Chroma and SQLite: a document a reader
may not see is never a candidate of either retriever (filtered before ranking, so it cannot
crowd out what they may see), and a decline reads exactly as if it did not exist."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from appliance.config import RagSettings
from appliance.embed.embedder import Embedder
from appliance.llm.types import ChatMessage
from appliance.rag.answer import Grounding
from appliance.store.audience import EVERYTHING, Reader
from tests.ingest.world import World, make_world
from tests.rag.test_retrieve import retriever

HR = "# Salary bands\n\nThe salary band of grade HR-PL3 runs from 52,000 to 61,000 a year.\n"
TRAVEL = "# Travel\n\nBook trains for trips under 500 km; flights need a manager's approval.\n"
ENGINEER = Reader(groups=frozenset({"engineering"}))
HR_STAFF = Reader(groups=frozenset({"hr"}))


def build(tmp: Path, embedder: Embedder, *, with_hr: bool) -> World:
    world = make_world(tmp, embedder)
    world.write("travel.md", TRAVEL)
    world.write("eng/.access", "engineering\n")
    world.write("eng/oncall.md", "# On call\n\nThe on-call engineer answers within 15 minutes.\n")
    if with_hr:
        world.write("hr/.access", "hr\n")
        world.write("hr/bands.md", HR)
        for n in range(60):  # many of them, nearer to a travel question than travel.md
            world.write(f"hr/trips/{n}.md", f"# Flights for trips\n\nDo flights for trips "
                        f"need approval? Flights for trips {n} need approval.\n")  # fmt: skip
    world.pipeline.reconcile()
    return world


@pytest.fixture
def world(tmp_path: Path, onnx_embedder: Embedder) -> World:
    return build(tmp_path / "a", onnx_embedder, with_hr=True)


def test_forbidden_chunks_are_never_candidates_of_either_retriever(world: World) -> None:
    for options in ({}, {"vector_weight": 0.0}, {"keyword_weight": 0.0}):
        r = retriever(world, **options)
        sources = {h.source for h in r.search("salary band HR-PL3", 50, reader=ENGINEER)}
        assert not any(s.startswith("hr/") for s in sources), options
        assert r.search("salary band HR-PL3", 3, reader=HR_STAFF)[0].source == "hr/bands.md"
        assert r.search("salary band HR-PL3", 3)[0].source == "hr/bands.md"  # an admin
        # and the other way round (the keyword side then names what HR may not see)
        oncall = {h.source for h in r.search("on-call engineer", 50, reader=HR_STAFF)}
        assert "eng/oncall.md" not in oncall, options
        assert r.search("on-call engineer", 3, reader=ENGINEER)[0].source == "eng/oncall.md"


def test_filtering_comes_before_ranking(world: World) -> None:
    # 60 HR trip notes outrank travel.md for everyone who may see them; filtered after ranking
    # (20 candidates each), the engineer would get nothing
    question = "Do flights for trips need approval?"
    assert retriever(world).search(question, 1, reader=HR_STAFF)[0].source.startswith("hr/")
    hits = retriever(world).search(question, 1, reader=ENGINEER)
    assert [h.source for h in hits] == ["travel.md"]


def test_words_only_forbidden_documents_hold_are_unknown(world: World) -> None:
    r = retriever(world)
    assert r.unknown(["salary", "trains"], ENGINEER) == ["salary"]
    assert r.unknown(["salary", "trains"], HR_STAFF) == []
    assert r.unknown(["salary", "trains"], EVERYTHING) == []


def test_a_decline_says_what_it_would_without_the_forbidden_files(
    world: World, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    without = build(tmp_path / "b", onnx_embedder, with_hr=False)

    def grounding(w: World) -> Grounding:
        def count(messages: tuple[ChatMessage, ...]) -> int:
            return sum(len(m.content) for m in messages) // 4

        return Grounding(retriever(w), msgspec.convert({}, RagSettings), count, lambda: 4096)

    for question in ("What is the salary band of grade HR-PL3?",
                     "How much does a senior payroll grade earn?"):  # fmt: skip
        asked = grounding(world).ground((), question, max_tokens=64, reader=ENGINEER)
        alone = grounding(without).ground((), question, max_tokens=64, reader=ENGINEER)
        assert asked.kind == alone.kind == "abstained", question
        assert asked.answer == alone.answer
        assert "hr/" not in asked.answer
        assert grounding(world).ground((), question, max_tokens=64,
                                       reader=HR_STAFF).kind == "documents"  # fmt: skip
