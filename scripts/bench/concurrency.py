#!/usr/bin/env python3
"""Many chats at once: 1, 2, 4 and 8 concurrent streamed chats through /v1/chat/completions (the
official openai client), and a 10-turn conversation while three others chat, against llama.cpp's
own `llama-server -np 4` on the same GGUF under the same load.

Both servers run on 127.0.0.1, one after the other: a real `appliance serve` (started as
scripts/bench/stream.py does, with `APPLIANCE_LLM__PARALLEL` etc. from the flags, plain chat
without documents), then `llama-server` with the same threads, slots and context per slot.
Every chat has its own prompt; greedy with a fixed seed and a fixed `--max-tokens`.

Per number of chats: aggregate tokens/s (all chats' completion tokens over the wall time from
the first request to the last token), its ratio to one chat's, first-token p50/p95, the slowest
first token of a round against its fastest, inter-token p95. Multi-turn: one conversation with a
long system prompt takes 10 turns (history sent back each time, as OpenAI clients do) while
three others chat continuously; its turn-10 first token against its turn-1 first token.
Goals (2-core CPU): four chats >= 1.6x one chat's tokens/s and >= 1.1x llama-server's; the
slowest of four first tokens <= 3x the fastest; turn 10 <= 1.2x turn 1. On a GPU: 8 chats >= 4x.
Run it on an otherwise idle machine: with other llama.cpp work about, `--threads 2` on 2 cores
collapses to ~1 token/s (llama.cpp's threads wait for each other at every op); the header
prints the load average, and `--threads 1` still gives figures that compare.

llama-server is built once from the llama.cpp vendored in the llama-cpp-python sdist into
~/.cache/appliance/llama-server/ (scripts/bench/llama_server.py: cmake and g++, ~10 minutes on
2 cores); `LLAMA_SERVER=path` uses a binary you have; `--against appliance` skips it.

    .venv/bin/python scripts/bench/concurrency.py [--max-tokens 96] [--rounds 2] [--parallel 4]
    .venv/bin/python scripts/bench/concurrency.py --short     # 48 tokens, one round
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai import APIError, AsyncOpenAI

sys.path.insert(0, str(Path(__file__).parent))
import llama_server  # the build of llama.cpp's server
import stream  # the appliance's start and the bench user's key

from appliance.llm.models import bundled_model

NAN = float("nan")
SUBJECTS = (
    "a dragon who guards a library",
    "a lighthouse keeper on a far island",
    "a clockmaker who repairs time",
    "a fox that learns to read maps",
    "a baker in a city of giants",
    "a robot gardener on the moon",
    "a sailor who collects lost songs",
    "a painter whose colours come alive",
    "a courier crossing the desert",
    "a girl who talks to glaciers",
)
QUESTIONS = (
    "How many days of holiday do I get?",
    "Who approves my travel?",
    "What is the rule for expense receipts?",
    "Can I work from home on Fridays?",
    "How do I report a broken laptop?",
    "What happens in my first week?",
    "Who do I ask about payroll?",
    "How long must invoices be kept?",
    "May I bring a guest to the office?",
    "Summarise the rules you were given.",
)
RULES = (
    "Staff get {n} days of paid holiday a year, booked through the team calendar.",
    "Travel above {n} euros needs the approval of a department head before booking.",
    "Receipts for expenses over {n} euros are scanned and kept for seven years.",
    "The help desk answers on extension {n} from eight in the morning to six at night.",
    "Visitors sign in at desk {n} and wear a badge while they are in the building.",
)


def story(k: int) -> str:
    """The k-th chat's prompt: a new one for every chat of every round."""
    return f"Request {k}: write a long story about {SUBJECTS[k % len(SUBJECTS)]}."


def handbook(company: str, rules: int = 24) -> str:
    """A long-ish system prompt (~500 tokens), its first words naming the company."""
    lines = (RULES[i % len(RULES)].format(n=10 + 7 * i) for i in range(rules))
    return f"You are the assistant of {company}. Answer from its handbook:\n" + "\n".join(lines)


@dataclass
class Chat:
    """One streamed answer's timings, in seconds since its request was sent."""

    sent: float
    times: list[float] = field(default_factory=list)  # each non-empty content piece
    tokens: int = 0  # the server's completion_tokens, or the pieces where it gives none
    text: str = ""
    error: str = ""  # what went wrong, where the answer broke off

    @property
    def first(self) -> float:
        return self.times[0] if self.times else NAN

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.times)]

    @property
    def end(self) -> float:
        return self.sent + (self.times[-1] if self.times else 0.0)


