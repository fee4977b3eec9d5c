"""Coverage beyond cosine, on real documents, the real embedder, Chroma and SQLite: a question
whose code, name or subject no passage holds is declined however similar the passages are,
a covered one passes, and the decline says why."""

from __future__ import annotations

import msgspec

from appliance.config import RagSettings
from appliance.llm.types import ChatMessage
from appliance.rag.answer import NOT_COVERED, Grounding
from appliance.rag.coverage import CoverageCheck, content_words
from appliance.rag.retrieve import exact_terms as distinctive_terms
from tests.ingest.world import World
from tests.rag import test_retrieve
from tests.rag.test_retrieve import retriever

world = test_retrieve.world  # the fixture: a small library, indexed


def _grounding(world: World, **rag: object) -> Grounding:
    def count(messages: tuple[ChatMessage, ...]) -> int:
        return sum(len(m.content) for m in messages) // 4

    return Grounding(retriever(world), msgspec.convert(rag, RagSettings), count, lambda: 4096)


def test_a_code_no_passage_holds_is_declined_however_similar(world: World) -> None:
    question = "Which project does cost centre XJ-9999 cover?"
    r = retriever(world)
    hits = r.search(question, 5)
    assert hits  # on topic: the cosine floor passes it
    assert hits[0].source == "finance/codes.md"
    assert hits[0].similarity >= r.min_similarity
    coverage = CoverageCheck(r).judge(question, hits)
    assert not coverage.covered
    assert coverage.reason == "missing_terms"
    assert coverage.missing == ["XJ-9999"]


def test_a_covered_question_passes(world: World) -> None:
    g = _grounding(world)
    for question in ("Which project does cost centre XJ-4471 cover?",
                     "How many days before departure must I book a flight?",
                     "How many days of paid leave do employees get?"):  # fmt: skip
        grounded = g.ground((), question, max_tokens=64)
        assert grounded.kind == "documents", (question, grounded.reason, grounded.missing)
        assert grounded.reason == ""
        assert grounded.missing == []


def test_a_subject_no_document_holds_is_declined_and_named(world: World) -> None:
    """The leave document is on topic (paid leave, days per year), but no document holds
    "adoption": the decline names it, what was searched and where, and offers an expert."""
    question = "How many days of paid adoption leave do adoptive parents get per year?"
    grounded = _grounding(world).ground((), question, max_tokens=64, collections=["hr"])
    assert grounded.kind == "abstained"
    assert grounded.messages == ()
    assert grounded.citations == []
    assert "adoption" in grounded.missing
    assert grounded.answer.startswith(NOT_COVERED)
    assert "“adoption”" in grounded.answer
    assert question in grounded.answer
    assert "the collections hr" in grounded.answer
    assert grounded.answer.endswith("You can ask an expert to answer it.")


def test_coverage_off_keeps_the_floor_alone(world: World) -> None:
    question = "Which project does cost centre XJ-9999 cover?"
    assert _grounding(world).ground((), question, max_tokens=64).kind == "abstained"
    off = _grounding(world, coverage=False).ground((), question, max_tokens=64)
    assert off.kind == "documents"


def test_general_mode_answers_what_is_not_covered_on_its_own(world: World) -> None:
    question = "Which project does cost centre XJ-9999 cover?"
    grounded = _grounding(world, mode="general").ground((), question, max_tokens=64)
    assert grounded.kind == "general"
    assert grounded.citations == []
    assert grounded.missing == ["XJ-9999"]


def test_the_terms_looked_for() -> None:
    assert distinctive_terms("Can I work from Oslo with form HR-WA1 and the VPN?") == [
        "HR-WA1", "VPN", "Oslo"]  # fmt: skip
    # Amounts are no terms: a passage on claims above 2,500 EUR answers one of 4,000 EUR.
    assert distinctive_terms("Who approves an expense claim of 4,000 EUR?") == ["EUR"]
    assert content_words("How many weeks of paid adoption leave do I get?") == [
        "weeks", "paid", "adoption", "leave"]  # fmt: skip
