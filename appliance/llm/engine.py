"""The engine seam, and the one-owner engine: a thread that runs a backend, fed by a queue.

The web layer sees only `Engine` and `Generation`. A backend decodes one request at a time
today; a batched backend that steps several sequences per decode can replace `ThreadedEngine`
behind the same `Engine` protocol without touching its callers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Protocol

import msgspec

from appliance.errors import EngineBusy, ModelError
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    EngineInfo,
    Event,
    GenerationRequest,
    LoadReport,
)

log = logging.getLogger(__name__)


class Backend(Protocol):
    """A loaded model that turns one request into events; used by one thread only."""

    model_id: str

    @property
    def n_ctx(self) -> int: ...

    def load(self) -> LoadReport: ...

    def tokens(self, messages: tuple[ChatMessage, ...]) -> list[int]: ...

    def generate(
        self, request: GenerationRequest, cancelled: Callable[[], bool]
    ) -> Iterator[Event]: ...


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


class _Failure(msgspec.Struct, frozen=True):
    error: BaseException


class _Job:
    """A request in flight; the engine thread pushes events, the event loop pulls them."""

    def __init__(self, job_id: str, request: GenerationRequest) -> None:
        self.id = job_id
        self.request = request
        self.cancelled = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._events: asyncio.Queue[Event | _Failure | None] = asyncio.Queue()

    def push(self, item: Event | _Failure | None) -> None:
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
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            # Reached on normal end, on an error, and when the consumer goes away (a client
            # disconnect cancels the task awaiting us): in every case the engine is released.
            self.cancelled.set()


class ThreadedEngine:
    """Owns the backend on one dedicated thread; requests wait in a bounded queue."""

    def __init__(self, backend: Backend, queue_size: int) -> None:
        self._backend = backend
        # Unbounded on purpose: the limit counts only requests someone still waits for, so
        # clients that left (their jobs cancelled, dropped when reached) take no place.
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._queue_size = queue_size
        self._jobs: dict[str, _Job] = {}  # accepted and not finished, the current one included
        self._current: _Job | None = None
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        self._load_error: str | None = None
        self._report = LoadReport(gpu_offload_supported=False, gpu_layers=0)
        self._completed = self._cancelled = 0
        self._thread = threading.Thread(target=self._run, name="llm-engine", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel()
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def submit(self, request: GenerationRequest) -> Generation:
        """Queue a request (it waits while the model loads); EngineBusy when the queue is full."""
        if self._load_error is not None:
            raise ModelError(self._load_error)
        if self._waiting() >= self._queue_size:
            raise EngineBusy("the engine is busy with other requests; retry shortly")
        job = _Job(f"gen-{next(self._ids)}", request)
        self._jobs[job.id] = job
        self._queue.put(job)
        return job

    def _waiting(self) -> int:
        current = self._current
        return sum(j is not current and not j.cancelled.is_set() for j in list(self._jobs.values()))

    def cancel(self, generation_id: str) -> None:
        job = self._jobs.get(generation_id)
        if job is not None:
            job.cancel()

    def info(self) -> EngineInfo:
        return EngineInfo(
            model=self._backend.model_id,
            ready=self._ready.is_set(),
            load_error=self._load_error,
            queued=self._waiting(),
            busy=self._current is not None,
            pending=len(self._jobs),
            gpu_offload_supported=self._report.gpu_offload_supported,
            gpu_layers=self._report.gpu_layers,
            completed=self._completed,
            cancelled=self._cancelled,
        )

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        self._loaded()
        return len(self._backend.tokens(messages))

    def context_size(self) -> int:
        self._loaded()
        return self._backend.n_ctx

    def _loaded(self) -> None:
        """Refuses at once rather than holding a worker thread until the model is loaded."""
        if self._ready.is_set():
            return
        if self._load_error is not None:
            raise ModelError(self._load_error)
        raise EngineBusy("the model is still loading; retry in a moment")

    def _run(self) -> None:
        try:
            self._report = self._backend.load()
        except Exception as exc:
            self._load_error = f"the model failed to load: {exc}"
            log.error("model %s failed to load: %s", self._backend.model_id, exc)
            self._refuse_all(ModelError(self._load_error))
            return
        self._ready.set()
        while (job := self._queue.get()) is not None:
            self._current = job
            try:
                self._serve(job)
            finally:
                self._current = None
                self._jobs.pop(job.id, None)

    def _refuse_all(self, error: ModelError) -> None:
        """Answer every waiting (and any late) request with the load error, until stop()."""
        while (job := self._queue.get()) is not None:
            job.push(_Failure(error))
            job.push(None)
            self._jobs.pop(job.id, None)

    def _serve(self, job: _Job) -> None:
        last: Event | None = None
        events: Iterable[Event] = (
            # Its client left while it waited: answer without touching the model.
            [DoneEvent(finish_reason="cancelled", prompt_tokens=0, completion_tokens=0)]
            if job.cancelled.is_set()
            else self._backend.generate(job.request, job.cancelled.is_set)
        )
        try:
            for event in events:
                job.push(event)
                last = event
        except Exception as exc:
            job.push(_Failure(exc))
        finally:
            job.push(None)
        if isinstance(last, DoneEvent):
            if last.finish_reason == "cancelled":
                self._cancelled += 1
            else:
                self._completed += 1
