#!/usr/bin/env python3
"""Permission filtering: hybrid retrieval at scale for readers who may see only a part,
against the same search with no filter (issue 15: p95 filtered <= 1.2x unfiltered).

Builds a catalog and a Chroma collection of `--chunks` synthetic chunks (random unit vectors,
texts from a fixed Zipf vocabulary, 50 chunks a document, as scripts/bench/rag.py does) in a
temporary data dir, each document given an audience: `--everyone` of them (default 70%) for
everyone, the rest shared by engineering, hr, finance, legal, finance+legal, board and admins
only (at the default: 12, 6, 5, 3, 2, 1 and 1% of the chunks). Then, for each of `--queries`
queries (after `--warmup` untimed ones), times one after the other, in an order rotated per
query so machine noise falls on all alike:

  - `Retriever.search(query, 5, reader=...)` for three readers: an admin (EVERYTHING: no
    filter, the raw path), an engineer (Reader(groups={"engineering"}): everyone's and
    engineering's chunks) and a board member (everyone's and the board's);
  - the raw libraries doing each reader's work: Chroma's `collection.query` (k = the
    candidates) with and without `where={"audience": {"$in": [...]}}`, and an FTS5
    `MATCH ... ORDER BY bm25 LIMIT` (the same words the keyword retriever searches) with and
    without `+rowid IN (chunks of documents whose audience is allowed)`, on its own sqlite3
    connection (the keyword retriever names the smaller side: what the reader may see, or
    `NOT IN` what they may not).

The query vector is preset (the embedder stand-in returns it), so query embedding is not
timed: it costs the same with or without a filter, and would only dilute the ratio.

Prints p50/p95 in ms per reader for the retriever, raw Chroma, raw FTS5 and raw Chroma + FTS5
(summed per query); the ratio p95(filtered) / p95(unfiltered) of each against the goal 1.2
(for the retriever); the ratio retriever / raw libraries (p95) per reader; and the hits each
reader got on average (k = 5 asked). Building 100k chunks takes about 1.5 min on a 2-core
machine, the queries about as long.

    .venv/bin/python scripts/bench/permissions.py [--chunks 100000] [--queries 200]
        [--warmup 20] [--everyone 0.7] [--seed 1]

The raw Chroma row "unfiltered, k x4" is the first step of the vector index's filtered query
(store/chroma.py: the nearest k x 4 unfiltered, those the reader may see kept; `where` only
when fewer than k are). Measured at 100k chunks before that step and before `+rowid` (which
keeps SQLite from handing the IN list to FTS5 as rowid lookups, a MATCH per listed row): the
filtered retriever's p95 was 11-12x the unfiltered one; Chroma's `where` alone ~1 s.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings

sys.path.insert(0, str(Path(__file__).parent))
from rag import WEIGHTS, WORDS, FixedQuery, unit  # the same synthetic index as rag.py

from appliance.config import RagSettings
from appliance.rag.retrieve import Retriever
from appliance.store import keywords
from appliance.store.audience import ADMINS_ONLY, EVERYONE, EVERYTHING, Reader, audience_of
from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.chroma import ChromaIndex
from appliance.store.db import Database
from appliance.store.keywords import KeywordIndex

# The vocabulary of scripts/bench/rag.py: a few thousand words, some far more common than
# others (Zipf), so that BM25 has to rank rather than match everything.
PER_DOC = 50
K = 5
# Shares of all chunks when everyone's is 70% (the others are scaled to what `--everyone`
# leaves): a company's restricted folders, a few shared by two groups, a few for admins only.
RESTRICTED = {
    audience_of(["engineering"]): 0.12,
    audience_of(["hr"]): 0.06,
    audience_of(["finance"]): 0.05,
    audience_of(["legal"]): 0.03,
    audience_of(["finance", "legal"]): 0.02,
    audience_of(["board"]): 0.01,
    ADMINS_ONLY: 0.01,
}
READERS = {
    "admin (no filter)": EVERYTHING,
    "engineering": Reader(groups=frozenset({"engineering"})),
    "board": Reader(groups=frozenset({"board"})),
}
UNFILTERED = "admin (no filter)"
# The raw keyword query: what FTS5 does for one list of words, best first, with the filter
# the keyword retriever adds for a reader who may not see everything.
_FTS = (
    "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?{}"
    " ORDER BY s LIMIT ?"
)


def audiences(documents: int, everyone: float, seed: int) -> list[str]:
    """Each document's audience, in a shuffled order (restricted ones spread over the index)."""
    scale = (1 - everyone) / sum(RESTRICTED.values())
    labels: list[str] = []
    for audience, share in RESTRICTED.items():
        labels += [audience] * max(1, round(documents * share * scale))
    labels += [EVERYONE] * max(0, documents - len(labels))
    random.Random(seed).shuffle(labels)  # noqa: S311 - not secrets
    return labels[:documents]


