"""The engine on the real bundled model: streaming, limits, seeds, cancellation, the queue."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

import pytest

from appliance.errors import EngineBusy, InvalidRequest, ModelError
from appliance.llm.batched import BatchedEngine
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    Event,
    GenerationRequest,
    SamplingParams,
    TokenEvent,
)
from tests.conftest import LONG_PROMPT, llm_settings


def request(prompt: str, **params: object) -> GenerationRequest:
    sampling = {"temperature": 0.0, "top_p": 0.95, "max_tokens": 32, "seed": 7, **params}
    return GenerationRequest(
        messages=(ChatMessage("user", prompt),),
        params=SamplingParams(**sampling),  # type: ignore[arg-type]
    )


def run(engine: BatchedEngine, req: GenerationRequest) -> list[Event]:
    async def collect() -> list[Event]:
        return [event async for event in engine.submit(req)]

    return asyncio.run(collect())


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent))


def test_streams_many_pieces_then_one_done(engine: BatchedEngine) -> None:
    events = run(engine, request("What is the capital of France?"))
    assert sum(isinstance(e, TokenEvent) for e in events) > 3
    assert isinstance(events[-1], DoneEvent)
    assert [isinstance(e, DoneEvent) for e in events].count(True) == 1
    assert events[-1].prompt_tokens > 10


def test_obeys_max_tokens(engine: BatchedEngine) -> None:
    done = run(engine, request(LONG_PROMPT, max_tokens=9))[-1]
    assert isinstance(done, DoneEvent)
    assert done.completion_tokens == 9
    assert done.finish_reason == "length"


def test_obeys_stop(engine: BatchedEngine) -> None:
    unstopped = text_of(run(engine, request("Count from 1 to 10.", max_tokens=60)))
    assert "4" in unstopped  # the test is meaningful only if the stop string would appear
    events = run(engine, request("Count from 1 to 10.", max_tokens=60, stop=["4"]))
    assert "4" not in text_of(events)
    assert unstopped.startswith(text_of(events))
    done = events[-1]
    assert isinstance(done, DoneEvent)
    assert done.finish_reason == "stop"


def test_same_seed_same_answer(engine: BatchedEngine) -> None:
    a = text_of(run(engine, request(LONG_PROMPT, temperature=1.0, seed=1234)))
    b = text_of(run(engine, request(LONG_PROMPT, temperature=1.0, seed=1234)))
    assert a == b
    assert len(a) > 20


def test_prompt_longer_than_context_is_refused(engine: BatchedEngine) -> None:
    with pytest.raises(InvalidRequest, match="context is 2048"):
        run(engine, request("word " * 3000))


def test_leaving_the_stream_cancels_and_frees_the_engine(engine: BatchedEngine) -> None:
    before = engine.info().cancelled

    async def scenario() -> DoneEvent:
        generation = engine.submit(request(LONG_PROMPT, max_tokens=1500))
        async with aclosing(aiter(generation)) as stream:  # type: ignore[type-var]
            seen = 0
            async for event in stream:
                seen += isinstance(event, TokenEvent)
                if seen == 3:
                    break  # leaving the block closes the stream, as a departing client does
        # Within the same event loop: the queue holds one request, and a stuck engine would
        # run the long generation (~1,500 tokens) before this one.
        events = [event async for event in engine.submit(request("Hi", max_tokens=4))]
        assert engine.info().cancelled == before + 1
        assert isinstance(events[-1], DoneEvent)
        return events[-1]

    assert asyncio.run(scenario()).finish_reason in ("length", "stop")


def test_a_model_that_fails_to_load_refuses_waiting_requests(
    model_path: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(model_path.read_bytes()[:3_000_000])  # past the header, data cut
    failing = BatchedEngine(broken, "broken", llm_settings(queue_size=2))

    async def scenario() -> None:
        waiting = failing.submit(request("Hi"))  # queued before the load ends
        failing.start()
        with pytest.raises(ModelError, match="failed to load"):
            [event async for event in waiting]
        with pytest.raises(ModelError, match="failed to load"):
            failing.submit(request("Hi"))

    try:
        asyncio.run(scenario())
        assert failing.info().ready is False
        assert "broken.gguf" in (failing.info().load_error or "")
    finally:
        failing.stop()


def test_full_queue_refuses_with_engine_busy(engine: BatchedEngine) -> None:
    async def scenario() -> None:
        running = [engine.submit(request(LONG_PROMPT, max_tokens=1500))
                   for _ in range(engine.info().slots)]  # fmt: skip
        streams = [aiter(r) for r in running]
        for stream in streams:
            await anext(stream)  # every slot is now busy
        queued = engine.submit(request("Hi", max_tokens=2))
        with pytest.raises(EngineBusy) as refused:
            engine.submit(request("Hi", max_tokens=2))
        assert refused.value.retry_after is not None
        assert refused.value.retry_after >= 1
        for generation in (*running, queued):
            generation.cancel()
        for stream in (*streams, aiter(queued)):
            async for _ in stream:
                pass

    asyncio.run(scenario())
    assert run(engine, request("Hi", max_tokens=2))[-1].finish_reason in ("length", "stop")  # type: ignore[union-attr]


def test_prompt_sizing_is_refused_at_once_while_the_model_loads(model_path: Path) -> None:
    waiting = BatchedEngine(model_path, "smollm2", llm_settings(queue_size=1))
    with pytest.raises(EngineBusy, match="still loading"):
        waiting.count_tokens((ChatMessage("user", "Hello"),))
    with pytest.raises(EngineBusy):
        waiting.context_size()
