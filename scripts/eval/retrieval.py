#!/usr/bin/env python3
"""Retrieval quality: how often the passage that answers a question is among the top 5 hits.

Copies `tests/data/rag_corpus/` (a fictional company's policies in Markdown, text, HTML, CSV,
.docx and PDF, in four collections) into a temporary data dir, indexes it with the ingest
pipeline as the appliance builds it (default chunk size and overlap) and the default embedder
(all-MiniLM-L6-v2, ONNX int8), then asks each question of `tests/data/rag_questions.jsonl`
through `Retriever.search(question, k=5)` in three modes: vector only, BM25 only, and hybrid
(both, fused by reciprocal rank fusion: what the appliance serves).

A hit is a retrieved chunk from the question's source file and, for a PDF, from its page.
Per mode: hit@1 and hit@5 (the share of questions with a hit at rank 1, in the top 5) and MRR
(the mean of 1/rank of the first hit, 0 when none of the 5 is one). The three modes run with
min_similarity=-1, so that the relevance floor hides no ranking difference; the last row is
hybrid with the default floor (rag.min_similarity), which drops chunks that would rank.
`-v` lists the questions each mode misses, with what it returned instead.

Then declines, through `Grounding.ground` with the default rag settings (the relevance floor
and the coverage check, rag/coverage.py): the share of the questions of
`tests/data/rag_uncovered.jsonl` (company questions no document answers, many on the topic of
a document that lacks the fact) that are declined (goal >= 0.90), and of the covered questions
(goal <= 0.05). `-v` lists the wrong ones with the reason. scripts/eval/decline.py measures the
same through the chat API.

    .venv/bin/python scripts/eval/retrieval.py [--corpus DIR] [--questions FILE] [-v]
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import msgspec

from appliance.config import DocumentsSettings, RagSettings, Settings
from appliance.embed.embedder import Embedder
from appliance.ingest.chunk import Chunker
from appliance.ingest.pipeline import IngestPipeline
from appliance.ingest.types import Limits
from appliance.llm.types import ChatMessage
from appliance.rag.answer import Grounded, Grounding
from appliance.rag.retrieve import Hit, Retriever
from appliance.store.catalog import Catalog
from appliance.store.chroma import ChromaIndex
from appliance.store.db import Database
from appliance.store.keywords import KeywordIndex
from appliance.wiring import build_embedder

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
CORPUS = DATA / "rag_corpus"
QUESTIONS = DATA / "rag_questions.jsonl"
UNCOVERED = DATA / "rag_uncovered.jsonl"
# The test suite's ONNX export (tests/conftest.py), so that the two share one.
EMBED_CACHE = Path(tempfile.gettempdir()) / f"appliance-tests-onnx-{os.getuid()}"
K = 5
NO_FLOOR = -1.0
# (vector_weight, keyword_weight) of each mode; a retriever weighted 0 is not asked.
MODES = {"vector": (1.0, 0.0), "bm25": (0.0, 1.0), "hybrid": (1.0, 1.0)}


class Question(msgspec.Struct, frozen=True):
    question: str
    source: str  # the answer's file, relative to the corpus
    page: int | None  # its 1-based PDF page; None for formats without pages


class Uncovered(msgspec.Struct, frozen=True):
    question: str
    near: str  # the document on its topic that lacks the fact asked (for the reader)


class Scores(msgspec.Struct):
    ranks: list[int | None] = msgspec.field(default_factory=list)  # first hit's rank, 1-based
    misses: list[tuple[Question, list[str]]] = msgspec.field(default_factory=list)  # got instead

    def hit_at(self, n: int) -> float:
        return sum(1 for r in self.ranks if r is not None and r <= n) / max(len(self.ranks), 1)

    @property
    def mrr(self) -> float:
        return sum(1 / r for r in self.ranks if r is not None) / max(len(self.ranks), 1)


@dataclass
class Index:
    """The corpus indexed in a data dir: what a Retriever is built from."""

    db: Database
    vectors: ChromaIndex
    embedder: Embedder

    def retriever(self, vector_weight: float, keyword_weight: float,
                  min_similarity: float) -> Retriever:  # fmt: skip
        return Retriever(self.embedder, self.vectors, KeywordIndex(self.db), Catalog(self.db),
                         vector_weight=vector_weight, keyword_weight=keyword_weight,
                         min_similarity=min_similarity)  # fmt: skip

    def chunks(self) -> int:
        return sum(d.chunks for d in Catalog(self.db).documents())

    def close(self) -> None:
        self.vectors.close()
        self.db.close()


T = TypeVar("T")


def _read(path: Path | str, kind: type[T]) -> list[T]:
    """The JSON lines of `path`, each decoded as `kind`."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [msgspec.json.decode(line, type=kind) for line in lines if line.strip()]