class Target:
    """A running server with an OpenAI client for it."""

    def __init__(self, name: str, url: str, key: str) -> None:
        self.name = name
        self.client = AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=600)
        self.model = ""
        self.errors: list[str] = []

    async def chat(
        self, messages: list[dict[str, str]], args: argparse.Namespace, user: str
    ) -> Chat:
        start = time.perf_counter()
        found = Chat(sent=start)
        pieces: list[str] = []
        try:
            chunks = await self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=args.max_tokens,
                temperature=0.0,
                seed=args.seed,
                stream=True,
                user=user,
                stream_options={"include_usage": True},
                extra_body=self.extra,
            )
            async for chunk in chunks:
                piece = chunk.choices[0].delta.content if chunk.choices else None
                if piece:
                    found.times.append(time.perf_counter() - start)
                    pieces.append(piece)
                if chunk.usage:
                    found.tokens = chunk.usage.completion_tokens
        except APIError as exc:  # counted and shown: one broken answer does not end the bench
            found.error = f"{type(exc).__name__}: {exc}"
            self.errors.append(found.error)
        found.tokens = found.tokens or len(pieces)
        found.text = "".join(pieces)
        return found

    @property
    def extra(self) -> dict[str, Any]:
        # the appliance answers from documents unless told not to: plain chat, as llama-server
        return {"documents": False} if self.name == "appliance" else {}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else NAN


@dataclass
class Load:
    """N chats started together, over several rounds."""

    chats: int
    rounds: list[tuple[float, list[Chat]]] = field(default_factory=list)  # (wall s, chats)

    @property
    def rate(self) -> float:
        tokens = sum(c.tokens for _, chats in self.rounds for c in chats)
        return tokens / sum(wall for wall, _ in self.rounds)

    @property
    def firsts(self) -> list[float]:
        return [c.first for _, chats in self.rounds for c in chats if c.times]

    @property
    def spread(self) -> float:
        """The worst round's slowest first token over its fastest (answers that came)."""
        return max(
            max(firsts) / min(firsts) if (firsts := [c.first for c in ch if c.times]) else NAN
            for _, ch in self.rounds
        )

    @property
    def gaps(self) -> list[float]:
        return [g for _, chats in self.rounds for c in chats for g in c.gaps]

    @property
    def errors(self) -> int:
        return sum(bool(c.error) for _, chats in self.rounds for c in chats)


async def together(target: Target, n: int, args: argparse.Namespace, first_k: int) -> Load:
    load = Load(n)
    for r in range(args.rounds):
        await asyncio.sleep(args.gap)  # llama.cpp's OpenMP threads spin a while after work
        ks = range(first_k + r * n, first_k + (r + 1) * n)
        start = time.perf_counter()
        chats = await asyncio.gather(
            *(target.chat([{"role": "user", "content": story(k)}], args, f"chat-{k}") for k in ks)
        )
        load.rounds.append((max(c.end for c in chats) - start, list(chats)))
    return load


async def conversation(
    target: Target,
    company: str,
    args: argparse.Namespace,
    stop: asyncio.Event | None = None,
    answered: asyncio.Event | None = None,
    turns: int = 10,
) -> list[Chat]:
    """`turns` turns of one conversation (or, with `stop`, turns until it is set, starting over
    after `turns`), the history growing as an OpenAI client sends it; `answered` is set after
    the first answer."""
    found: list[Chat] = []
    messages = [{"role": "system", "content": handbook(company)}]
    while len(found) < turns if stop is None else not stop.is_set():
        if found and len(found) % turns == 0:
            del messages[1:]
        messages.append({"role": "user", "content": QUESTIONS[len(found) % len(QUESTIONS)]})
        chat = await target.chat(messages, args, company)
        messages.append({"role": "assistant", "content": chat.text})
        found.append(chat)
        if answered:
            answered.set()
        if stop is None:
            print(f"  {target.name}: turn {len(found)}, {chat.first:.2f} s", file=sys.stderr)
            await asyncio.sleep(args.think)  # a person reads the answer before the next turn
    return found


