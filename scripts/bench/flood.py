#!/usr/bin/env python3
"""Under a flood: a signed-in stream's inter-token p95 while anonymous requests and searches hit
the server, against the same stream on the quiet server.

A real `appliance serve` on 127.0.0.1 (started as scripts/bench/stream.py does). The flood:
`--rate` anonymous requests a second (GET /api/me without credentials: 401, and POST
/api/session with a wrong password: 401, then 429 once the brake holds), open loop, bounded in
count and time, to 127.0.0.1 only; plus `--searches` signed-in clients searching back to back
(as another user, under raised per-user limits, so they really search). The clients run at
the lowest priority (nice 19): they stand for other machines, and their CPU is not the
server's to give. The server runs at its default threads (half the CPUs for generation) unless
`--threads` says otherwise. Prints both p95s and their ratio: target <= 1.2x.

    .venv/bin/python scripts/bench/flood.py [--runs 5] [--max-tokens 128] [--rate 200]
    .venv/bin/python scripts/bench/flood.py --short      # one run each, 48 tokens
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import stream  # the server start, the bench user's key, the SSE reader

from appliance.accounts.service import Accounts
from appliance.store.db import Database
from appliance.store.users import UserStore
from appliance.threads import lower_priority

PROMPT = "Request {i}: write a long story about a dragon who guards a library."
SEARCHES = ("dragon library", "holiday policy", "expense report", "who guards the archive")


def gaps(client: httpx.Client, prompt: str, args: argparse.Namespace) -> list[float]:
    """Seconds between the stream's consecutive non-empty pieces."""
    pieces = stream.appliance_pieces(client, prompt, args)
    return [b - a for a, b in itertools.pairwise(time.perf_counter() for p in pieces if p)]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")


def search_key(data_dir: str) -> dict[str, str]:
    """Another user for the searches: the stream's user keeps its own limits."""
    db = Database(Path(data_dir) / "appliance.db")
    try:
        accounts = Accounts(UserStore(db))
        accounts.add("searcher", "searcher password, local only", "employee")
        return {"Authorization": f"Bearer {accounts.create_key('searcher')[1]}"}
    finally:
        db.close()


class Flood:
    """Anonymous requests at a steady rate from a process of their own (this one's GIL would
    slow them), and signed-in searches on threads."""

    def __init__(self, url: str, args: argparse.Namespace, searcher: dict[str, str]) -> None:
        self._url, self._args, self._searcher = url, args, searcher
        self._stop = threading.Event()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.searched, self.sent, self.elapsed = 0, 0, 0.0
        spawn = multiprocessing.get_context("spawn")
        self._done, self._results = spawn.Event(), spawn.Queue()
        self._sender = spawn.Process(
            target=anonymous, args=(url, args.rate, args.flood_seconds, self._done, self._results)
        )
        self._threads = [
            threading.Thread(target=self._search, args=(n,), daemon=True)
            for n in range(args.searches)
        ]

    def __enter__(self) -> Flood:
        self._sender.start()
        for thread in self._threads:
            thread.start()
        time.sleep(2)  # the flood at full rate before the stream starts
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._done.set()
        self.sent, self.elapsed, statuses = self._results.get(timeout=60)
        self.statuses.update(statuses)
        self._sender.join(timeout=30)
        for thread in self._threads:
            thread.join(timeout=60)

    def _search(self, n: int) -> None:
        lower_priority(19)  # a client, standing for another machine: below the server
        with httpx.Client(base_url=self._url, timeout=60, headers=self._searcher) as client:
            while not self._stop.is_set():
                reply = client.post("/api/search", json={"query": SEARCHES[n % len(SEARCHES)]})
                self.statuses[f"search {reply.status_code}"] += 1
                self.searched += 1


