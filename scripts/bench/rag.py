#!/usr/bin/env python3
"""RAG speed: retrieval latency at scale, and the time to the first token of an answer.

Retrieval (`--part latency`): builds a catalog and a Chroma collection of `--chunks`
synthetic chunks (random unit vectors, texts from a fixed vocabulary) in a temporary data dir,
then times `Retriever.search` with a precomputed query vector (query embedding excluded, as
the target says) against Chroma alone for the same vectors: the library's `collection.query`,
and the appliance's `ChromaIndex.query` around it. Prints p50/p95 in ms and the target
(hybrid p95 <= 20 ms). Building 100k chunks takes about 80 s on a 2-core machine.

Time to first token (`--part ttft`): indexes tests/data/rag_corpus (a few dozen documents) in a
temporary watched folder with the appliance's own pipeline and embedder, starts the bundled
model in the engine, and for each of `--runs` questions times what an answer costs before its
first token: grounding (query embedding, hybrid retrieval, fitting the prompt with the model's
tokenizer) and the engine (queue, tokenizing, prompt evaluation, first sample). Against it, the
raw llama-cpp-python doing the same prompt evaluation: `Llama.create_completion` of the very
same prompt tokens, max_tokens=1, with the same n_ctx and threads. Both evaluate the whole
prompt every time (the KV cache is reset: the engine does so for a seeded request, the raw
side by `reset()`), and each run asks another question. Prints medians, the overhead in ms
(target <= 150 ms) and the ratio. About 30 s.

    .venv/bin/python scripts/bench/rag.py [--part all|latency|ttft] [--chunks 100000]
        [--queries 200] [--runs 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import chromadb
import llama_cpp
import msgspec
import numpy as np
from chromadb.config import Settings as ChromaSettings

from appliance.config import LlmSettings, RagSettings, Settings
from appliance.llm.batched import BatchedEngine
from appliance.llm.models import resolve_model
from appliance.llm.types import GenerationRequest, SamplingParams, TokenEvent
from appliance.rag.answer import Grounding
from appliance.rag.retrieve import Retriever
from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.chroma import ChromaIndex
from appliance.store.db import Database
from appliance.store.keywords import KeywordIndex
from appliance.wiring import build_pipeline

# A vocabulary like a company's documents': a few thousand words, some far more common than
# others (Zipf), so that BM25 has to rank rather than match everything.
_SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "gu", "ze"]
WORDS = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES][:3000]
WEIGHTS = [1 / (rank + 1) for rank in range(len(WORDS))]
DIM = 384
DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
# The test suite's ONNX export of the embedder (tests/conftest.py), so that the two share one.
EMBED_CACHE = Path(tempfile.gettempdir()) / f"appliance-tests-onnx-{os.getuid()}"


class FixedQuery:
    """An embedder stand-in that returns a preset vector: query embedding is not timed."""

    name, dim, max_tokens = "bench", DIM, 256
    vector = np.zeros(DIM, dtype=np.float32)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.vector.reshape(1, -1)


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(data: Path, chunks: int, seed: int) -> tuple[Catalog, ChromaIndex, Database]:
    rng, words = np.random.default_rng(seed), random.Random(seed)  # noqa: S311 - not secrets
    db = Database(data / "appliance.db")
    catalog, index = Catalog(db), ChromaIndex(data / "chroma", "bench")
    per_doc = 50
    for doc in range(chunks // per_doc):
        rows = [ChunkRow(id=uuid.uuid4().hex, ord=n, page=None, heading=f"Section {n}",
                         text=" ".join(words.choices(WORDS, WEIGHTS, k=60)),
                         hash=uuid.uuid4().hex, tokens=60) for n in range(per_doc)]  # fmt: skip
        index.upsert([r.id for r in rows], unit(rng, per_doc))
        catalog.replace_chunks(FileState(f"c{doc % 10}/doc{doc}.md", 1, 1, f"s{doc}"), None, rows)
    return catalog, index, db


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = sorted(t * 1000 for t in times)
    return statistics.median(ms), ms[int(len(ms) * 0.95) - 1]


def latency(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        catalog, index, db = build(Path(tmp), args.chunks, args.seed)
        print(f"{args.chunks:,} chunks built in {time.perf_counter() - started:.0f} s")
        # The library itself, opened as ChromaIndex opens it (same settings, same collection).
        client = chromadb.PersistentClient(path=str(Path(tmp) / "chroma"), settings=ChromaSettings(
            anonymized_telemetry=False, allow_reset=False))  # fmt: skip
        collection = client.get_collection(index.collection_name, embedding_function=None)
        embedder = FixedQuery()
        retriever = Retriever(embedder, index, KeywordIndex(db), catalog,  # type: ignore[arg-type]
                              min_similarity=-1.0)  # fmt: skip
        rng, words = np.random.default_rng(args.seed + 1), random.Random(args.seed)  # noqa: S311
        hybrid: list[float] = []
        wrapped: list[float] = []
        raw: list[float] = []
        for vector in unit(rng, args.queries):
            query = " ".join(words.choices(WORDS, WEIGHTS, k=6))
            embedder.vector = vector
            t = time.perf_counter()
            retriever.search(query, 5)
            hybrid.append(time.perf_counter() - t)
            t = time.perf_counter()
            index.query(vector, 20)
            wrapped.append(time.perf_counter() - t)
            t = time.perf_counter()
            collection.query(query_embeddings=vector.reshape(1, -1), n_results=20,
                             include=["distances"])  # fmt: skip
            raw.append(time.perf_counter() - t)
        print(f"{'':38} {'p50 ms':>8} {'p95 ms':>8}")
        for name, times in (("Chroma collection.query (k=20)", raw),
                            ("ChromaIndex.query (the adapter)", wrapped),
                            ("hybrid Retriever.search (k=5)", hybrid)):  # fmt: skip
            p50, p95 = percentiles(times)
            print(f"{name:38} {p50:8.2f} {p95:8.2f}")
        ratio = percentiles(hybrid)[0] / percentiles(raw)[0]
        print(f"{'ratio hybrid / Chroma alone (p50)':38} {ratio:8.1f}")
        print(f"{'':38} target: hybrid p95 <= 20 ms")
        db.close()


def ttft(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = msgspec.convert({
            "data_dir": str(Path(tmp) / "data"),
            "documents": {"watch_dir": str(Path(tmp) / "documents")},
            "embed": {"cache_dir": str(EMBED_CACHE)},
            "llm": {"n_threads": args.threads},
        }, Settings)  # fmt: skip
        shutil.copytree(DATA / "rag_corpus", settings.watch_path)
        db = Database(settings.data_path / "appliance.db")
        pipeline = build_pipeline(settings, db)
        pipeline.reconcile()
        rag = RagSettings()
        retriever = Retriever(pipeline.embedder, pipeline.index, KeywordIndex(db), Catalog(db),
                              candidates=rag.candidates, vector_weight=rag.vector_weight,
                              keyword_weight=rag.keyword_weight,
                              min_similarity=rag.min_similarity)  # fmt: skip
        documents = Catalog(db).documents()
        if failed := [f"{d.path}: {d.error}" for d in documents if d.status != "indexed"]:
            raise SystemExit("not indexed: " + "; ".join(failed))
        print(f"{sum(d.chunks for d in documents)} chunks of {len(documents)} documents indexed")
        model, s = resolve_model(settings.llm), settings.llm
        engine = BatchedEngine(model, model.stem, s)
        engine.start()
        if not engine.wait_ready(120):
            raise SystemExit(f"the model did not load: {engine.info().load_error}")
        grounding = Grounding(retriever, rag, engine.count_tokens, engine.context_size)
        raw = llama_cpp.Llama(model_path=str(model), n_ctx=s.n_ctx, n_threads=args.threads,
                              n_threads_batch=args.threads, n_gpu_layers=s.n_gpu_layers,
                              verbose=False)  # fmt: skip
        lines = (DATA / "rag_questions.jsonl").read_text(encoding="utf-8").splitlines()
        questions = [msgspec.json.decode(line)["question"] for line in lines if line.strip()]
        random.Random(args.seed).shuffle(questions)  # noqa: S311 - not secrets
        try:
            timed = asyncio.run(_answers(engine, grounding, raw, questions, args.runs, s))
        finally:
            engine.stop()
            pipeline.index.close()
            db.close()
    _report_ttft(timed, model.name, args.threads, s.n_ctx)


async def _answers(engine: BatchedEngine, grounding: Grounding,
                   raw: llama_cpp.Llama, questions: list[str], runs: int,
                   llm: LlmSettings) -> dict[str, list[float]]:  # fmt: skip
    """Per run: a new question answered by the appliance (RAG TTFT, and how much of it is
    grounding), then the raw library on that answer's exact prompt tokens. The default
    sampling, seeded: the engine then evaluates the whole prompt, as the raw side does."""
    timed: dict[str, list[float]] = {"rag": [], "ground": [], "raw": [], "tokens": []}
    asked = 0
    for question in questions:
        if asked == runs + 1:
            break
        params = SamplingParams(temperature=llm.temperature, top_p=llm.top_p,
                                max_tokens=llm.max_tokens, seed=asked)  # fmt: skip
        started = time.perf_counter()
        grounded = await asyncio.to_thread(grounding.ground, (), question,
                                           max_tokens=params.max_tokens)  # fmt: skip
        grounded_at = time.perf_counter()
        if grounded.kind != "documents":
            continue  # no prompt with sources: not what is measured
        first = await _first_token(engine, GenerationRequest(messages=grounded.messages,
                                                             params=params))  # fmt: skip
        tokens = engine.tokens(grounded.messages)
        raw.reset()
        t = time.perf_counter()
        raw.create_completion(tokens, max_tokens=1, temperature=params.temperature,
                              top_p=params.top_p, seed=asked)  # fmt: skip
        raw_s = time.perf_counter() - t
        if asked:  # the first run of each warms caches up and is not counted
            timed["rag"].append(first - started)
            timed["ground"].append(grounded_at - started)
            timed["raw"].append(raw_s)
            timed["tokens"].append(len(tokens))
        asked += 1
    return timed


async def _first_token(engine: BatchedEngine, request: GenerationRequest) -> float:
    """When the first piece of answer text arrives; the rest of the answer is cancelled."""
    generation = engine.submit(request)
    first = 0.0
    async for event in generation:
        if not first and isinstance(event, TokenEvent):
            first = time.perf_counter()
            generation.cancel()
    return first


def _report_ttft(timed: dict[str, list[float]], model: str, threads: int, n_ctx: int) -> None:
    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1000

    rag, raw, ground = ms(timed["rag"]), ms(timed["raw"]), ms(timed["ground"])
    # Paired by question (same prompt both sides): steadier than a difference of medians.
    overhead = ms([a - b for a, b in zip(timed["rag"], timed["raw"], strict=True)])
    print(
        f"{model}, n_ctx {n_ctx}, {threads} threads; {len(timed['rag'])} questions, "
        f"prompts of {min(timed['tokens'])}-{max(timed['tokens'])} tokens (median "
        f"{statistics.median(timed['tokens']):.0f})"
    )
    print(f"{'':46} {'median ms':>10}")
    print(f"{'raw llama-cpp-python, same prompt tokens':46} {raw:10.1f}")
    print(f"{'RAG time to first token':46} {rag:10.1f}")
    print(f"{'  of which grounding (embed, search, fit)':46} {ground:10.1f}")
    print(f"{'overhead (RAG - raw, per question)':46} {overhead:10.1f}   (target <= 150 ms)")
    print(f"{'ratio (RAG / raw)':46} {rag / raw:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["all", "latency", "ttft"], default="all")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=8, help="questions timed for TTFT")
    parser.add_argument("--threads", type=int, default=2, help="llama.cpp threads (both sides)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.part in ("all", "latency"):
        latency(args)
    if args.part in ("all", "ttft"):
        ttft(args)
    print(
        f"command: .venv/bin/python scripts/bench/rag.py --part {args.part} --chunks "
        f"{args.chunks} --queries {args.queries} --runs {args.runs} --threads {args.threads}"
    )


if __name__ == "__main__":
    main()