def load(path: Path | str = QUESTIONS, corpus: Path = CORPUS) -> list[Question]:
    questions = _read(path, Question)
    for n, q in enumerate(questions, 1):
        if not (corpus / q.source).is_file():
            raise ValueError(f"{path}, question {n}: source {q.source!r} is not in {corpus}")
        if (q.page is not None) != q.source.endswith(".pdf"):
            raise ValueError(f"{path}, question {n}: a page is given for PDFs and only for them")
    return questions


def load_uncovered(path: Path | str = UNCOVERED, corpus: Path = CORPUS) -> list[Uncovered]:
    questions = _read(path, Uncovered)
    for n, q in enumerate(questions, 1):
        if not (corpus / q.near).is_file():
            raise ValueError(f"{path}, question {n}: near {q.near!r} is not in {corpus}")
    return questions


def grounded(index: Index, questions: list[str], rag: RagSettings) -> list[Grounded]:
    """Each question grounded as the appliance grounds a first question with `rag`. (The
    token count is a rough one: the prompt's fitting has no part in what is declined.)"""
    retriever = index.retriever(rag.vector_weight, rag.keyword_weight, rag.min_similarity)

    def count(messages: tuple[ChatMessage, ...]) -> int:
        return sum(len(m.content) for m in messages) // 4

    grounding = Grounding(retriever, rag, count, lambda: 8192)
    return [grounding.ground((), q, max_tokens=16) for q in questions]


def declined(answers: list[Grounded]) -> float:
    return sum(1 for a in answers if a.kind == "abstained") / max(len(answers), 1)


def index_corpus(embedder: Embedder, data: Path, corpus: Path = CORPUS) -> Index:
    """The corpus copied to `data`/documents and indexed there, by the pipeline that
    wiring.build_pipeline makes from default settings, with `embedder` passed in."""
    docs = DocumentsSettings()
    root = data / "documents"
    shutil.copytree(corpus, root)
    db = Database(data / "appliance.db")
    vectors = ChromaIndex(data / "chroma", embedder.name)
    chunker = Chunker(embedder.token_spans, docs.chunk_tokens, docs.chunk_overlap)
    limits = Limits(max_unpacked_bytes=docs.max_unpacked_mb * 2**20)
    pipeline = IngestPipeline(root, Catalog(db), vectors, embedder, chunker,
                              max_file_bytes=docs.max_file_mb * 2**20, limits=limits)  # fmt: skip
    pipeline.reconcile()
    failed = [f"{d.path}: {d.error}" for d in Catalog(db).documents() if d.status != "indexed"]
    if failed:
        raise RuntimeError("not indexed: " + "; ".join(failed))
    return Index(db, vectors, embedder)


def rank(hits: list[Hit], q: Question) -> int | None:
    """The 1-based rank of the first hit on the question's source (and page), if any."""
    for n, hit in enumerate(hits, 1):
        if hit.source == q.source and (q.page is None or hit.page == q.page):
            return n
    return None


def evaluate(index: Index, questions: list[Question], modes: dict[str, tuple[float, float]] = MODES,
             min_similarity: float = NO_FLOOR) -> dict[str, Scores]:  # fmt: skip
    results = {}
    for mode, (vector_weight, keyword_weight) in modes.items():
        retriever = index.retriever(vector_weight, keyword_weight, min_similarity)
        scores = Scores()
        for q in questions:
            hits = retriever.search(q.question, K)
            scores.ranks.append(rank(hits, q))
            if scores.ranks[-1] is None:
                scores.misses.append((q, [_where(h) for h in hits]))
        results[mode] = scores
    return results