def anonymous(url: str, rate: float, seconds: float, done: Any, results: Any) -> None:
    """GET /api/me without credentials and wrong sign-ins, alternately, `rate` a second (open
    loop: a request is due at its time whether or not earlier ones were answered), until
    `done`, `seconds` or `rate * seconds` requests. Plain HTTP/1.1 over keep-alive sockets,
    written and read by hand: an HTTP client library spends milliseconds of CPU a request,
    and on this one box that CPU would be taken from the server being measured (the flood's
    clients stand for other machines)."""
    host, port = url.removeprefix("http://").split(":")
    head = f"Host: {host}:{port}\r\nUser-Agent: flood\r\n"
    body = b'{"name": "bench", "password": "wrong"}'
    wanted = (f"GET /api/me HTTP/1.1\r\n{head}\r\n".encode(),
              f"POST /api/session HTTP/1.1\r\n{head}Content-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
    statuses: collections.Counter[str] = collections.Counter()
    lower_priority(19)  # a client, standing for other machines: below the server

    async def connection(due: asyncio.Queue[int]) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (n := await due.get()) >= 0:
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(wanted[n % 2])
                status = (await reader.readline()).split(b" ", 2)[1].decode()
                length, close = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    close |= name.lower() == b"connection" and b"close" in value.lower()
                await reader.readexactly(length)
                statuses[status] += 1
                if close:
                    writer.close()
                    reader = writer = None
            except (OSError, IndexError, ValueError, asyncio.IncompleteReadError) as exc:
                statuses[type(exc).__name__] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None

    async def send() -> tuple[int, float]:
        due: asyncio.Queue[int] = asyncio.Queue()
        workers = [asyncio.create_task(connection(due)) for _ in range(64)]
        started, sent = time.perf_counter(), 0
        while sent < rate * seconds and not done.is_set():
            await asyncio.sleep(max(0.0, started + sent / rate - time.perf_counter()))
            if time.perf_counter() - started > seconds:
                break
            due.put_nowait(sent)
            sent += 1
        elapsed = time.perf_counter() - started
        for _ in workers:
            due.put_nowait(-1)
        await asyncio.wait(workers, timeout=30)
        return sent, elapsed

    sent, elapsed = asyncio.run(send())
    results.put((sent, elapsed, dict(statuses)))


def measure(client: httpx.Client, args: argparse.Namespace, first: int) -> list[float]:
    found: list[float] = []
    for i in range(first, first + args.runs):
        time.sleep(args.gap)
        found += gaps(client, PROMPT.format(i=i), args)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="streams on each side")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0,
                        help="llm.n_threads; 0: the server's default, half the CPUs")
    parser.add_argument("--n-ctx", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds of rest before a run")
    parser.add_argument("--rate", type=float, default=200, help="anonymous requests a second")
    parser.add_argument("--searches", type=int, default=4, help="parallel searching clients")
    parser.add_argument("--flood-seconds", type=float, default=120, help="the flood's limit")
    parser.add_argument("--short", action="store_true", help="one run each, 48 tokens")
    args = parser.parse_args()
    if args.short:
        args.runs, args.max_tokens = 1, 48
    # the searches must really search: the per-user limits (20 a minute) would refuse them
    os.environ["APPLIANCE_LIMITS__CHAT_PER_MINUTE"] = "100000"
    os.environ["APPLIANCE_LIMITS__CONCURRENT_STREAMS"] = str(max(2, args.searches))
    # the ONNX export of the embedding model, made once for every run (~40 s)
    cache = Path(tempfile.gettempdir()) / f"appliance-bench-cache-{os.getuid()}"
    os.environ.setdefault("APPLIANCE_EMBED__CACHE_DIR", str(cache))
    with tempfile.TemporaryDirectory() as data_dir:
        # at the default log level: every refused request is logged, as in production
        server_log = Path(data_dir) / "server.log"
        proc, url = stream.start_server(args, data_dir, server_log, "info", ready_s=300)
        try:
            searcher = search_key(data_dir)
            with httpx.Client(base_url=url, timeout=120, headers=stream.auth(data_dir)) as client:
                gaps(client, "warm up", args)
                quiet = measure(client, args, 0)
                with Flood(url, args, searcher) as flood:
                    loaded = measure(client, args, args.runs)
        finally:
            proc.terminate()
            proc.wait()
            lines = len(server_log.read_bytes().splitlines())
    rate = flood.sent / flood.elapsed if flood.elapsed else 0.0
    print(
        f"model {os.path.basename(str(stream.bundled_model()))}, "
        f"threads {args.threads or 'the default'}, max_tokens {args.max_tokens}, "
        f"runs {args.runs} each"
    )
    print(
        f"flood: {flood.sent} anonymous requests at {rate:.0f}/s, {flood.searched} searches "
        f"by {args.searches} clients; replies {dict(sorted(flood.statuses.items()))}; "
        f"{lines} lines in the server's log"
    )
    quiet_p95, loaded_p95 = p95(quiet) * 1000, p95(loaded) * 1000
    print(f"inter-token p95, quiet:   {quiet_p95:8.1f} ms ({len(quiet)} gaps)")
    print(f"inter-token p95, flooded: {loaded_p95:8.1f} ms ({len(loaded)} gaps)")
    print(f"ratio: {loaded_p95 / quiet_p95:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
