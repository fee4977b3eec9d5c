"""Switching the served model on real engines: the new model loads beside the old one, new
requests go to it once it has loaded, a request in flight finishes on the old one, which is
then stopped; a model that fails to load leaves the old one serving, with the error said."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from appliance.errors import Conflict, ModelError, ModelNotFound
from appliance.llm.batched import BatchedEngine
from appliance.llm.gguf import ModelInfo, read_model_info
from appliance.llm.models import ModelEntry
from appliance.llm.switch import ModelSwitch
from appliance.llm.types import ChatMessage, DoneEvent, Event, GenerationRequest, SamplingParams
from tests.conftest import LONG_PROMPT, llm_settings
from tests.llm.model_files import unloadable_copy

LIMIT_S = 60  # bounded waits for what the engines' threads do; no timing is asserted


class Gated(BatchedEngine):
    """An engine whose load is reported only once the test lets it: the moment of the swap
    is the test's, not the machine's."""

    def __init__(self, gate: threading.Event, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self._gate = gate

    def wait_loaded(self, timeout: float | None = None) -> bool:
        self._gate.wait(LIMIT_S)
        return super().wait_loaded(timeout)


def entry(path: Path, model_id: str) -> ModelEntry:
    info = msgspec.structs.replace(read_model_info(path), id=model_id)
    return ModelEntry(name=f"{model_id}.gguf", path=str(path), info=info)


def ask(question: str, max_tokens: int, model: str | None = None) -> GenerationRequest:
    params = SamplingParams(temperature=0.0, top_p=0.95, max_tokens=max_tokens)
    return GenerationRequest(messages=(ChatMessage("user", question),), params=params, model=model)


class Made:
    """The engines the switch made, in order; the second's load waits for `gate`."""

    def __init__(self) -> None:
        self.engines: list[BatchedEngine] = []
        self.gate = threading.Event()

    def __call__(self, info: ModelInfo) -> BatchedEngine:
        settings = llm_settings(parallel=2, queue_size=4)
        engine = Gated(self.gate, Path(info.path), info.id, settings)
        if not self.engines:
            self.gate.set()  # the first model loads at start, as it would
        self.engines.append(engine)
        return engine


@pytest.fixture
def made() -> Made:
    return Made()


@pytest.fixture
def switch(model_path: Path, made: Made) -> Iterator[ModelSwitch]:
    switch = ModelSwitch(entry(model_path, "model-a"), made)
    switch.start()
    assert switch.wait_ready(LIMIT_S)
    yield switch
    made.gate.set()
    switch.stop()


def until(check: object, what: str) -> None:
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def answer(switch: ModelSwitch, request: GenerationRequest) -> list[Event]:
    return [event async for event in switch.submit(request)]


def test_new_requests_go_to_the_new_model_and_the_old_one_finishes_its_own(
    switch: ModelSwitch, made: Made, model_path: Path
) -> None:
    async def run() -> None:
        long = aiter(switch.submit(ask(LONG_PROMPT, max_tokens=160)))
        first = await anext(long)
        assert switch.switch(entry(model_path, "model-b"), on_served=lambda: None)
        with pytest.raises(Conflict, match=r"model-b\.gguf is loading"):
            switch.switch(entry(model_path, "model-c"), on_served=lambda: None)
        assert switch.info().loading == "model-b"
        assert switch.served().name == "model-a.gguf"  # until the new one has loaded
        made.gate.set()
        await asyncio.to_thread(until, lambda: switch.served().name == "model-b.gguf", "swap")
        old, new = made.engines
        assert old.info().pending == 1  # the long answer is still being written
        assert switch.info().model == "model-b"
        assert switch.state().finishing == 1
        with pytest.raises(Conflict, match=r"model-a\.gguf is still finishing 1 requests"):
            switch.switch(entry(model_path, "model-c"), on_served=lambda: None)
        short = await answer(switch, ask("Say hi.", max_tokens=4))
        assert isinstance(short[-1], DoneEvent)
        assert new.info().completed == 1
        pinned_to_old = await answer(switch, ask("Say hi.", max_tokens=4, model="model-a"))
        assert isinstance(pinned_to_old[-1], DoneEvent)  # told model-a before the swap: model-a
        rest = [first, *[event async for event in long]]
        done = rest[-1]
        assert isinstance(done, DoneEvent)
        assert (done.finish_reason, done.completion_tokens) == ("length", 160)
        assert old.info().completed == 2
        assert new.info().completed == 1  # nothing of the old model's reached the new one
        await asyncio.to_thread(until, lambda: switch.state().replaced is None, "old one freed")
        with pytest.raises(ModelError, match="the engine has stopped"):
            old.submit(ask("Anyone there?", max_tokens=2))
        with pytest.raises(ModelNotFound, match="'model-a' is not served here: use 'model-b'"):
            switch.submit(ask("Say hi.", max_tokens=4, model="model-a"))
        info = switch.info()
        assert (info.completed, info.pending, info.loading) == (3, 0, None)

    asyncio.run(run())


def test_a_model_that_fails_to_load_leaves_the_old_one_serving(
    switch: ModelSwitch, made: Made, model_path: Path, tmp_path: Path
) -> None:
    broken = unloadable_copy(model_path, tmp_path / "broken.gguf")
    made.gate.set()
    served: list[str] = []
    assert switch.switch(entry(broken, "broken"), on_served=lambda: served.append("broken"))
    until(lambda: switch.state().loading is None, "the load ends")
    state = switch.state()
    assert state.served.name == "model-a.gguf"
    assert state.failed == "broken.gguf"
    assert "failed to load" in (state.error or "")
    assert served == []
    assert switch.info().ready
    done = asyncio.run(answer(switch, ask("Say hi.", max_tokens=4)))[-1]
    assert isinstance(done, DoneEvent)
    with pytest.raises(ModelError):  # what the failed load made is stopped
        made.engines[1].submit(ask("Say hi.", max_tokens=4))


def test_the_served_model_is_the_one_a_request_may_name(
    switch: ModelSwitch, model_path: Path
) -> None:
    assert switch.resolve(None) == "model-a"
    assert switch.resolve("default") == "model-a"
    assert switch.resolve("model-a") == "model-a"
    with pytest.raises(ModelNotFound) as caught:
        switch.resolve("model-A")
    assert "'model-A' is not served here: use 'model-a' (the model served) or 'default'" in str(
        caught.value
    )
    assert not switch.switch(entry(model_path, "model-a"), on_served=lambda: None)
