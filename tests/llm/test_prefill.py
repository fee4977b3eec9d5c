"""Prompt reading: a prompt read once is not read again by the next turn that starts with it."""

from __future__ import annotations

import asyncio

from appliance.llm.batched import BatchedEngine
from appliance.llm.types import ChatMessage, DoneEvent, GenerationRequest, SamplingParams


def long_request() -> GenerationRequest:
    text = " ".join(f"item {i} is {i * 7 % 13}." for i in range(200))  # ~1,400 tokens
    return GenerationRequest(
        messages=(ChatMessage("user", text + " Which item is 5?"),),
        params=SamplingParams(temperature=0.0, top_p=0.95, max_tokens=4),
        user="prefill", conversation="p",
    )


def done(engine: BatchedEngine, request: GenerationRequest) -> DoneEvent:
    async def run() -> DoneEvent:
        events = [event async for event in engine.submit(request)]
        assert isinstance(events[-1], DoneEvent)
        return events[-1]

    return asyncio.run(run())


def test_the_part_read_is_reused_by_the_next_request(engine: BatchedEngine) -> None:
    request = long_request()
    first = done(engine, request)
    assert first.prompt_tokens == engine.count_tokens(request.messages) > 1000
    again = done(engine, request)
    assert again.finish_reason in ("length", "stop")
    assert again.prompt_tokens == first.prompt_tokens
    assert again.cached_tokens == first.prompt_tokens - 1  # the last one gives the logits
