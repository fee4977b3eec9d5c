#!/usr/bin/env python3
"""Erasing a removed document from the keyword index: what it costs, and how long the
database is held.

Fills a catalog with `--chunks` chunks (~180 words each, a Zipf vocabulary, 20 per document,
one transaction per document, as ingestion writes them), removes one document, then erases
it twice on copies of the same database: with FTS5's own `optimize` (the raw library, one
statement: the lock held throughout) and with `Catalog.compact` (the appliance: merge steps
with the lock free between them). Prints each one's total time, the longest time the lock
was held, the ratio of the totals, and that the removed word is gone from the file.

    .venv/bin/python scripts/bench/erasure.py [--chunks 20000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.db import Database

WORD = "zqx" + uuid.uuid4().hex  # in one chunk of the document removed


def fill(db: Database, chunks: int) -> str:
    """The catalog's chunks; returns the path of the document that holds WORD."""
    rnd = random.Random(1)  # noqa: S311 - the same made-up text at every run
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rnd.choices(letters, k=rnd.randint(3, 10))) for _ in range(30_000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    catalog, middle = Catalog(db), chunks // 40
    for doc in range(max(chunks // 20, 1)):
        rows = []
        for n in range(20):
            words = rnd.choices(vocab, weights, k=180)
            if doc == middle and n == 3:
                words[50] = WORD
            text = " ".join(words)
            row = ChunkRow(
                id=uuid.uuid4().hex,
                ord=n,
                text=text,
                page=None,
                heading=None,
                hash=uuid.uuid4().hex,
                tokens=200,
            )
            rows.append(row)
        catalog.replace_chunks(FileState(f"doc-{doc}.md", 1, 1, "sha"), None, rows)
    return f"doc-{middle}.md"


def held(run: str, path: Path) -> tuple[float, float, bool]:
    """Total seconds, longest lock hold, and whether WORD is still in the file."""
    db = Database(path)
    longest, last = 0.0, time.perf_counter()

    def between() -> None:
        nonlocal longest, last
        longest = max(longest, time.perf_counter() - last)
        last = time.perf_counter()

    start = time.perf_counter()
    if run == "optimize":
        with db.transaction() as conn:
            conn.execute("INSERT INTO chunks_fts(chunks_fts) VALUES ('optimize')")
        db.checkpoint()
        longest = time.perf_counter() - start
    else:
        last = start
        Catalog(db).compact(between)
        between()
    total = time.perf_counter() - start
    db.close()
    left = WORD[8:28].encode() in b"".join(p.read_bytes() for p in path.parent.iterdir())
    return total, longest, left


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base" / "appliance.db"
        db = Database(base)
        started = time.perf_counter()
        gone = fill(db, args.chunks)
        print(f"{args.chunks} chunks written in {time.perf_counter() - started:.1f} s")
        Catalog(db).remove(gone)
        db.checkpoint()
        db.close()
        totals = {}
        for run in ("optimize", "compact"):
            copy = Path(tmp) / run
            shutil.copytree(base.parent, copy)
            total, longest, left = held(run, copy / "appliance.db")
            totals[run] = total
            print(
                f"{run:9} {total * 1000:8.0f} ms in all, lock held at most "
                f"{longest * 1000:6.0f} ms; the removed word still in the file: {left}"
            )
        print(f"compact / optimize: {totals['compact'] / totals['optimize']:.2f}x")


if __name__ == "__main__":
    main()