def build(data: Path, chunks: int, everyone: float, seed: int) -> tuple[Catalog, ChromaIndex,
                                                                         Database]:  # fmt: skip
    rng, words = np.random.default_rng(seed), random.Random(seed)  # noqa: S311 - not secrets
    db = Database(data / "appliance.db")
    catalog, index = Catalog(db), ChromaIndex(data / "chroma", "bench")
    for doc, audience in enumerate(audiences(chunks // PER_DOC, everyone, seed)):
        rows = [ChunkRow(id=uuid.uuid4().hex, ord=n, page=None, heading=f"Section {n}",
                         text=" ".join(words.choices(WORDS, WEIGHTS, k=60)),
                         hash=uuid.uuid4().hex, tokens=60) for n in range(PER_DOC)]  # fmt: skip
        index.upsert([r.id for r in rows], unit(rng, PER_DOC), [audience] * PER_DOC)
        state = FileState(f"c{doc % 10}/doc{doc}.md", 1, 1, f"s{doc}", audience=audience)
        catalog.replace_chunks(state, None, rows)
    return catalog, index, db


def percentiles(times: list[float]) -> tuple[float, float]:
    ms = sorted(t * 1000 for t in times)
    return statistics.median(ms), ms[max(0, int(len(ms) * 0.95) - 1)]


def timed(call: Callable[[], object], into: list[float]) -> object:
    t = time.perf_counter()
    out = call()
    into.append(time.perf_counter() - t)
    return out


class Bench:
    """The retriever and the raw libraries over one built index, with what each run took."""

    def __init__(self, data: Path, catalog: Catalog, index: ChromaIndex, db: Database) -> None:
        rag = RagSettings()
        self.embedder = FixedQuery()
        self.keywords = KeywordIndex(db)
        self.retriever = Retriever(self.embedder, index, self.keywords,  # type: ignore[arg-type]
                                   catalog, candidates=rag.candidates,
                                   vector_weight=rag.vector_weight,
                                   keyword_weight=rag.keyword_weight,
                                   min_similarity=-1.0)  # fmt: skip
        self.candidates = rag.candidates
        # The libraries themselves, opened as the appliance opens them (same files, settings).
        client = chromadb.PersistentClient(path=str(data / "chroma"), settings=ChromaSettings(
            anonymized_telemetry=False, allow_reset=False))  # fmt: skip
        self.collection = client.get_collection(index.collection_name, embedding_function=None)
        self.sqlite = sqlite3.connect(data / "appliance.db", check_same_thread=False)
        held = catalog.audiences()
        self.allowed = {name: reader.allowed(held) for name, reader in READERS.items()}
        self.times: dict[tuple[str, str], list[float]] = {}
        self.hits: dict[str, list[int]] = {name: [] for name in READERS}

    def share(self, db: Database, name: str) -> float:
        """The share of all chunks reader `name` may see."""
        allowed = self.allowed[name]
        total = db.query("SELECT COUNT(*) FROM chunks")[0][0]
        if allowed is None:
            return 1.0
        marks = ",".join("?" * len(allowed))
        where = f"d.audience IN ({marks})"
        sql = (
            f"SELECT COUNT(*) FROM chunks c JOIN documents d ON d.id = c.document_id WHERE {where}"  # noqa: S608 - placeholders only
        )
        seen = db.query(sql, tuple(allowed))[0][0]
        return float(seen / total)

    def run(self, name: str, text: str, vector: np.ndarray, record: bool) -> None:
        """One query for one reader: the retriever, raw Chroma, raw FTS5."""
        allowed = self.allowed[name]
        self.embedder.vector = vector

        def into(part: str) -> list[float]:
            return self.times.setdefault((name, part), []) if record else []

        hits = timed(lambda: self.retriever.search(text, K, reader=READERS[name]),
                     into("retriever"))  # fmt: skip
        where = None if allowed is None else {"audience": {"$in": list(allowed)}}
        timed(lambda: self.collection.query(query_embeddings=vector.reshape(1, -1),
                                            n_results=self.candidates, include=["distances"],
                                            where=where), into("chroma"))  # type: ignore[arg-type]  # fmt: skip
        timed(lambda: self.collection.query(query_embeddings=vector.reshape(1, -1),
                                            n_results=self.candidates * 4,
                                            include=["distances", "metadatas"]),
              into("chroma x4"))  # fmt: skip
        terms = self.keywords.terms(text).words
        match = " OR ".join(f'"{w}"' for w in terms)
        seen = "" if allowed is None else keywords._SEEN.format(
            "IN", ",".join("?" * len(allowed)))  # fmt: skip
        sql = _FTS.format(seen)
        params = (match, *(allowed or ()), self.candidates)
        timed(lambda: self.sqlite.execute(sql, params).fetchall() if terms else [],
              into("fts5"))  # fmt: skip
        if record:
            self.hits[name].append(len(hits))  # type: ignore[arg-type]
            chroma, fts = self.times[(name, "chroma")][-1], self.times[(name, "fts5")][-1]
            self.times.setdefault((name, "raw"), []).append(chroma + fts)


def queries(n: int, seed: int) -> list[tuple[str, np.ndarray]]:
    words = random.Random(seed)  # noqa: S311 - not secrets
    vectors = unit(np.random.default_rng(seed + 1), n)
    return [(" ".join(words.choices(WORDS, WEIGHTS, k=6)), v) for v in vectors]


def measure(bench: Bench, args: argparse.Namespace) -> None:
    """Warm-up, then every query for every reader, the readers' order rotated per query."""
    names = list(READERS)
    asked = queries(args.warmup + args.queries, args.seed + 7)
    for n, (text, vector) in enumerate(asked):
        order = names[n % len(names) :] + names[: n % len(names)]
        for name in order:
            bench.run(name, text, vector, record=n >= args.warmup)


def report(bench: Bench, db: Database) -> None:
    parts = (("retriever", "hybrid Retriever.search (k=5)"),
             ("chroma", f"raw Chroma collection.query (k={bench.candidates})"),
             ("chroma x4", f"raw Chroma unfiltered, k={bench.candidates * 4}, +metadata"),
             ("fts5", f"raw FTS5 MATCH bm25 LIMIT {bench.candidates}"),
             ("raw", "raw Chroma + FTS5 (sum per query)"))  # fmt: skip
    print(f"\n{'reader (share of chunks seen)':30} {'':42} {'p50 ms':>8} {'p95 ms':>8}")
    for name in READERS:
        label = f"{name} ({bench.share(db, name):.0%})"
        for part, title in parts:
            p50, p95 = percentiles(bench.times[(name, part)])
            print(f"{label:30} {title:42} {p50:8.2f} {p95:8.2f}")
            label = ""
        mean = statistics.mean(bench.hits[name])
        print(f"{'':30} {'hits per search (k=5 asked), mean':42} {mean:8.2f}")
    print("\nratio p95(filtered) / p95(unfiltered)")
    print(f"{'reader':30} {'retriever':>10} {'Chroma':>10} {'Chroma x4':>10} {'FTS5':>10}"
          f" {'raw sum':>10}")  # fmt: skip
    base = {part: percentiles(bench.times[(UNFILTERED, part)])[1] for part, _ in parts}
    for name in READERS:
        if name != UNFILTERED:
            cells = [percentiles(bench.times[(name, p)])[1] / base[p] for p, _ in parts]
            print(f"{name:30} " + " ".join(f"{c:10.2f}" for c in cells))
    print(f"{'':30} goal: retriever <= 1.20")
    print("\nratio retriever / raw libraries (p95)")
    for name in READERS:
        ratio = percentiles(bench.times[(name, "retriever")])[1] / percentiles(
            bench.times[(name, "raw")])[1]  # fmt: skip
        print(f"{name:30} {ratio:10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="timed, per reader")
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries first")
    parser.add_argument(
        "--everyone",
        type=float,
        default=0.7,
        help="share of documents everyone may see (the rest: groups)",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        catalog, index, db = build(Path(tmp), args.chunks, args.everyone, args.seed)
        print(f"{args.chunks:,} chunks of {args.chunks // PER_DOC:,} documents built in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        bench = Bench(Path(tmp), catalog, index, db)
        started = time.perf_counter()
        measure(bench, args)
        print(f"{args.warmup} + {args.queries} queries x {len(READERS)} readers in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        report(bench, db)
        bench.sqlite.close()
        db.close()
    print(
        f"\ncommand: .venv/bin/python scripts/bench/permissions.py --chunks {args.chunks} "
        f"--queries {args.queries} --warmup {args.warmup} --everyone {args.everyone} "
        f"--seed {args.seed}"
    )


if __name__ == "__main__":
    main()
