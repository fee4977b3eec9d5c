"""Prompt reading in batches: a cancel lands between batches, and the part read is reused."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.llm.llamacpp import LlamaCppBackend
from appliance.llm.types import ChatMessage, DoneEvent, GenerationRequest, SamplingParams
from tests.conftest import llm_settings


@pytest.fixture(scope="module")
def backend(model_path: Path) -> LlamaCppBackend:
    b = LlamaCppBackend(model_path, "smollm2", llm_settings())
    b.load()
    return b


def long_request() -> GenerationRequest:
    text = " ".join(f"item {i} is {i * 7 % 13}." for i in range(200))  # ~1,400 tokens
    return GenerationRequest(
        messages=(ChatMessage("user", text + " Which item is 5?"),),
        params=SamplingParams(temperature=0.0, top_p=0.95, max_tokens=4),
    )


def test_cancel_between_batches_stops_reading_the_prompt(backend: LlamaCppBackend) -> None:
    request = long_request()
    tokens = backend.count_prompt(request)
    batch = backend._llama.n_batch
    assert len(tokens) > 2 * batch  # the prompt spans several batches
    answers = iter([False, True])  # still wanted for the first batch, then the client leaves
    events = list(backend.generate(request, lambda: next(answers, True)))
    assert events == [
        DoneEvent(finish_reason="cancelled", prompt_tokens=len(tokens), completion_tokens=0)
    ]
    assert backend._llama.n_tokens == batch  # one batch read, the rest never evaluated


def test_the_part_read_is_reused_by_the_next_request(backend: LlamaCppBackend) -> None:
    request = long_request()
    tokens = backend.count_prompt(request)
    list(backend.generate(request, lambda: False))  # reads the whole prompt
    assert list(backend._llama.input_ids[: len(tokens)]) == tokens
    done = list(backend.generate(request, lambda: False))[-1]
    assert isinstance(done, DoneEvent)
    assert done.finish_reason in ("length", "stop")
    assert done.prompt_tokens == len(tokens)
