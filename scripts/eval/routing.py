#!/usr/bin/env python3
"""Routing quality: how often the router sends a message where its label says it belongs.

Routes each message of `tests/data/route_eval.jsonl` (company questions across HR, finance,
IT and facilities; tasks on pasted text, writing, general knowledge, code and arithmetic;
requests for a person; follow-ups with the conversation before them; a few hard cases) with
`appliance.chat.route.Router` and the default embedder as the appliance builds it
(all-MiniLM-L6-v2, ONNX int8). Prints the accuracy overall and per labelled kind (the share of
that kind's messages routed to it) and the confusion matrix (rows: the label, columns: the
route). `-v` lists the misses, with the route's reason.

    .venv/bin/python scripts/eval/routing.py [--messages FILE] [-v]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from pathlib import Path
from typing import get_args

import msgspec

from appliance.chat.route import Route, RouteKind, Router
from appliance.config import Settings
from appliance.llm.types import ChatMessage
from appliance.wiring import build_embedder

MESSAGES = Path(__file__).resolve().parents[2] / "tests" / "data" / "route_eval.jsonl"
# The test suite's ONNX export (tests/conftest.py), so that the two share one.
EMBED_CACHE = Path(tempfile.gettempdir()) / f"appliance-tests-onnx-{os.getuid()}"
KINDS: tuple[RouteKind, ...] = get_args(RouteKind)


class Labelled(msgspec.Struct, frozen=True):
    message: str
    history: list[ChatMessage]
    kind: RouteKind


class Result(msgspec.Struct, frozen=True):
    case: Labelled
    route: Route

    @property
    def right(self) -> bool:
        return self.route.kind == self.case.kind


def load(path: Path | str = MESSAGES) -> list[Labelled]:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [msgspec.json.decode(line, type=Labelled) for line in lines if line.strip()]


def evaluate(router: Router, cases: list[Labelled]) -> list[Result]:
    return [Result(case, router.route(case.message, case.history)) for case in cases]


def accuracy(results: list[Result], kind: RouteKind | None = None) -> float:
    """The share routed right, of all results or of those labelled `kind`."""
    chosen = [r for r in results if kind is None or r.case.kind == kind]
    return sum(r.right for r in chosen) / max(len(chosen), 1)


def show(results: list[Result], verbose: bool) -> None:
    print(f"{'label':<12}{'n':>4}{'accuracy':>10}  routed to " + "".join(f"{k:>10}" for k in KINDS))
    for label in KINDS:
        row = [sum(r.case.kind == label and r.route.kind == k for r in results) for k in KINDS]
        cells = "".join(f"{n:>10}" for n in row)
        print(f"{label:<12}{sum(row):>4}{accuracy(results, label):>10.2f}  {'':<9}{cells}")
    print(f"{'all':<12}{len(results):>4}{accuracy(results):>10.2f}")
    for r in results if verbose else ():
        if not r.right:
            turns = f" (after {len(r.case.history)} turns)" if r.case.history else ""
            print(f"\n{r.case.kind} -> {r.route.kind}{turns}: {r.case.message!r}")
            print(f"    {r.route.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages",
        default=os.path.relpath(MESSAGES),
        help="labelled messages as JSON lines (default: %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        default=str(EMBED_CACHE),
        help="where the ONNX export is kept (default: %(default)s)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    args = parser.parse_args()
    cases = load(args.messages)
    settings = msgspec.convert({"embed": {"cache_dir": args.cache_dir}}, Settings)
    results = evaluate(Router(build_embedder(settings)), cases)
    flags = [f"--messages={args.messages}", *(["-v"] if args.verbose else [])]
    print(f"command: {shlex.join([os.path.relpath(sys.executable), sys.argv[0], *flags])}")
    print(f"{len(cases)} messages, {sum(bool(c.history) for c in cases)} with history\n")
    show(results, args.verbose)


if __name__ == "__main__":
    main()