async def multi_turn(target: Target, args: argparse.Namespace) -> list[Chat]:
    """The main conversation's turns while three others chat without pause."""
    stop = asyncio.Event()
    answered = {
        name: asyncio.Event() for name in ("Birch Logistics", "Cedar Clinics", "Delta Foods")
    }
    others = [
        asyncio.create_task(conversation(target, name, args, stop, ready))
        for name, ready in answered.items()
    ]
    # turn 1 starts when the others are chatting, not all reading their first prompts with it
    await asyncio.gather(*(ready.wait() for ready in answered.values()))
    try:
        return await conversation(target, "Aspen Works", args)
    finally:
        stop.set()
        await asyncio.gather(*others)


@dataclass
class Result:
    name: str
    loads: list[Load]
    turns: list[Chat]
    errors: list[str]
    load_average: tuple[float, float]  # the machine's 1-minute load at the start and the end

    def load(self, n: int) -> Load | None:
        return next((load for load in self.loads if load.chats == n), None)


async def measure(target: Target, args: argparse.Namespace) -> Result:
    load_start = os.getloadavg()[0]
    target.model = (await target.client.models.list()).data[0].id
    await target.chat([{"role": "user", "content": "warm up"}], args, "warm-up")
    loads = []
    for n in args.chats:
        loads.append(await together(target, n, args, first_k=100 * n))
        firsts = (
            f"{min(loads[-1].firsts, default=NAN):.2f}-{max(loads[-1].firsts, default=NAN):.2f}"
        )
        print(
            f"  {target.name}: {n} chats, {loads[-1].rate:.1f} tokens/s, first tokens {firsts} s",
            file=sys.stderr,
        )
    await asyncio.sleep(args.gap)
    turns = await multi_turn(target, args)
    await target.client.close()
    return Result(target.name, loads, turns, target.errors, (load_start, os.getloadavg()[0]))


@contextlib.contextmanager
def appliance(args: argparse.Namespace, data_dir: str) -> Iterator[Target]:
    """`appliance serve`, its log in `--logs`."""
    env = {
        "APPLIANCE_LLM__PARALLEL": str(args.parallel),
        "APPLIANCE_LLM__QUEUE_SIZE": str(max(16, 2 * max(args.chats))),
        "APPLIANCE_LIMITS__CHAT_PER_MINUTE": "100000",
        "APPLIANCE_LIMITS__CONCURRENT_STREAMS": str(2 * max(args.chats)),
    }
    if args.prefill_chunk:
        env["APPLIANCE_LLM__PREFILL_CHUNK"] = str(args.prefill_chunk)
    if args.prefix_cache_mb is not None:
        env["APPLIANCE_LLM__PREFIX_CACHE_MB"] = str(args.prefix_cache_mb)
    os.environ.update(env)  # stream.start_server passes its environment on
    log = args.logs / "appliance.log"
    proc, url = stream.start_server(args, data_dir, log, ready_s=300)
    try:
        yield Target("appliance", url, stream.auth(data_dir)["Authorization"].split()[1])
    finally:
        proc.terminate()
        proc.wait()


@contextlib.contextmanager
def llama_cpp_server(args: argparse.Namespace, data_dir: str) -> Iterator[Target]:
    """`llama-server -np N`, each slot a window of `--n-ctx` tokens, the same threads."""
    log = args.logs / "llama-server.log"
    with llama_server.serve(bundled_model(), args.parallel, args.n_ctx, args.threads, log) as url:
        yield Target("llama-server", url, "none")


def goal(value: float, limit: float, above: bool) -> str:
    met = value >= limit if above else value <= limit
    return f"goal {'>=' if above else '<='} {limit}x: {'met' if met else 'missed'}"


