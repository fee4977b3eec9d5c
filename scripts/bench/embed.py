#!/usr/bin/env python3
"""Embedding backends: why ONNX int8 is the default, in speed and in retrieval quality.

Embeds the same texts (paragraph-long Python standard library docstrings, ~100-250 tokens,
like chunks) with sentence-transformers called directly (the raw library, its own batching),
and with the appliance's embedders: `onnx` int8 (the default), `onnx` float32 and
`sentence-transformers`. Prints texts/s and the ratio to raw sentence-transformers, then
retrieval quality on the same texts: each docstring's first sentence is the query, the rest
its document; recall@1/@5 per backend, and the cosine of each backend's vectors to raw
sentence-transformers (1.0 = the same vectors).

    .venv/bin/python scripts/bench/embed.py [--texts 400] [--threads 1] [--runs 3]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec
import numpy as np

from appliance.config import Settings
from appliance.embed.models import resolve_model_dir
from appliance.wiring import build_embedder

MODULES = ("os", "shutil", "subprocess", "json", "re", "pathlib", "asyncio", "socket", "ssl",
           "email", "http.client", "urllib.request", "sqlite3", "csv", "zipfile", "tarfile",
           "logging", "argparse", "threading", "collections", "itertools", "functools",
           "datetime", "decimal", "random", "statistics", "string", "textwrap", "hashlib",
           "tempfile", "pickle", "struct", "codecs", "io", "calendar", "heapq", "typing",
           "dataclasses", "contextlib", "inspect", "ast", "traceback", "warnings", "unittest",
           "doctest", "timeit", "base64", "mimetypes", "smtplib", "uuid", "ipaddress",
           "selectors", "signal", "configparser", "gzip", "difflib", "locale", "platform",
           "queue", "multiprocessing", "concurrent.futures")  # fmt: skip
Embed = Callable[[Sequence[str]], np.ndarray]


def pairs(limit: int) -> list[tuple[str, str]]:
    """(first sentence, rest) of long stdlib docstrings, deduplicated, in a fixed order."""
    seen, out = set(), []
    for name in MODULES:
        for attr, obj in sorted(vars(importlib.import_module(name)).items()):
            doc = inspect.getdoc(obj) if callable(obj) and not attr.startswith("_") else None
            head, _, rest = (doc or "").partition(". ")
            if len(rest) >= 200 and rest not in seen:
                seen.add(rest)
                out.append((head, rest[:1200]))
    return out[:limit]


def timed(embed: Embed, texts: list[str], runs: int) -> tuple[float, np.ndarray]:
    vectors = embed(texts[:8])  # warm up
    times = []
    for _ in range(runs):
        time.sleep(1)  # rest: no spinning threads of the previous side
        started = time.perf_counter()
        vectors = embed(texts)
        times.append(time.perf_counter() - started)
    return len(texts) / statistics.median(times), np.asarray(vectors, dtype=np.float32)


def recall(queries: np.ndarray, docs: np.ndarray, k: int) -> float:
    top = np.argsort(-(queries @ docs.T), axis=1)[:, :k]
    return float(np.mean([i in top[i] for i in range(len(queries))]))


def backends(threads: int, cache: Path) -> dict[str, Embed]:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    raw = SentenceTransformer(str(resolve_model_dir("")), device="cpu", local_files_only=True)
    out: dict[str, Embed] = {"raw sentence-transformers": lambda t: raw.encode(
        list(t), normalize_embeddings=True, show_progress_bar=False)}  # fmt: skip
    for label, embed in (("onnx int8 (default)", {}), ("onnx float32", {"quantize": False}),
                         ("sentence-transformers", {"backend": "sentence-transformers"})):
        settings = msgspec.convert({"embed": {"threads": threads, "cache_dir": str(cache),
                                              **embed}}, Settings)  # fmt: skip
        out[label] = build_embedder(settings).embed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=400, help="documents embedded (default 400)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per backend (default 3)")
    args = parser.parse_args()
    data = pairs(args.texts)
    queries, docs = [q for q, _ in data], [d for _, d in data]
    cache = Path(tempfile.gettempdir()) / "appliance-bench-onnx"
    print(f"{len(docs)} documents, {args.threads} thread(s), median of {args.runs} runs\n")
    print(f"{'backend':26} {'texts/s':>8} {'vs raw':>7} {'R@1':>6} {'R@5':>6} {'cos to raw':>11}")
    reference: np.ndarray | None = None
    raw_rate = 0.0
    for label, embed in backends(args.threads, cache).items():
        rate, vectors = timed(embed, docs, args.runs)
        reference = vectors if reference is None else reference
        raw_rate = raw_rate or rate
        q = np.asarray(embed(queries), dtype=np.float32)
        cos = np.sum(vectors * reference, axis=1)
        print(f"{label:26} {rate:8.1f} {rate / raw_rate:6.2f}x {recall(q, vectors, 1):6.3f} "
              f"{recall(q, vectors, 5):6.3f} {cos.mean():6.4f}/{cos.min():.3f}")  # fmt: skip
    print(f"\ncommand: .venv/bin/python scripts/bench/embed.py --texts {args.texts} "
          f"--threads {args.threads} --runs {args.runs}")


if __name__ == "__main__":
    main()
