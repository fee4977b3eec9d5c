#!/usr/bin/env python3
"""Retrieval latency at scale: the appliance's hybrid search (Chroma vectors + SQLite FTS5 BM25,
fused, chunks read from the catalog) against Chroma's query alone, at N synthetic chunks.

Builds a catalog and a Chroma collection of `--chunks` synthetic chunks (random unit vectors,
texts from a fixed vocabulary) in a temporary data dir, then times `Retriever.search` with a
precomputed query vector (query embedding excluded, as the target says) and a raw
`collection.query` for the same vectors. Prints p50/p95 in ms for both and the target
(hybrid p95 <= 20 ms). The time-to-first-token part of this bench comes with answer assembly.

    .venv/bin/python scripts/bench/rag.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from appliance.rag.retrieve import Retriever
from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.chroma import ChromaIndex
from appliance.store.db import Database
from appliance.store.keywords import KeywordIndex

# A vocabulary like a company's documents': a few thousand words, some far more common than
# others (Zipf), so that BM25 has to rank rather than match everything.
_SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "gu", "ze"]
WORDS = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES][:3000]
WEIGHTS = [1 / (rank + 1) for rank in range(len(WORDS))]
DIM = 384


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        catalog, index, db = build(Path(tmp), args.chunks, args.seed)
        print(f"{args.chunks:,} chunks built in {time.perf_counter() - started:.0f} s")
        embedder = FixedQuery()
        retriever = Retriever(embedder, index, KeywordIndex(db), catalog,  # type: ignore[arg-type]
                              min_similarity=-1.0)  # fmt: skip
        rng, words = np.random.default_rng(args.seed + 1), random.Random(args.seed)  # noqa: S311
        hybrid, raw = [], []
        for vector in unit(rng, args.queries):
            query = " ".join(words.choices(WORDS, WEIGHTS, k=6))
            embedder.vector = vector
            t = time.perf_counter()
            retriever.search(query, 5)
            hybrid.append(time.perf_counter() - t)
            t = time.perf_counter()
            index.query(vector, 20)
            raw.append(time.perf_counter() - t)
        (h50, h95), (r50, r95) = percentiles(hybrid), percentiles(raw)
        print(f"{'':30} {'p50 ms':>8} {'p95 ms':>8}")
        print(f"{'Chroma query alone (k=20)':30} {r50:8.2f} {r95:8.2f}")
        print(f"{'hybrid search (k=5)':30} {h50:8.2f} {h95:8.2f}   (target p95 <= 20 ms)")
        print(f"command: .venv/bin/python scripts/bench/rag.py --chunks {args.chunks} "
              f"--queries {args.queries}")
        db.close()


if __name__ == "__main__":
    main()
