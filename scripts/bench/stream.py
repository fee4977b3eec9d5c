#!/usr/bin/env python3
"""Streaming speed: the appliance's /v1/chat/completions against llama-cpp-python called directly.

Same model, prompt, threads, n_ctx, max_tokens, seed, greedy sampling and flash attention (the
engine always uses it) on both sides, run alternately (with a rest between runs) in one process
tree so both see the same machine. The server runs its default `llm.parallel` slots: a lone
user must not pay for batching.
Prints medians and the ratios: target >= 0.97x raw tokens/s and <= 25 ms added
time-to-first-token.

    .venv/bin/python scripts/bench/stream.py [--runs 7] [--max-tokens 128] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from llama_cpp import Llama

from appliance.accounts.service import Accounts
from appliance.llm.models import bundled_model
from appliance.store.db import Database
from appliance.store.users import UserStore

PROMPT = "Request {i}: write a long story about a dragon who guards a library."


class Sample:
    def __init__(self, ttft: float, pieces: int, decode_s: float) -> None:
        self.ttft, self.pieces, self.decode_s = ttft, pieces, decode_s

    @property
    def rate(self) -> float:
        return (self.pieces - 1) / self.decode_s if self.decode_s > 0 else 0.0


def timed(stream: Iterator[str]) -> Sample:
    """Time to the first non-empty piece, and pieces per second after it."""
    start = time.perf_counter()
    first = last = 0.0
    pieces = 0
    for piece in stream:
        if not piece:
            continue
        last = time.perf_counter()
        first = first or last
        pieces += 1
    return Sample(first - start, pieces, last - first)


def raw_pieces(llm: Llama, prompt: str, args: argparse.Namespace) -> Iterator[str]:
    chunks = llm.create_chat_completion(
        messages=[{"role": "user", "content": prompt}], max_tokens=args.max_tokens,
        temperature=0.0, seed=args.seed, stream=True,
    )  # fmt: skip
    for chunk in chunks:
        yield chunk["choices"][0]["delta"].get("content") or ""


def appliance_pieces(client: httpx.Client, prompt: str, args: argparse.Namespace) -> Iterator[str]:
    body = {"messages": [{"role": "user", "content": prompt}], "max_tokens": args.max_tokens,
            "temperature": 0.0, "seed": args.seed, "stream": True}  # fmt: skip
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choices = json.loads(line[6:])["choices"]
                yield choices[0]["delta"].get("content") or "" if choices else ""


def auth(data_dir: str) -> dict[str, str]:
    """An API key of a bench user in the server's database (made once per data dir)."""
    key_file = Path(data_dir) / "bench.key"
    if not key_file.exists():
        db = Database(Path(data_dir) / "appliance.db")
        try:
            accounts = Accounts(UserStore(db))
            accounts.add("bench", "bench password, local only", "admin")
            key_file.write_text(accounts.create_key("bench")[1])
        finally:
            db.close()
    return {"Authorization": f"Bearer {key_file.read_text()}"}


def start_server(args: argparse.Namespace, data_dir: str, log: Path | None = None,
                 log_level: str = "warning",
                 ready_s: float = 60) -> tuple[subprocess.Popen[bytes], str]:  # fmt: skip
    """`log`: a file for the server's output (else this terminal)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "APPLIANCE_DATA_DIR": data_dir, "APPLIANCE_LOG__LEVEL": log_level,
           "APPLIANCE_LLM__N_THREADS": str(args.threads), "APPLIANCE_LLM__N_CTX": str(args.n_ctx)}
    cmd = [sys.executable, "-m", "appliance", "serve", "--port", str(port)]
    out = log.open("ab") if log else None
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    for _ in range(int(ready_s * 10)):
        try:
            if httpx.get(f"{url}/readyz", headers=auth(data_dir)).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the appliance did not become ready")


def report(name: str, samples: list[Sample]) -> tuple[float, float]:
    rate = statistics.median(s.rate for s in samples)
    ttft = statistics.median(s.ttft for s in samples) * 1000
    pieces = statistics.median(s.pieces for s in samples)
    print(f"{name:<28} {rate:10.1f} {ttft:12.1f} {pieces:8.0f}")
    return rate, ttft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--gap", type=float, default=1.0,
        help="seconds of rest before each run: llama.cpp's OpenMP threads spin for a while "
        "after a generation and would slow whichever side runs next",
    )  # fmt: skip
    args = parser.parse_args()
    model = str(bundled_model())
    llm = Llama(model_path=model, n_ctx=args.n_ctx, n_threads=args.threads,
                n_threads_batch=args.threads, flash_attn=True, verbose=False)  # fmt: skip
    with tempfile.TemporaryDirectory() as data_dir:
        proc, url = start_server(args, data_dir)
        try:
            with httpx.Client(base_url=url, timeout=120, headers=auth(data_dir)) as client:
                timed(appliance_pieces(client, "warm up", args))
                timed(raw_pieces(llm, "warm up", args))
                raw: list[Sample] = []
                ours: list[Sample] = []
                for i in range(args.runs):
                    prompt = PROMPT.format(i=i)  # a new prompt each run: real prompt processing
                    time.sleep(args.gap)
                    raw.append(timed(raw_pieces(llm, prompt, args)))
                    time.sleep(args.gap)
                    ours.append(timed(appliance_pieces(client, prompt, args)))
        finally:
            proc.terminate()
            proc.wait()
    print(f"model {os.path.basename(model)}, threads {args.threads}, max_tokens "
          f"{args.max_tokens}, runs {args.runs} (medians)")  # fmt: skip
    print(f"{'':<28} {'pieces/s':>10} {'TTFT ms':>12} {'pieces':>8}")
    raw_rate, raw_ttft = report("llama-cpp-python direct", raw)
    our_rate, our_ttft = report("appliance /v1 stream (HTTP)", ours)
    print(f"ratio tokens/s: {our_rate / raw_rate:.3f}x (target >= 0.97x)")
    print(f"added TTFT: {our_ttft - raw_ttft:+.1f} ms (target <= 25 ms)")


if __name__ == "__main__":
    main()
