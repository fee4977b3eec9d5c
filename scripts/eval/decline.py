#!/usr/bin/env python3
"""Declines through the chat API: how many questions the documents don't cover are declined,
and how many they do cover are not.

Copies `tests/data/rag_corpus/` into a temporary data dir, indexes it with `appliance ingest`,
starts a real `appliance serve` on 127.0.0.1 (as scripts/bench/stream.py does, with an API key
of a user made in its database), and asks each question of `tests/data/rag_uncovered.jsonl`
(company questions no document answers) and of `tests/data/rag_questions.jsonl` (covered) with
the official `openai` client on /v1/chat/completions (temperature 0, `--max-tokens`, 1 by
default: only what is retrieved and whether it is declined matters here). A reply is a decline
when its text opens as the appliance's written decline does ("The documents don't cover
this.") and it cites nothing.

Prints the declined share of the uncovered (goal >= 0.90) and of the covered (goal <= 0.05)
questions, hit@5 of the covered ones through the API (a citation of the question's file, and
page for a PDF; a declined question is a miss) and hit@5 of the retrieval eval
(scripts/eval/retrieval.py, hybrid with the default floor) for comparison. `-v` lists the
wrong ones.

    .venv/bin/python scripts/eval/decline.py [--threads N] [--max-tokens N] [-v]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import msgspec
import openai

from appliance.config import RagSettings, Settings
from appliance.rag.answer import NOT_COVERED
from appliance.wiring import build_embedder

SCRIPTS = Path(__file__).resolve().parents[1]


def _script(path: Path, name: str) -> ModuleType:
    """A script of scripts/ as a module (they are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # msgspec resolves the Structs' annotations through it
    spec.loader.exec_module(module)
    return module


retrieval = _script(SCRIPTS / "eval" / "retrieval.py", "retrieval_eval")
stream = _script(SCRIPTS / "bench" / "stream.py", "stream_bench")


class Reply(msgspec.Struct, frozen=True):
    question: str
    declined: bool
    cited: list[tuple[str, int | None]]  # (source, page) of each citation
    text: str


def ask(client: openai.OpenAI, question: str, max_tokens: int) -> Reply:
    response = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": question}],
        max_tokens=max_tokens, temperature=0,
    )  # fmt: skip
    message = response.choices[0].message
    text = message.content or ""
    citations = (message.model_extra or {}).get("citations") or []
    cited = [(c["source"], c.get("page")) for c in citations]
    return Reply(question, text.startswith(NOT_COVERED) and not cited, cited, text)


def hit_at_5(reply: Reply, q: retrieval.Question) -> bool:
    return any(s == q.source and (q.page is None or p == q.page) for s, p in reply.cited[:5])


def serve_and_ask(args: argparse.Namespace, data: Path,
                  questions: list[str]) -> list[Reply]:  # fmt: skip
    """The corpus indexed and served from `data`, and each question asked through /v1."""
    shutil.copytree(retrieval.CORPUS, data / "documents")
    # Its own rate limit would refuse most of a run: lifted here, nothing else changed.
    os.environ.update({"APPLIANCE_EMBED__CACHE_DIR": str(retrieval.EMBED_CACHE),
                       "APPLIANCE_LIMITS__CHAT_PER_MINUTE": "100000"})  # fmt: skip
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(data)}
    subprocess.run([sys.executable, "-m", "appliance", "ingest"], env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    proc, url = stream.start_server(args, str(data), log=data / "server.log", ready_s=180)
    try:
        key = stream.auth(str(data))["Authorization"].removeprefix("Bearer ")
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, timeout=600, max_retries=0)
        return [ask(client, q, args.max_tokens) for q in questions]
    finally:
        proc.terminate()
        proc.wait(30)


def retrieval_hit_at_5(data: Path, questions: list[retrieval.Question]) -> float:
    settings = msgspec.convert({"embed": {"cache_dir": str(retrieval.EMBED_CACHE)}}, Settings)
    index = retrieval.index_corpus(build_embedder(settings), data)
    try:
        floor = RagSettings().min_similarity
        served = retrieval.evaluate(index, questions, {"hybrid": (1.0, 1.0)}, floor)
        return float(served["hybrid"].hit_at(retrieval.K))
    finally:
        index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="llm.n_threads of the server")
    parser.add_argument("--n-ctx", type=int, default=4096, help="llm.n_ctx of the server")
    parser.add_argument("--max-tokens", type=int, default=1, help="tokens of each answer")
    parser.add_argument("-v", "--verbose", action="store_true", help="list the wrong ones")
    args = parser.parse_args()
    covered, uncovered = retrieval.load(), retrieval.load_uncovered()
    with tempfile.TemporaryDirectory(prefix="appliance-decline-") as tmp:
        replies = serve_and_ask(args, Path(tmp) / "served",
                                [q.question for q in uncovered + covered])  # fmt: skip
        eval_hit5 = retrieval_hit_at_5(Path(tmp) / "eval", covered)
    unc, cov = replies[: len(uncovered)], replies[len(uncovered) :]
    print(f"command: {' '.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"{len(uncovered)} uncovered, {len(covered)} covered questions, through /v1\n")
    for name, group, goal in (("uncovered", unc, ">= 0.90"), ("covered", cov, "<= 0.05")):
        n = sum(r.declined for r in group)
        print(f"declined, {name:<10} {n / len(group):5.2f} ({n}/{len(group)}; goal {goal})")
    hits = sum(hit_at_5(r, q) for r, q in zip(cov, covered, strict=True))
    print(f"hit@5 of the covered, through /v1 {hits / len(cov):5.2f}")
    print(f"hit@5, retrieval eval (hybrid, floor {RagSettings().min_similarity:g}) "
          f"{eval_hit5:5.2f}")  # fmt: skip
    for r in unc if args.verbose else ():
        if not r.declined:
            print(f"\nanswered, not covered: {r.question!r}; cited {r.cited[:1]}")
    for r, q in zip(cov, covered, strict=True) if args.verbose else ():
        if r.declined:
            print(f"\ndeclined, covered: {r.question!r}: {r.text}")
        elif not hit_at_5(r, q):
            print(f"\nmissed, covered: {r.question!r} ({q.source} p.{q.page}); cited {r.cited}")


if __name__ == "__main__":
    main()
