"""The engine seam: what the web layer sees (`Engine`, `Generation`), and the request in
flight that an engine thread feeds (`Job`). The batched llama.cpp engine is in batched.py."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from typing import Protocol

import msgspec

from appliance.llm.types import (
    ChatMessage,
    EngineInfo,
    Event,
    GenerationRequest,
)

log = logging.getLogger(__name__)


class Generation(Protocol):
    """One submitted request: an async stream of events that ends with a DoneEvent."""

    id: str

    def __aiter__(self) -> AsyncIterator[Event]: ...

    def cancel(self) -> None: ...


class Engine(Protocol):
    def submit(self, request: GenerationRequest) -> Generation: ...

    def cancel(self, generation_id: str) -> None: ...

    def info(self) -> EngineInfo: ...

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        """Prompt tokens of these messages through the model's chat template, for sizing a
        prompt before it is submitted; EngineBusy while the model loads."""
        ...

    def context_size(self) -> int:
        """The model's context window in tokens (prompt plus answer); EngineBusy while the
        model loads."""
        ...


class Failure(msgspec.Struct, frozen=True):
    error: BaseException


class Job:
    """A request in flight; the engine thread pushes events, the event loop pulls them."""

    def __init__(self, job_id: str, request: GenerationRequest) -> None:
        self.id = job_id
        self.request = request
        self.cancelled = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[Event | Failure | None] = asyncio.Queue()

    def push(self, item: Event | Failure | None) -> None:
        """Called from the engine thread; None marks the end of the stream."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, item)
        except RuntimeError:  # the caller's loop has closed: nobody is listening any more
            self.cancelled.set()

    def cancel(self) -> None:
        self.cancelled.set()

    async def __aiter__(self) -> AsyncIterator[Event]:
        try:
            while (item := await self._events.get()) is not None:
                if isinstance(item, Failure):
                    raise item.error
                yield item
        finally:
            # Reached on normal end, on an error, and when the consumer goes away (a client
            # disconnect cancels the task awaiting us): in every case the engine is released.
            self.cancelled.set()
