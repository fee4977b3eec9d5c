#!/usr/bin/env python3
"""Ingest speed: the whole pipeline (extract, chunk, embed, store) against the raw embedder.

Extraction runs as served: in the sandbox's child process (documents.extract_memory_mb and
extract_timeout_s), started with the pipeline like the model, before the timed run.

Writes a seeded corpus of handbook-like files (.md, .txt, .html, .csv, .docx, .pdf) and indexes
it with IngestPipeline.reconcile() on a fresh data dir, then embeds the same (unique) chunk
texts with onnxruntime + tokenizers called directly, one after the other (with a rest before
each run), `--runs` times. Model loading and the ONNX export are outside both timings.
Prints medians and the ratio: target >= 0.85x raw chunks/s, i.e. extraction, chunking, the
vector store and the catalog together cost at most ~15% on top of embedding. Then changes one
file (and, apart, renames one, touches one) and times reconcile() again: target <= 1% of the
full index time. There `chunks` are the chunks stored anew and `embedded` those run through
the model (unchanged texts reuse their vectors): a rename or a touch should show 0 embedded.

    .venv/bin/python scripts/bench/ingest.py [--files 300] [--runs 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import msgspec
import numpy as np
from tokenizers import Tokenizer

from appliance.config import Settings
from appliance.embed.export import onnx_file
from appliance.embed.models import read_model_card, resolve_model_dir
from appliance.embed.runtime import onnxruntime as ort  # telemetry off, as the appliance has it
from appliance.ingest.pipeline import IngestPipeline
from appliance.store.db import Database
from appliance.wiring import build_pipeline
from tests.ingest.samples import docx_bytes, pdf_bytes  # the repo root is on sys.path (editable)

ONNX_CACHE = Path(tempfile.gettempdir()) / "appliance-bench-onnx"  # exported once, then reused
SUBJECTS = ("Every employee", "The team lead", "Your manager", "The finance office", "New staff",
            "A contractor", "The security desk", "Each department", "The on-call engineer",
            "Human resources", "The works council", "A visitor")  # fmt: skip
VERBS = ("reviews", "approves", "records", "submits", "updates", "checks", "signs", "archives",
         "reports", "schedules", "shares", "requests", "explains", "keeps")  # fmt: skip
OBJECTS = ("the expense report", "the travel request", "the quarterly budget", "the leave "
           "calendar", "the onboarding checklist", "the access badge", "the incident log",
           "the vendor contract", "the training plan", "the safety notice", "the payroll record",
           "the customer complaint", "any change to the rota", "the laptop")  # fmt: skip
TAILS = ("before the end of the month", "within {n} working days", "after the weekly meeting",
         "on the shared drive", "with a short written summary", "unless the director says "
         "otherwise", "as described in section {n}", "for the audit in {month}", "using the "
         "approved template", "when the amount exceeds {amount} euros", "and tells the team "
         "by email", "so that nobody is surprised in {month}")  # fmt: skip
TOPICS = ("Travel", "Expenses", "Leave", "Security", "Onboarding", "Remote work", "Equipment",
          "Purchasing", "Health and safety", "Training", "Payroll", "Conduct")  # fmt: skip
MONTHS = ("January", "March", "April", "June", "September", "October", "December")
FORMATS = {".md": 40, ".txt": 25, ".html": 12, ".csv": 8, ".docx": 8, ".pdf": 7}  # weights
FOLDERS = ("policies", "teams/finance", "teams/it", "handbook", "archive/2023")
Sections = list[tuple[str, list[str]]]
APPENDED = b"The facilities team reviews this page again after each office move."


class Run(NamedTuple):
    seconds: float
    chunks: int
    embedded: int = 0
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.chunks / self.seconds


class Measured(NamedTuple):
    pipe: list[Run]
    raw: list[Run]
    changes: list[tuple[str, Run]]  # (what changed, the re-index after it)
    unique: int  # distinct chunk texts
    model: str  # the ONNX file both sides run


def sentence(rng: random.Random) -> str:
    tail = rng.choice(TAILS).format(n=rng.randint(2, 40), month=rng.choice(MONTHS),
                                    amount=rng.randrange(50, 5000, 50))  # fmt: skip
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {tail}."


def paragraphs(rng: random.Random, most: int) -> list[str]:
    return [" ".join(sentence(rng) for _ in range(rng.randint(3, 7)))
            for _ in range(rng.randint(1, most))]  # fmt: skip


def sections(rng: random.Random) -> Sections:
    """An introduction (heading "") under the title, then 1 to 4 sections."""
    return [("", paragraphs(rng, 1)), *((f"{rng.choice(TOPICS)} {rng.randint(1, 99)}",
            paragraphs(rng, 5)) for _ in range(rng.randint(1, 4)))]  # fmt: skip


def markdown(title: str, secs: Sections) -> bytes:
    parts = [f"# {title}", *(x for h, ps in secs for x in ([f"## {h}"] if h else []) + ps)]
    return "\n\n".join(parts).encode()


def plain(title: str, secs: Sections) -> bytes:
    return "\n\n".join([title, *(p for _, ps in secs for p in ps)]).encode()


def webpage(title: str, secs: Sections) -> bytes:
    body = "".join((f"<h2>{h}</h2>" if h else "") + "".join(f"<p>{p}</p>\n" for p in ps)
                   for h, ps in secs)  # fmt: skip
    return (f"<!DOCTYPE html><html><head><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1>\n{body}</body></html>\n").encode()  # fmt: skip


def word(title: str, secs: Sections) -> bytes:
    items = [("Title", title)]
    for h, ps in secs:
        items += ([("Heading 1", h)] if h else []) + [("Normal", p) for p in ps]
    return docx_bytes(items)


def pdf(title: str, secs: Sections) -> bytes:
    """One page per section; lines wrapped at 90 characters, a blank line between paragraphs."""
    pages = ["\n\n".join([h or title, *("\n".join(textwrap.wrap(p, 90)) for p in ps)])
             for h, ps in secs]  # fmt: skip
    return pdf_bytes(pages)


def table(rng: random.Random) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["date", "employee", "department", "amount", "note"])
    for _ in range(rng.randint(10, 60)):
        day = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        amount = f"{rng.randint(5, 900)}.{rng.randint(0, 99):02d}"
        writer.writerow([day, f"employee {rng.randint(100, 999)}", rng.choice(TOPICS), amount,
                         sentence(rng)])  # fmt: skip
    return out.getvalue().encode()


WRITERS: dict[str, Callable[[str, Sections], bytes]] = {
    ".md": markdown, ".txt": plain, ".html": webpage, ".docx": word, ".pdf": pdf,
}  # fmt: skip


def write_corpus(folder: Path, files: int, seed: int) -> Counter[str]:
    """`files` documents in a few subfolders; the same seed gives the same bytes."""
    rng = random.Random(seed)  # noqa: S311 - test data, not a secret
    kinds: Counter[str] = Counter()
    for i in range(files):
        suffix = rng.choices(list(FORMATS), weights=list(FORMATS.values()))[0]
        title = f"{rng.choice(TOPICS)} handbook, part {i}"
        data = table(rng) if suffix == ".csv" else WRITERS[suffix](title, sections(rng))
        path = folder / rng.choice(FOLDERS) / f"{title.split()[0].lower()}-{i:04d}{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        kinds[suffix] += 1
    return kinds


def settings_for(data_dir: Path, corpus: Path, args: argparse.Namespace) -> Settings:
    return msgspec.convert({"data_dir": str(data_dir), "documents": {"watch_dir": str(corpus)},
                            "embed": {"cache_dir": str(ONNX_CACHE), "threads": args.threads,
                                      "batch_size": args.batch_size}}, Settings)  # fmt: skip


def reconcile(pipeline: IngestPipeline) -> Run:
    start = time.perf_counter()
    progress = pipeline.reconcile()
    seconds = time.perf_counter() - start
    return Run(seconds, progress.chunks, progress.embedded, progress.failed)


def unique_texts(db: Database) -> list[str]:
    """The texts the pipeline embedded: one per distinct chunk text (the same text, one vector)."""
    rows = db.query("SELECT text FROM chunks ORDER BY document_id, ord")
    return list(dict.fromkeys(row["text"] for row in rows))


def raw_embed(texts: list[str], settings: Settings, onnx_path: Path) -> Run:
    """tokenizers + onnxruntime directly: mean pooling, L2 norm; batches sorted by length."""
    card = read_model_card(resolve_model_dir(settings.embed.model))
    tokenizer = Tokenizer.from_file(str(card.path / "tokenizer.json"))
    tokenizer.enable_truncation(card.max_tokens)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0)
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.embed.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    ordered, size = sorted(texts, key=len), settings.embed.batch_size
    start = time.perf_counter()
    for i in range(0, len(ordered), size):
        encodings = tokenizer.encode_batch(ordered[i : i + size])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, feed)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    return Run(time.perf_counter() - start, len(texts), len(texts))


def one_change(pipeline: IngestPipeline, corpus: Path, gap: float) -> list[tuple[str, Run]]:
    """Re-index after each variant; each changes a different file."""
    texts = sorted(p for p in corpus.rglob("*") if p.suffix in (".md", ".txt"))
    if len(texts) < 3:
        raise SystemExit("the corpus has fewer than 3 .md or .txt files; raise --files")
    first, second, third = texts[:3]
    stat = third.stat()
    variants: list[tuple[str, Callable[[], object]]] = [
        ("nothing changed", lambda: None),
        (f"append a paragraph to one {first.suffix}",
         lambda: first.write_bytes(first.read_bytes() + b"\n\n" + APPENDED)),
        (f"rename one {second.suffix}",
         lambda: second.rename(second.with_name("renamed-" + second.name))),
        (f"touch one {third.suffix} (mtime only)",
         lambda: os.utime(third, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))),
    ]  # fmt: skip
    out = []
    for name, change in variants:
        change()
        time.sleep(gap)
        out.append((name, reconcile(pipeline)))
    return out


def measure(args: argparse.Namespace, corpus: Path, tmp: Path) -> Measured:
    """Alternating full runs of both sides (each pipeline on a fresh data dir), then changes."""
    settings = settings_for(tmp / "run0", corpus, args)
    card = read_model_card(resolve_model_dir(settings.embed.model))
    onnx_path = onnx_file(card.path, settings.embed_cache_path, settings.embed.quantize)
    pipe: list[Run] = []
    raw: list[Run] = []
    for i in range(args.runs):
        settings = settings_for(tmp / f"run{i}", corpus, args)
        db = Database(settings.data_path / "appliance.db")
        pipeline = build_pipeline(settings, db)  # loads the model: not timed
        time.sleep(args.gap)
        pipe.append(reconcile(pipeline))
        texts = unique_texts(db)
        time.sleep(args.gap)
        raw.append(raw_embed(texts, settings, onnx_path))
        changes = one_change(pipeline, corpus, args.gap) if i == args.runs - 1 else []
        pipeline.close()
        db.close()
    return Measured(pipe, raw, changes, len(texts), onnx_path.name)


def median(runs: list[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), *runs[0][1:])


def report_setup(m: Measured, args: argparse.Namespace, kinds: Counter[str], mb: float) -> None:
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; onnxruntime {ort.__version__}"
          f", embed threads {args.threads}, batch size {args.batch_size}, {m.model}")  # fmt: skip
    print(f"corpus: {args.files} files ({', '.join(f'{n} {k}' for k, n in kinds.most_common())})"
          f", {mb:.2f} MB; {m.pipe[0].chunks} chunks, {m.unique} unique texts")  # fmt: skip
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in vars(args).items()]
    print(f"command: {shlex.join([os.path.relpath(sys.executable), sys.argv[0], *flags])}")


def report_full(m: Measured) -> Run:
    print(f"\n{'full index':<12}{'pipeline s':>11}{'chunks/s':>10}{'raw s':>9}{'chunks/s':>10}"
          f"{'ratio':>8}")  # fmt: skip
    for i, (p, r) in enumerate(zip(m.pipe, m.raw, strict=True), 1):
        print(f"{f'run {i}':<12}{p.seconds:11.2f}{p.rate:10.1f}{r.seconds:9.2f}{r.rate:10.1f}"
              f"{p.rate / r.rate:8.3f}")  # fmt: skip
    full, raw = median(m.pipe), median(m.raw)
    print(f"{'median':<12}{full.seconds:11.2f}{full.rate:10.1f}{raw.seconds:9.2f}{raw.rate:10.1f}")
    print(f"pipeline: {full.chunks} chunks stored, {full.embedded} embedded, {full.failed} files "
          f"failed; raw: {raw.chunks} texts embedded")  # fmt: skip
    print(f"ratio chunks/s: {full.rate / raw.rate:.3f}x (target >= 0.85x)")
    return full


def report_changes(m: Measured, full: Run) -> None:
    print(f"\n{'re-index after':<38}{'seconds':>9}{'of full':>9}{'chunks':>8}{'embedded':>10}")
    for name, run in m.changes:
        print(f"{name:<38}{run.seconds:9.3f}{run.seconds / full.seconds:9.2%}{run.chunks:8d}"
              f"{run.embedded:10d}")  # fmt: skip
    share = m.changes[1][1].seconds / full.seconds
    print(f"ratio one changed file / full index: {share:.2%} (target <= 1%)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("--files", type=int, default=300, help="documents in the corpus")
    parser.add_argument("--runs", type=int, default=3, help="full index runs of each side")
    parser.add_argument("--threads", type=int, default=1, help="embed.threads, both sides")
    parser.add_argument("--batch-size", type=int, default=1, help="embed.batch_size, both sides")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated corpus")
    parser.add_argument("--gap", type=float, default=1.0,
                        help="seconds of rest before each measured run")  # fmt: skip
    args = parser.parse_args()
    if args.runs < 1 or args.files < 10 or args.threads < 1 or args.batch_size < 1:
        parser.error("--runs, --threads and --batch-size must be at least 1, --files at least 10")
    with tempfile.TemporaryDirectory(prefix="appliance-bench-") as tmp:
        corpus = Path(tmp) / "documents"
        kinds = write_corpus(corpus, args.files, args.seed)
        megabytes = sum(f.stat().st_size for f in corpus.rglob("*") if f.is_file()) / 2**20
        measured = measure(args, corpus, Path(tmp))
    report_setup(measured, args, kinds, megabytes)
    report_changes(measured, report_full(measured))


if __name__ == "__main__":
    main()
