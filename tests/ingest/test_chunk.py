"""Chunking: within the token budget, never across a page or heading, overlapping inside one."""

from __future__ import annotations

import itertools
import random

import pytest

from appliance.embed.embedder import Embedder
from appliance.embed.fake import HashingEmbedder
from appliance.ingest.chunk import Chunker
from appliance.ingest.types import Block

WORDS = ["leave", "policy", "employee", "manager", "travel", "expense", "approval", "handbook",
         "security", "badge", "onboarding", "payroll", "holiday", "remote", "office"]


def prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def document(seed: int) -> list[Block]:
    rng = random.Random(seed)  # noqa: S311 - sample text, not secrets
    blocks = []
    for page in (1, 2, 3):
        for heading in ("Intro", "Intro > Details"):
            blocks += [Block(prose(rng, rng.randint(3, 400)), page, heading)
                       for _ in range(rng.randint(1, 4))]  # fmt: skip
    return blocks


@pytest.fixture(params=["fake", "onnx"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    if request.param == "fake":
        return HashingEmbedder()
    real: Embedder = request.getfixturevalue("onnx_embedder")
    return real


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chunks_fit_the_budget_and_keep_their_section(embedder: Embedder, seed: int) -> None:
    blocks = document(seed)
    chunks = Chunker(embedder.token_spans, 64, 16).chunks(blocks)
    sections = {(b.page, b.heading) for b in blocks}
    for chunk in chunks:
        assert 0 < chunk.tokens == embedder.count_tokens(chunk.text) <= 64
        assert (chunk.page, chunk.heading) in sections
        assert any(chunk.text[:20] in b.text for b in blocks if (b.page, b.heading) == (
            chunk.page, chunk.heading))  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2])
def test_every_word_of_the_document_is_in_some_chunk(embedder: Embedder, seed: int) -> None:
    blocks = document(seed)
    chunks = Chunker(embedder.token_spans, 48, 8).chunks(blocks)
    for page, heading in {(b.page, b.heading) for b in blocks}:
        words = " ".join(b.text for b in blocks if (b.page, b.heading) == (page, heading)).split()
        joined = " ".join(c.text for c in chunks if (c.page, c.heading) == (page, heading))
        assert set(words) <= set(joined.split())
        assert len(joined.split()) >= len(words)


def test_a_long_paragraph_is_cut_in_overlapping_windows_between_words() -> None:
    text = " ".join(f"w{i}" for i in range(100))
    chunks = Chunker(HashingEmbedder().token_spans, 20, 5).chunks([Block(text)])
    assert len(chunks) > 1
    for before, after in itertools.pairwise(chunks):
        tail = before.text.split()[-3:]
        assert after.text.split()[:3] != tail  # moved on
        assert set(tail) <= set(after.text.split())  # but repeats the end of the previous one
    assert all(c.text.split()[0].startswith("w") for c in chunks)
    assert chunks[-1].text.endswith("w99")


def test_small_paragraphs_are_packed_and_nothing_is_empty() -> None:
    blocks = [Block(f"Paragraph {i} is short.", 1, "H") for i in range(10)]
    chunks = Chunker(HashingEmbedder().token_spans, 30, 0).chunks(blocks)
    assert 1 < len(chunks) < 10
    assert all(c.text.strip() for c in chunks)
    assert "\n\n" in chunks[0].text


def test_overlap_must_be_smaller_than_the_size() -> None:
    with pytest.raises(ValueError, match="overlap"):
        Chunker(HashingEmbedder().token_spans, 10, 10)


def test_a_section_holding_only_its_heading_line_makes_no_chunk() -> None:
    chunker = Chunker(HashingEmbedder().token_spans, size=64, overlap=8)
    section = "Year-end closing > Deadlines"
    blocks = [Block("Year-end closing", None, "Year-end closing"),
              Block("Deadlines", None, section), Block("Ledgers freeze on 10 July.", None, section)]
    chunks = chunker.chunks(blocks)
    assert [(c.heading, c.text) for c in chunks] == [
        ("Year-end closing > Deadlines", "Deadlines\n\nLedgers freeze on 10 July.")]
