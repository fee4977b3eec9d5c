"""Hybrid retrieval on real documents: vectors and BM25 fused, pages kept, collections scoped,
a floor for what is not covered, and the keyword index in step with the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.embed.embedder import Embedder
from appliance.rag.retrieve import Retriever
from appliance.store.keywords import KeywordIndex
from tests.ingest.samples import pdf_bytes
from tests.ingest.world import World, make_world

TRAVEL = """# Travel policy

## Flights

Flights must be booked at least 14 days before departure through the travel desk.

## Per diem

The daily allowance is 45 euros at home and 60 euros abroad.
"""
LEAVE = "# Leave\n\nEmployees get 25 days of paid leave per year; request it from your manager."
CODES = "# Cost centres\n\nCost centre XJ-4471 covers the cafeteria renovation."


@pytest.fixture
def world(tmp_path: Path, onnx_embedder: Embedder) -> World:
    w = make_world(tmp_path, onnx_embedder, size=64, overlap=8)
    w.write("finance/travel.md", TRAVEL)
    w.write("hr/leave.md", LEAVE)
    w.write("finance/codes.md", CODES)
    w.write("hr/handbook.pdf", pdf_bytes(["Welcome to the company.", "Our offices.",
                                          "The parking garage closes at 22:00 on weekdays."]))
    w.pipeline.reconcile()
    return w


def retriever(world: World, **options: float) -> Retriever:
    return Retriever(world.embedder, world.index, KeywordIndex(world.db), world.catalog,
                     **options)  # type: ignore[arg-type]


def test_the_right_chunk_comes_first_found_by_both(world: World) -> None:
    hits = retriever(world).search("How many days before departure must I book a flight?", 5)
    assert hits[0].source == "finance/travel.md"
    assert hits[0].heading == "Travel policy > Flights"
    assert set(hits[0].found_by) == {"vector", "keyword"}
    assert "14 days" in hits[0].snippet


def test_a_pdf_fact_cites_its_page(world: World) -> None:
    hit = retriever(world).search("When does the parking garage close?", 3)[0]
    assert (hit.source, hit.page) == ("hr/handbook.pdf", 3)


def test_keywords_find_what_embeddings_miss(world: World) -> None:
    hits = retriever(world, min_similarity=-1).search("XJ-4471", 3)
    assert hits[0].source == "finance/codes.md"
    assert "keyword" in hits[0].found_by


def test_collections_limit_the_sources(world: World) -> None:
    hits = retriever(world).search("How many days of leave and travel allowance?", 5, ["hr"])
    assert hits
    assert all(h.source.startswith("hr/") for h in hits)


def test_nothing_clears_the_floor_for_an_unrelated_question(world: World) -> None:
    assert retriever(world).search("What is a good recipe for chocolate cake?", 5) == []


def test_the_keyword_index_follows_the_catalog(world: World) -> None:
    keywords = KeywordIndex(world.db)
    assert keywords.search("cafeteria renovation", 3)
    (world.root / "finance/codes.md").unlink()
    world.pipeline.sync("finance/codes.md")
    assert keywords.search("cafeteria renovation", 3) == []
    assert keywords.search('"); DROP TABLE chunks; --', 3) == []  # no FTS syntax from users


def test_a_small_collection_is_found_under_a_large_one(world: World) -> None:
    for n in range(30):
        world.write(f"big/travel-{n}.md", f"# Trip {n}\n\nHow many days before departure "
                                          f"must I book a flight for trip {n}? Ten days.")
    world.write("tiny/flights.md", "# Interns\n\nInterns have their air travel arranged by "
                                   "HR, three days ahead.")
    world.pipeline.reconcile()
    question = "How many days before departure must I book a flight?"
    scoped = retriever(world, candidates=2).search(question, 3, ["tiny"])
    assert [h.source for h in scoped] == ["tiny/flights.md"]


def test_a_retriever_apart_finds_the_same_on_threads_of_its_own(world: World) -> None:
    shared = retriever(world)
    apart = shared.apart()
    question = "How many days before departure must I book a flight?"
    assert apart.search(question, 5) == shared.search(question, 5)
    assert apart._pool is not shared._pool
