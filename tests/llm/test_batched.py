"""The batched engine on the real bundled model: sequences decoded together stay apart, turns
are fair, long prompts are read in chunks between the others' tokens, each conversation's
cache is kept (and never handed to another user)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.llm.batched import BatchedEngine
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    Event,
    GenerationRequest,
    QueuedEvent,
    SamplingParams,
    TokenEvent,
)
from tests.conftest import LONG_PROMPT, running_engine

QUESTIONS = ("What is the capital of France?", "Name three colours of the rainbow.",
             "Write a haiku about the sea.", "How many legs does a spider have?")  # fmt: skip
SYSTEM = ChatMessage("system", "You are the helpful assistant of Example Corp. " * 8)


def request(*messages: ChatMessage, user: str = "u", conversation: str | None = None,
            **params: object) -> GenerationRequest:  # fmt: skip
    sampling = {"temperature": 0.0, "top_p": 0.95, "max_tokens": 32, **params}
    return GenerationRequest(messages=messages, params=SamplingParams(**sampling),  # type: ignore[arg-type]
                             user=user, conversation=conversation)  # fmt: skip


def ask(question: str, **kwargs: object) -> GenerationRequest:
    return request(ChatMessage("user", question), **kwargs)  # type: ignore[arg-type]


async def collect(engine: BatchedEngine, req: GenerationRequest) -> list[Event]:
    return [event async for event in engine.submit(req)]


def together(engine: BatchedEngine, *requests: GenerationRequest) -> list[list[Event]]:
    async def run() -> list[list[Event]]:
        return list(await asyncio.gather(*(collect(engine, r) for r in requests)))

    return asyncio.run(run())


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent))


def done_of(events: list[Event]) -> DoneEvent:
    done = events[-1]
    assert isinstance(done, DoneEvent)
    return done


@pytest.fixture(scope="module")
def four(model_path: Path) -> Iterator[BatchedEngine]:
    yield from running_engine(model_path, parallel=4, queue_size=12)


@pytest.fixture(scope="module")
def pair(model_path: Path) -> Iterator[BatchedEngine]:
    yield from running_engine(model_path, parallel=2, n_ctx=4608, prefill_chunk=256, queue_size=4)


def first_steps(engine: BatchedEngine, since: int) -> dict[str, int]:
    """The number of the first step each request took part in, after step `since`."""
    first: dict[str, int] = {}
    for step in engine.steps():
        if step.number > since:
            for job, _, _ in step.parts:
                first.setdefault(job, step.number)
    return first


def last_step(engine: BatchedEngine) -> int:
    steps = engine.steps()
    return steps[-1].number if steps else 0


def test_four_questions_together_answer_as_each_alone(four: BatchedEngine) -> None:
    alone = [text_of(together(four, ask(q, user=f"alone{i}"))[0])
             for i, q in enumerate(QUESTIONS)]  # fmt: skip
    at_once = [text_of(events) for events in
               together(four, *(ask(q, user=f"batch{i}") for i, q in enumerate(QUESTIONS)))]
    assert at_once == alone
    assert len(set(alone)) == 4
    assert all(len(a) > 20 for a in alone)
    steps = [s for s in four.steps() if sum(kind == "decode" for _, kind, _ in s.parts) == 4]
    assert steps, "the four were never decoded in one step"


def test_a_seeded_sampled_answer_is_the_same_alone_and_in_a_batch(four: BatchedEngine) -> None:
    seeded = ask(LONG_PROMPT, temperature=1.0, seed=1234, max_tokens=40)
    first = text_of(together(four, seeded)[0])
    again = text_of(together(four, seeded)[0])
    others = (ask(q, temperature=1.0, seed=i, user=f"o{i}") for i, q in enumerate(QUESTIONS[:3]))
    batched = text_of(together(four, seeded, *others)[0])
    assert first == again == batched
    assert len(first) > 40


def test_turns_go_round_users_not_requests(four: BatchedEngine) -> None:
    async def scenario() -> tuple[list[str], str, list[Event]]:
        running = [four.submit(ask(f"{LONG_PROMPT} ({i})", user="heavy", max_tokens=24))
                   for i in range(4)]  # fmt: skip
        streams = [aiter(g) for g in running]
        for stream in streams:  # every slot is answering
            while not isinstance(await anext(stream), TokenEvent):
                pass
        queued = [four.submit(ask(f"Say {i}.", user="heavy", max_tokens=4)) for i in range(6)]
        other = four.submit(ask("Say hello.", user="light", max_tokens=4))
        results = await asyncio.gather(*(collect_all(s) for s in streams),
                                       *(collect_all(aiter(g)) for g in (*queued, other)))
        return [g.id for g in queued], other.id, results[-1]

    since = last_step(four)
    queued, other, events = asyncio.run(scenario())
    first = first_steps(four, since)
    assert first[other] <= min(first[q] for q in queued), "the light user waited its turn twice"
    told = [e.ahead for e in events if isinstance(e, QueuedEvent)]
    assert told
    assert told[0] == 0
    assert done_of(events).finish_reason in ("stop", "length")


async def collect_all(stream: object) -> list[Event]:
    return [event async for event in stream]  # type: ignore[attr-defined]


def test_a_waiting_request_hears_its_place_until_it_starts(pair: BatchedEngine) -> None:
    results = together(pair, *(ask(f"{LONG_PROMPT} {i}", user=f"p{i}", max_tokens=16)
                               for i in range(5)))  # fmt: skip
    places = [[e.ahead for e in r if isinstance(e, QueuedEvent)] for r in results]
    assert places[0] == places[1] == []  # two slots: the first two start at once
    assert places[4][0] == 2
    assert places[4] == sorted(places[4], reverse=True)
    assert places[4][-1] == 0
    for events in results:  # never a place in line after the answer began
        first_token = next(i for i, e in enumerate(events) if isinstance(e, TokenEvent))
        assert not any(isinstance(e, QueuedEvent) for e in events[first_token:])


def test_a_long_prompt_is_read_between_the_others_tokens(pair: BatchedEngine) -> None:
    long_text = " ".join(f"Line {i}: the quarterly figure was {i * 37 % 101}." for i in range(310))

    async def scenario() -> tuple[str, str, list[Event], list[Event]]:
        streamer = pair.submit(ask(LONG_PROMPT, user="s", max_tokens=300))
        stream = aiter(streamer)
        head = [await anext(stream)]
        reader = pair.submit(ask(long_text + " Which line had 5?", user="r", max_tokens=4))
        rest, read = await asyncio.gather(collect_all(stream), collect_all(aiter(reader)))
        return streamer.id, reader.id, head + rest, read

    since = last_step(pair)
    streamer, reader, _streamed, read = asyncio.run(scenario())
    prompt = done_of(read).prompt_tokens
    assert prompt > 4000
    steps = [s for s in pair.steps() if s.number > since]
    reading = [s for s in steps if any(j == reader and k == "prefill" for j, k, _ in s.parts)]
    evaluated = sum(n for s in reading for j, k, n in s.parts if j == reader)
    assert evaluated == prompt - done_of(read).cached_tokens
    assert len(reading) >= prompt // 256
    last_read = reading[-1].number
    assert any(s.number > last_read and any(j == streamer for j, _, _ in s.parts) for s in steps)
    for step in reading:  # each chunk went in the same decode as the streamer's next token
        assert (streamer, "decode", 1) in step.parts
        assert all(n <= 256 for j, _, n in step.parts if j == reader)


def test_cancel_while_reading_or_answering_frees_the_slot(pair: BatchedEngine) -> None:
    long_text = " ".join(f"item {i} is {i * 7 % 13}." for i in range(450))

    def took_part(job: str) -> int:
        return sum(n for s in pair.steps() for j, _, n in s.parts if j == job)

    async def scenario(while_reading: bool) -> tuple[list[Event], int, list[Event]]:
        busy = pair.submit(ask(LONG_PROMPT, user="b", max_tokens=400))
        stream = aiter(busy)
        while not isinstance(await anext(stream), TokenEvent):
            pass
        doomed = pair.submit(ask(long_text if while_reading else LONG_PROMPT, user="d",
                                 max_tokens=400))  # fmt: skip
        after = pair.submit(ask("Say hi.", user="n", max_tokens=4))  # waits: both slots busy
        seen: list[Event] = []
        if while_reading:
            while not took_part(doomed.id):
                await asyncio.sleep(0.001)
        else:
            async for event in doomed:
                seen.append(event)
                if isinstance(event, TokenEvent):
                    break
        doomed.cancel()
        seen += [e async for e in doomed]
        answered = await collect_all(aiter(after))
        busy.cancel()
        await collect_all(stream)
        return seen, took_part(doomed.id), answered

    seen, evaluated, answered = asyncio.run(scenario(while_reading=True))
    done = done_of(seen)
    assert done.finish_reason == "cancelled"
    assert done.completion_tokens == 0
    assert 0 < evaluated < done.prompt_tokens  # it stopped reading part way
    assert done_of(answered).finish_reason in ("stop", "length")
    assert text_of(answered)

    seen, _, answered = asyncio.run(scenario(while_reading=False))
    assert done_of(seen).finish_reason == "cancelled"
    assert done_of(answered).finish_reason in ("stop", "length")
    assert text_of(answered)
    assert pair.info().slots_busy == 0
    assert pair.info().pending == 0


def test_the_next_turn_reads_only_its_new_tokens(four: BatchedEngine) -> None:
    history = [SYSTEM, ChatMessage("user", "What is the capital of France?")]
    turns: list[DoneEvent] = []
    for turn in range(3):
        events = together(four, request(*history, user="alice", conversation="c1"))[0]
        turns.append(done_of(events))
        history += [ChatMessage("assistant", text_of(events)),
                    ChatMessage("user", f"And question {turn}: what else?")]  # fmt: skip
        # Between turns, six others chat: more than the slots, so alice's slot is reused and
        # her conversation's state has to wait in the RAM cache.
        together(four, *(request(SYSTEM, ChatMessage("user", f"{q} ({turn})"), user=f"x{i}",
                                 conversation=f"x{i}", max_tokens=8)
                         for i, q in enumerate(QUESTIONS + QUESTIONS[:2])))  # fmt: skip
    for before, after in itertools.pairwise(turns):
        assert after.cached_tokens >= before.prompt_tokens  # all of the turn before
        assert after.cached_tokens < after.prompt_tokens
    info = four.info()
    assert info.cache_entries > 0
    assert info.cache_bytes > 0
    assert info.cache_hit_rate > 0


def test_another_user_never_gets_a_users_state(four: BatchedEngine) -> None:
    shared = four._prompt_format().system_prefix((SYSTEM,))
    messages = (SYSTEM, ChatMessage("user", "My salary is 81,000. What is 2+2?"))
    a = together(four, request(*messages, user="ann", conversation="same"))[0]
    b = together(four, request(*messages, user="bob", conversation="same"))[0]
    assert done_of(b).cached_tokens <= shared  # only the system prompt everyone shares
    assert text_of(a) == text_of(b)
    # And from the RAM cache: ann's state is pushed out of her slot, then bob asks again.
    together(four, *(ask(q, user=f"y{i}", conversation=f"y{i}") for i, q in enumerate(QUESTIONS)))
    c = together(four, request(*messages, user="carol", conversation="same"))[0]
    assert done_of(c).cached_tokens <= shared
    again = together(four, request(*messages, user="ann", conversation="same"))[0]
    assert done_of(again).cached_tokens > shared  # her own state was kept for her


def test_the_shared_system_prompt_is_read_once(four: BatchedEngine) -> None:
    shared = four._prompt_format().system_prefix((SYSTEM,))
    assert shared > 50
    together(four, request(SYSTEM, ChatMessage("user", "Hello."), user="first", conversation="1"))
    later = together(four, request(SYSTEM, ChatMessage("user", "Goodbye."), user="second",
                                   conversation="2"))[0]  # fmt: skip
    assert done_of(later).cached_tokens == shared
    # No system message: the part the chat template puts in by itself is shared just the same.
    default = four._prompt_format().system_prefix(())
    assert default > 5  # SmolLM2's template has a default system prompt
    together(four, ask("Hello.", user="third", conversation="3"))
    plain = together(four, ask("Goodbye.", user="fourth", conversation="4"))[0]
    assert done_of(plain).cached_tokens == default