def _where(hit: Hit) -> str:
    return hit.source if hit.page is None else f"{hit.source} p.{hit.page}"


def show(results: dict[str, Scores], verbose: bool) -> None:
    print(f"{'mode':<20}{'hit@1':>7}{'hit@5':>7}{'MRR':>7}")
    for mode, scores in results.items():
        print(f"{mode:<20}{scores.hit_at(1):7.2f}{scores.hit_at(K):7.2f}{scores.mrr:7.2f}")
    for mode, scores in results.items() if verbose else ():
        for q, got in scores.misses:
            expected = q.source + (f" p.{q.page}" if q.page else "")
            print(f"\n{mode} missed {q.question!r} ({expected}); got: {', '.join(got) or '-'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=os.path.relpath(CORPUS),
                        help="folder of documents (default: %(default)s)")  # fmt: skip
    parser.add_argument("--questions", default=os.path.relpath(QUESTIONS),
                        help="questions as JSON lines (default: %(default)s)")  # fmt: skip
    parser.add_argument("--cache-dir", default=str(EMBED_CACHE),
                        help="where the ONNX export is kept (default: %(default)s)")  # fmt: skip
    parser.add_argument("--uncovered", default=os.path.relpath(UNCOVERED),
                        help="questions no document answers (default: %(default)s)")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list the questions each mode misses")  # fmt: skip
    args = parser.parse_args()
    questions = load(args.questions, Path(args.corpus))
    uncovered = [q.question for q in load_uncovered(args.uncovered, Path(args.corpus))]
    settings = msgspec.convert({"embed": {"cache_dir": args.cache_dir}}, Settings)
    floor = RagSettings().min_similarity
    with tempfile.TemporaryDirectory(prefix="appliance-eval-") as tmp:
        index = index_corpus(build_embedder(settings), Path(tmp), Path(args.corpus))
        results = evaluate(index, questions)
        served = evaluate(index, questions, {"hybrid": MODES["hybrid"]}, floor)["hybrid"]
        covered = [q.question for q in questions]
        floor_only = RagSettings(coverage=False)
        before = {"uncovered": grounded(index, uncovered, floor_only),
                  "covered": grounded(index, covered, floor_only)}  # fmt: skip
        declines = {"uncovered": grounded(index, uncovered, RagSettings()),
                    "covered": grounded(index, covered, RagSettings())}  # fmt: skip
        chunks = index.chunks()
        index.close()
    flags = [f"--corpus={args.corpus}", f"--questions={args.questions}",
             f"--uncovered={args.uncovered}",
             *(["-v"] if args.verbose else [])]  # fmt: skip
    print(f"command: {shlex.join([os.path.relpath(sys.executable), sys.argv[0], *flags])}")
    print(f"{len(questions)} questions, {chunks} chunks, top {K}, min_similarity {NO_FLOOR:g} "
          f"except the last row\n")  # fmt: skip
    show({**results, f"hybrid, floor {floor:g}": served}, args.verbose)
    show_declines("the floor only (rag.coverage = false)", before, False)
    show_declines("default rag settings", declines, args.verbose)


def show_declines(title: str, declines: dict[str, list[Grounded]], verbose: bool) -> None:
    """The declined shares, and with `verbose` the uncovered questions answered and the
    covered ones declined (with the reason and the terms missing)."""
    print(f"\ndeclined through Grounding, {title}:")
    for name, goal in (("uncovered", ">= 0.90"), ("covered", "<= 0.05")):
        answers = declines[name]
        n = sum(1 for a in answers if a.kind == "abstained")
        print(f"  {name:<10} {declined(answers):5.2f} ({n}/{len(answers)}; goal {goal})")
    for a in declines["uncovered"] if verbose else ():
        if a.kind != "abstained":
            print(f"\nanswered, not covered: {a.query!r}; got: {a.citations[0].source}")
    for a in declines["covered"] if verbose else ():
        if a.kind == "abstained":
            print(f"\ndeclined, covered: {a.query!r} ({a.reason}: {', '.join(a.missing)})")


if __name__ == "__main__":
    main()
