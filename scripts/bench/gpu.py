#!/usr/bin/env python3
"""GPU offload through the appliance's own engine: all layers on the GPU against none.

Loads the model twice through `BatchedEngine` (the serving path), with
`n_gpu_layers` 0 and -1, alternately, and prints time to the first token and decode tokens/s
for each and their ratios, plus how many layers the engine reports on the GPU. Needs a GPU
build of llama-cpp-python (README, "Models and GPU"); a CPU build reports 0 layers and says so.

    .venv/bin/python scripts/bench/gpu.py [--model PATH] [--runs 2] [--threads 8]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

import llama_cpp
import msgspec

from appliance.config import LlmSettings
from appliance.llm.batched import BatchedEngine
from appliance.llm.models import bundled_model
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    GenerationRequest,
    SamplingParams,
    TokenEvent,
)

PROMPT = (ChatMessage("user", "Write a long story about a dragon who learns to cook. " * 20),)


async def one(engine: BatchedEngine, max_tokens: int) -> tuple[float, float]:
    """Time to the first token (s) and decode tokens/s of one greedy answer."""
    params = SamplingParams(temperature=0, top_p=1, max_tokens=max_tokens, seed=1)
    generation = engine.submit(GenerationRequest(messages=PROMPT, params=params))
    started, first, done = time.perf_counter(), 0.0, None
    async for event in generation:
        if isinstance(event, TokenEvent) and not first:
            first = time.perf_counter() - started
        if isinstance(event, DoneEvent):
            done = event
    assert done is not None  # every generation ends with one
    return first, (done.completion_tokens - 1) / (time.perf_counter() - started - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=256)
    args = parser.parse_args()
    model = args.model or bundled_model()
    print(f"llama.cpp build offloads to a GPU: {bool(llama_cpp.llama_supports_gpu_offload())}")
    results: dict[int, list[tuple[float, float]]] = {0: [], -1: []}
    for _ in range(args.runs):
        for layers in (0, -1):
            settings = msgspec.convert({"n_ctx": 4096, "n_gpu_layers": layers,
                                        "n_threads": args.threads}, LlmSettings)  # fmt: skip
            engine = BatchedEngine(model, model.stem, settings)
            engine.start()
            assert engine.wait_ready(300), engine.info().load_error
            on_gpu = engine.info().gpu_layers
            results[layers].append(asyncio.run(one(engine, args.max_tokens)))
            engine.stop()
            print(f"n_gpu_layers {layers:>2}: {on_gpu} layers on the GPU")
    cpu, gpu = ([statistics.median(x) for x in zip(*results[n], strict=True)] for n in (0, -1))
    print(f"{'':24} {'TTFT ms':>8} {'decode tok/s':>13}")
    print(f"{'n_gpu_layers 0':24} {cpu[0] * 1000:8.1f} {cpu[1]:13.1f}")
    print(f"{'n_gpu_layers -1 (all)':24} {gpu[0] * 1000:8.1f} {gpu[1]:13.1f}")
    print(f"{'ratio all / none':24} {gpu[0] / cpu[0]:8.2f} {gpu[1] / cpu[1]:13.2f}")


if __name__ == "__main__":
    main()
