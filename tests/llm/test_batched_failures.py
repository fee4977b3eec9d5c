"""The batched engine when things fail: a full KV cache, a request that cannot be placed, a
stop with requests waiting. Each ends the requests concerned, and only those."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.errors import ModelError
from appliance.llm import context
from appliance.llm.batched import BatchedEngine
from appliance.llm.types import DoneEvent, Event, TokenEvent
from tests.conftest import LONG_PROMPT, running_engine
from tests.llm.test_batched import QUESTIONS, ask, collect, text_of, together


@pytest.fixture
def engine(model_path: Path) -> Iterator[BatchedEngine]:
    yield from running_engine(model_path, parallel=2, queue_size=4)


def test_a_batch_that_fails_is_decoded_part_by_part(
    engine: BatchedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    questions = [ask(q, user=f"u{i}", max_tokens=24) for i, q in enumerate(QUESTIONS[:2])]
    alone = [text_of(together(engine, q)[0]) for q in questions]
    real: Callable[..., int] = context.llama_cpp.llama_decode
    refusals = iter(range(3))

    def decode(ctx: Any, batch: Any) -> int:
        # Batches of both requests are refused a few times, as a full KV cache would be.
        if batch.n_tokens > 1 and len({batch.seq_id[i][0] for i in range(batch.n_tokens)}) > 1 \
                and next(refusals, None) is not None:  # fmt: skip
            return 1
        return real(ctx, batch)

    monkeypatch.setattr(context.llama_cpp, "llama_decode", decode)
    at_once = [text_of(events) for events in together(engine, *questions)]
    assert next(refusals, None) is None  # the refusals really happened
    assert at_once == alone  # each sampled from its own logits, none from the other's


def test_a_request_that_cannot_be_placed_fails_alone(
    engine: BatchedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt_format = engine._prompt_format()
    real = prompt_format.tokens

    def tokens(messages: Any) -> list[int]:
        if "explode" in messages[-1].content:
            raise RuntimeError("tokenizer broke")
        return real(messages)

    monkeypatch.setattr(prompt_format, "tokens", tokens)

    async def scenario() -> tuple[BaseException | list[Event], list[Event]]:
        broken, fine = await asyncio.gather(collect(engine, ask("Please explode.")),
                                            collect(engine, ask("Say hi.", max_tokens=4)),
                                            return_exceptions=True)  # fmt: skip
        assert not isinstance(fine, BaseException)
        return broken, fine

    broken, fine = asyncio.run(scenario())
    assert isinstance(broken, ModelError)
    assert "could not start this answer" in str(broken)
    assert isinstance(fine[-1], DoneEvent)
    assert text_of(fine)
    assert engine.info().pending == 0


def test_stop_ends_every_request_running_or_waiting(engine: BatchedEngine) -> None:
    async def scenario() -> list[BaseException | list[Event]]:
        running = [engine.submit(ask(f"{LONG_PROMPT} {i}", user=f"s{i}", max_tokens=1500))
                   for i in range(2)]  # fmt: skip
        waiting = [engine.submit(ask("Say hi.", user=f"w{i}")) for i in range(3)]
        waiting[0].cancel()  # one of them gave up already
        streams = [aiter(g) for g in running]
        for stream in streams:
            while not isinstance(await anext(stream), TokenEvent):
                pass
        stopping = asyncio.create_task(asyncio.to_thread(engine.stop))

        async def rest(stream: Any) -> list[Event]:
            return [event async for event in stream]

        ends = await asyncio.wait_for(asyncio.gather(
            *(rest(s) for s in streams), *(rest(aiter(g)) for g in waiting),
            return_exceptions=True), timeout=60)  # fmt: skip
        await stopping
        return list(ends)

    ends = asyncio.run(scenario())
    for end in ends:  # running or waiting, each stream ends, as stopped
        assert isinstance(end, list)
        assert isinstance(end[-1], DoneEvent)
        assert end[-1].finish_reason == "cancelled"
    assert engine.info().pending == 0
    with pytest.raises(ModelError, match="stopped"):
        engine.submit(ask("Hello?"))
    with pytest.raises(ModelError, match="stopped"):
        engine.count_tokens(ask("Hello?").messages)