def report(results: list[Result], args: argparse.Namespace) -> None:
    print(
        f"model {bundled_model().name}, threads {args.threads}, slots {args.parallel}, n_ctx "
        f"{args.n_ctx} per slot, max_tokens {args.max_tokens}, rounds {args.rounds}"
    )
    print(
        f"{'server':<13}{'chats':>6}{'tok/s':>9}{'x one':>7}{'first p50':>11}{'first p95':>11}"
        f"{'slow/fast':>11}{'inter p95':>11}{'errors':>8}"
    )
    for result in results:
        start, end = result.load_average
        print(f"{result.name:<13}load average {start:.1f} at the start, {end:.1f} at the end")
        one = result.load(1)
        for load in result.loads:
            ms = [x * 1000 for x in load.firsts]
            times = load.rate / one.rate if one else NAN
            print(
                f"{result.name:<13}{load.chats:>6}{load.rate:>9.1f}{times:>6.2f}x"
                f"{pct(ms, 0.5):>9.0f}ms{pct(ms, 0.95):>9.0f}ms{load.spread:>10.2f}x"
                f"{pct(load.gaps, 0.95) * 1000:>9.0f}ms{load.errors:>8}"
            )
        firsts = " ".join(f"{c.first * 1000:.0f}" for c in result.turns)
        print(f"{result.name:<13}10 turns under three other chats, first tokens (ms): {firsts}")
        for error in sorted(set(result.errors)):
            print(f"{result.name:<13}error x{result.errors.count(error)}: {error[:300]}")
    if results and results[0].name == "appliance":
        goals(results[0], next((r for r in results if r.name == "llama-server"), None))


def goals(ours: Result, theirs: Result | None) -> None:
    print("goals (appliance):")
    one, four, eight = ours.load(1), ours.load(4), ours.load(8)
    if four and one:
        ratio = four.rate / one.rate
        print(f"  four chats / one chat, tokens/s:        {ratio:.2f}x ({goal(ratio, 1.6, True)})")
        print(
            f"  slowest / fastest of four first tokens: {four.spread:.2f}x "
            f"({goal(four.spread, 3, False)})"
        )
    if four and theirs and (their_four := theirs.load(4)):
        ratio = four.rate / their_four.rate
        print(f"  four chats / llama-server's four:       {ratio:.2f}x ({goal(ratio, 1.1, True)})")
    if len(ours.turns) >= 10:
        ratio = ours.turns[9].first / ours.turns[0].first
        print(f"  turn-10 / turn-1 first token, loaded:   {ratio:.2f}x ({goal(ratio, 1.2, False)})")
        warm = ours.turns[9].first / ours.turns[1].first
        print(f"  turn-10 / turn-2 (turn 1 reads all its system prompt): {warm:.2f}x (no goal)")
    if eight and one:
        ratio = eight.rate / one.rate
        print(
            f"  eight chats / one chat, tokens/s:       {ratio:.2f}x "
            f"(on a GPU {goal(ratio, 4, True)}; none on a CPU)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--max-tokens", type=int, default=96, help="every answer's length cap")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each number of chats")
    parser.add_argument("--chats", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--parallel", type=int, default=4, help="slots, both servers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n-ctx", type=int, default=4096, help="context per slot")
    parser.add_argument("--prefill-chunk", type=int, default=0, help="0: the appliance's default")
    parser.add_argument("--prefix-cache-mb", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--think", type=float, default=1.0, help="seconds between turns")
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of rest between loads")
    parser.add_argument(
        "--against",
        choices=("both", "appliance", "llama-server"),
        default="both",
        help="which servers to measure",
    )
    parser.add_argument("--short", action="store_true", help="48 tokens, one round")
    parser.add_argument("--logs", type=Path, help="folder for the servers' logs (default: new)")
    args = parser.parse_args()
    args.logs = args.logs or Path(tempfile.mkdtemp(prefix="bench-concurrency-"))
    args.logs.mkdir(parents=True, exist_ok=True)
    if args.short:
        args.max_tokens, args.rounds = 48, 1
    cache = Path(tempfile.gettempdir()) / f"appliance-bench-cache-{os.getuid()}"
    os.environ.setdefault("APPLIANCE_EMBED__CACHE_DIR", str(cache))  # the ONNX export, once
    if args.against != "appliance":
        llama_server.binary()  # build it first (once) rather than after the appliance's run
    # a timeout's or a Ctrl-C's stop still stops the server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = []
    with tempfile.TemporaryDirectory() as data_dir:
        servers = {"appliance": appliance, "llama-server": llama_cpp_server}
        for name, start in servers.items():
            if args.against in ("both", name):
                try:
                    with start(args, data_dir) as target:
                        results.append(asyncio.run(measure(target, args)))
                finally:
                    print(f"{name}'s log: {args.logs}", file=sys.stderr)
    report(results, args)
    print(f"server logs: {args.logs}")


if __name__ == "__main__":
    main()
