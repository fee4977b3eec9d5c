"""The batched llama.cpp engine: one owner thread, one context, `llm.parallel` slots.

Each step decodes one token for every answering slot and, in the same batch, a chunk of the
prompts still being read (capped at `llm.prefill_chunk` while anyone is answering, so a long
prompt never holds the others' streams back by more than one chunk). Free slots go to waiting
requests in turns across users (scheduler.py). A slot keeps its conversation's KV after the
answer: the same user's conversation returning to it evaluates only its new tokens; a slot
taken by someone else first saves that KV into a bounded RAM cache (kvcache.py). The system
prompt shared by everyone is evaluated once, saved, and copied into new sequences. The calls
into llama.cpp are in context.py.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from pathlib import Path

import msgspec

from appliance.config import LlmSettings
from appliance.errors import EngineBusy, InvalidRequest, ModelError, ModelNotFound
from appliance.llm.context import Context
from appliance.llm.engine import Failure, Generation, Job
from appliance.llm.kvcache import PrefixCache
from appliance.llm.prompt import PromptFormat
from appliance.llm.scheduler import FairQueue, Pace
from appliance.llm.slots import Slot, Slots
from appliance.llm.text import StopScanner
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    EngineInfo,
    GenerationRequest,
    LoadReport,
    QueuedEvent,
    TokenEvent,
)
from appliance.threads import name_thread

log = logging.getLogger(__name__)

_STEPS_KEPT = 4096
# Generation ids, unique in the process: while the Models page switches models, two engines
# serve at once, and an id must name one request of one of them.
_IDS = itertools.count(1)


class Step(msgspec.Struct, frozen=True):
    """One decode: which requests it served, how (`prefill` or `decode`), with how many tokens."""

    number: int
    parts: tuple[tuple[str, str, int], ...]


class BatchedEngine:
    """The `Engine` over llama.cpp's low-level API; every llama.cpp call is on one thread."""

    def __init__(self, model_path: Path, model_id: str, settings: LlmSettings) -> None:
        self.model_id = model_id
        self._path = model_path
        self._settings = settings
        self._n_ctx = settings.n_ctx
        self._table = Slots(settings.parallel, PrefixCache(settings.prefix_cache_mb << 20))
        self._slots = self._table.all
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._vocab = threading.Lock()  # held while tokenizing, and to free the model
        self._queue: FairQueue[Job] = FairQueue(lambda j: j.request.user,
                                                 lambda j: j.cancelled.is_set())  # fmt: skip
        self._ahead: dict[str, int] = {}  # what each waiting request was last told
        self._jobs: dict[str, Job] = {}
        self._steps: deque[Step] = deque(maxlen=_STEPS_KEPT)
        self._step_numbers = itertools.count(1)
        self._pace = Pace(settings.parallel)
        self._completed = self._cancelled = 0
        self._stopping = False
        self._ready = threading.Event()
        self._loaded = threading.Event()  # the load has ended, whether or not it failed
        self._load_error: str | None = None
        self._report = LoadReport(gpu_offload_supported=False, gpu_layers=0)
        self._format: PromptFormat | None = None
        self._ctx: Context | None = None
        self._thread = threading.Thread(target=self._run, name="llm-engine", daemon=True)

    # --- the Engine protocol, called from any thread ------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake, self._vocab:
            self._stopping = True  # no tokenizing from now on: the model is freed next
            for job in list(self._jobs.values()):
                job.cancel()
            self._wake.notify()
        if self._thread.is_alive():
            self._thread.join()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Wait until the model has loaded or failed to (then `info().load_error` says why)."""
        return self._loaded.wait(timeout)

    def submit(self, request: GenerationRequest) -> Generation:
        """Queue a request (it waits while the model loads); EngineBusy when the queue is full."""
        if request.model is not None and request.model != self.model_id:
            raise ModelNotFound(
                f"the model {request.model!r} is not served here; {self.model_id!r} is"
            )
        if self._load_error is not None:
            raise ModelError(self._load_error)
        if self._stopping or (self._ready.is_set() and not self._thread.is_alive()):
            raise ModelError("the engine has stopped; the server is shutting down")
        job = Job(f"gen-{next(_IDS)}", request)
        with self._wake:
            if self._stopping:  # it stopped meanwhile: nobody would serve the queue
                raise ModelError("the engine has stopped; the server is shutting down")
            waiting = len(self._queue)
            free = sum(s.job is None for s in self._slots) if self._ready.is_set() else 0
            if waiting >= self._settings.queue_size + free:
                raise EngineBusy("every slot is busy and the queue is full; retry shortly",
                                 retry_after=self._pace.retry_after())  # fmt: skip
            self._jobs[job.id] = job
            self._queue.push(job)
            self._wake.notify()
        return job

    def cancel(self, generation_id: str) -> None:
        job = self._jobs.get(generation_id)
        if job is not None:
            job.cancel()
            with self._wake:
                self._wake.notify()

    def info(self) -> EngineInfo:
        busy = sum(s.job is not None for s in self._slots)
        with self._lock:
            queued = len(self._queue)
        return EngineInfo(
            model=self.model_id, ready=self._ready.is_set(), load_error=self._load_error,
            queued=queued, busy=busy > 0, pending=len(self._jobs),
            gpu_offload_supported=self._report.gpu_offload_supported,
            gpu_layers=self._report.gpu_layers, completed=self._completed,
            cancelled=self._cancelled, slots=len(self._slots), slots_busy=busy,
            cache_entries=len(self._table.cache), cache_bytes=self._table.cache.bytes,
            cache_hit_rate=self._table.hit_rate(),
        )  # fmt: skip

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return len(self.tokens(messages))

    def tokens(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        """The messages as the model's prompt tokens (any thread; EngineBusy while loading)."""
        with self._vocab:  # the model stays loaded until it returns
            return self._prompt_format().tokens(messages)

    def context_size(self) -> int:
        self._prompt_format()
        return self._n_ctx

    def steps(self) -> list[Step]:
        """The latest decodes, oldest first: what each step did, for tests and debugging."""
        with self._lock:
            return list(self._steps)

    def _prompt_format(self) -> PromptFormat:
        """Refuses at once rather than holding a worker thread until the model is loaded."""
        if self._format is not None and self._ready.is_set() and not self._stopping:
            return self._format
        if self._stopping:
            raise ModelError("the engine has stopped; the server is shutting down")
        if self._load_error is not None:
            raise ModelError(self._load_error)
        raise EngineBusy("the model is still loading; retry in a moment")

    # --- the engine thread ---------------------------------------------------------------

    def _run(self) -> None:
        name_thread("llm-engine")  # llama.cpp's threads, started from this one, too
        try:
            self._load()
        except Exception as exc:  # any failure of the native library ends up here
            self._load_error = f"the model failed to load: {exc}"
            log.error("model %s failed to load: %s", self.model_id, exc)
            self._close()
            self._loaded.set()
            self._refuse_all(ModelError(self._load_error))
            return
        self._ready.set()
        self._loaded.set()
        try:
            while self._wait_for_work():
                try:
                    self._step()
                except Exception as exc:  # a bug, not a request's fault: keep serving
                    log.exception("an engine step failed; its requests end with an error")
                    for slot in self._slots:
                        if slot.job is not None:
                            self._fail(slot, ModelError(f"the engine failed: {exc}"))
        finally:
            with self._wake:
                self._stopping = True  # also when the loop died: later submits are refused
            for slot in self._slots:
                if slot.job is not None:
                    self._finish(slot, "cancelled")
            self._refuse_all(ModelError("the server is shutting down"))
            with self._vocab:
                self._close()

    def _wait_for_work(self) -> bool:
        with self._wake:
            while not self._stopping and not self._queue.held() and not any(
                    s.job is not None for s in self._slots):
                self._wake.wait()
            return not self._stopping

    def _refuse_all(self, error: ModelError) -> None:
        """End every waiting request with `error` (a cancelled one as cancelled); after a
        failed load, any late one too, until stop()."""
        while True:
            with self._wake:
                jobs = self._queue.drain()
                if not jobs:
                    if self._stopping or self._ready.is_set():
                        return
                    self._wake.wait()
                    continue
            for job in jobs:
                if job.cancelled.is_set():
                    self._end_unserved(job)
                else:
                    self._jobs.pop(job.id, None)
                    job.push(Failure(error))
                    job.push(None)

    def _load(self) -> None:
        self._ctx = Context(self._path, self.model_id, self._settings)
        self._format = self._ctx.format
        self._report = self._ctx.report

    @property
    def _llama(self) -> Context:
        assert self._ctx is not None  # noqa: S101 - the steps run once it is loaded
        return self._ctx

    def _close(self) -> None:
        for slot in self._slots:
            self._free_sampler(slot)
        if self._ctx is not None:
            self._ctx.close()

    # --- one step ------------------------------------------------------------------------

    def _step(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.job.cancelled.is_set():
                self._finish(slot, "cancelled")
        self._admit()
        parts = self._fill_batch()
        if not parts:
            return
        served = tuple((s.job.id, kind, n) for s, kind, n, _ in parts if s.job is not None)
        if self._llama.decode():
            for slot, _, _, tokens in parts:
                self._decoded(slot, tokens)
        else:
            kept = {s.job.id for s, _, _, _ in self._decode_apart(parts) if s.job is not None}
            served = tuple(part for part in served if part[0] in kept)
        with self._lock:
            self._steps.append(Step(next(self._step_numbers), served))

    def _decoded(self, slot: Slot, tokens: list[int]) -> None:
        """The slot's part of the batch just decoded: its tokens are in its KV now; when its
        logits were asked for, its next token is sampled from them (before any other decode
        overwrites them)."""
        self._table.read(self._llama, slot, tokens)
        if slot.job is not None and slot.out >= 0:
            self._sampled(slot)

    def _fill_batch(self) -> list[tuple[Slot, str, int, list[int]]]:
        """Put every answering slot's last token, then prompt chunks (oldest request first),
        into the batch. Returns (slot, kind, count, tokens) for each part."""
        self._llama.clear_batch()
        parts: list[tuple[Slot, str, int, list[int]]] = []
        answering = [s for s in self._slots if s.answering]
        for slot in answering:
            slot.out = self._add(slot, [slot.next], last_logits=True)
            parts.append((slot, "decode", 1, [slot.next]))
        room = self._llama.batch_size - len(answering)
        if answering:
            room = min(room, self._settings.prefill_chunk)
        reading = sorted((s for s in self._slots if s.job is not None and not s.answering),
                         key=lambda s: s.started)  # fmt: skip
        for slot in reading:
            if room <= 0:
                slot.out = -1
                continue
            end = len(slot.tokens) + room
            if slot.shares > len(slot.tokens):  # stop where the system prompt ends, to save it
                end = min(end, slot.shares)
            chunk = slot.prompt[len(slot.tokens) : end]
            done = len(slot.tokens) + len(chunk) == len(slot.prompt)
            slot.out = self._add(slot, chunk, last_logits=done)
            room -= len(chunk)
            parts.append((slot, "prefill", len(chunk), chunk))
        return parts

    def _add(self, slot: Slot, tokens: list[int], last_logits: bool) -> int:
        """Append `slot`'s next tokens to the batch; the index of the last one's logits."""
        return self._llama.add(slot.seq, len(slot.tokens), tokens, last_logits)

    def _decode_apart(self, parts: list[tuple[Slot, str, int, list[int]]]
                      ) -> list[tuple[Slot, str, int, list[int]]]:  # fmt: skip
        """The batch failed (the KV cache is full): decode each slot's part alone, and end
        the requests whose part still fails, with an error of their own. Returns the parts
        decoded (and sampled)."""
        kept = []
        for slot, kind, n, tokens in parts:
            self._llama.keep(slot.seq, len(slot.tokens))
            self._llama.clear_batch()
            out = self._add(slot, tokens, last_logits=slot.out >= 0)
            if self._llama.decode():
                slot.out = out
                kept.append((slot, kind, n, tokens))
                self._decoded(slot, tokens)
            else:
                self._fail(slot, ModelError(
                    "the model's memory for conversations is full; retry, or raise llm.n_ctx "
                    "or lower llm.parallel"))  # fmt: skip
        return kept

    def _sampled(self, slot: Slot) -> None:
        """Sample the slot's next token from the logits just computed, and stream its text."""
        job = slot.job
        assert job is not None  # noqa: S101 - only busy slots are sampled
        token = self._llama.sample(slot.sampler, slot.out)
        if self._llama.ends(token):
            self._finish(slot, "stop")
            return
        slot.count += 1
        slot.next = token
        if text := slot.scanner.feed(self._llama.piece(token)):
            job.push(TokenEvent(text))
        if slot.scanner.stopped:
            self._finish(slot, "stop")
        elif slot.count >= slot.budget:
            self._finish(slot, "length")

    def _finish(self, slot: Slot, reason: str) -> None:
        job = slot.job
        assert job is not None  # noqa: S101 - only busy slots finish
        rest = slot.scanner.flush() if reason != "cancelled" else ""
        done = DoneEvent(finish_reason=reason, prompt_tokens=len(slot.prompt),  # type: ignore[arg-type]
                         completion_tokens=slot.count, cached_tokens=slot.cached)  # fmt: skip
        if reason == "cancelled":
            self._cancelled += 1
        else:
            self._completed += 1
            self._pace.record(time.monotonic() - slot.started)
        self._release(slot)  # before the stream ends: a caller that saw the end finds it free
        if rest:
            job.push(TokenEvent(rest))
        job.push(done)
        job.push(None)

    def _fail(self, slot: Slot, error: Exception) -> None:
        job = slot.job
        assert job is not None  # noqa: S101 - only busy slots fail
        self._table.clear(self._llama, slot)
        self._release(slot)
        job.push(Failure(error))
        job.push(None)

    def _release(self, slot: Slot) -> None:
        assert slot.job is not None  # noqa: S101
        slot.shares = 0
        with self._lock:
            self._jobs.pop(slot.job.id, None)
            slot.job = None
        slot.used = time.monotonic()
        self._free_sampler(slot)

    def _free_sampler(self, slot: Slot) -> None:
        if slot.sampler is not None:
            self._llama.free_sampler(slot.sampler)
            slot.sampler = None

    # --- admission -----------------------------------------------------------------------

    def _admit(self) -> None:
        """Give free slots to waiting requests, and tell the others their place in line."""
        while True:
            with self._wake:
                for gone in self._queue.purge():
                    self._end_unserved(gone)
                if not any(s.job is None for s in self._slots):
                    break
                job = self._queue.pop()
            if job is None:
                break
            self._ahead.pop(job.id, None)
            try:
                self._place(job)
            except Exception as exc:  # this request's end, not the engine's
                if not isinstance(exc, InvalidRequest):
                    log.exception("a request could not be placed in a slot")
                    exc = ModelError(f"the engine could not start this answer: {exc}")
                    for slot in self._slots:  # what the placing left half done is dropped
                        if slot.job is None:
                            self._table.clear(self._llama, slot)
                self._jobs.pop(job.id, None)
                job.push(Failure(exc))
                job.push(None)
        with self._wake:
            order = self._queue.order() if self._queue.held() else []
        for ahead, job in enumerate(order):
            if self._ahead.get(job.id) != ahead:
                self._ahead[job.id] = ahead
                job.push(QueuedEvent(ahead))

    def _end_unserved(self, job: Job) -> None:
        """Its client left while it waited: answered without touching the model."""
        self._ahead.pop(job.id, None)
        job.push(DoneEvent(finish_reason="cancelled", prompt_tokens=0, completion_tokens=0))
        job.push(None)
        self._jobs.pop(job.id, None)
        self._cancelled += 1

    def _place(self, job: Job) -> None:
        """Put the request in the free slot that holds most of its prompt (its own earlier
        turns, in the slot or in the RAM cache), else in the slot unused longest."""
        assert self._format is not None  # noqa: S101 - loaded before any step
        request = job.request
        prompt = self._format.tokens(request.messages)
        if len(prompt) >= self._n_ctx:
            raise InvalidRequest(
                f"the conversation is {len(prompt)} tokens, the model's context is "
                f"{self._n_ctx}; start a new conversation or raise llm.n_ctx",
                param="messages",
            )
        p = request.params
        # A seeded sampled request reads its whole prompt: a reused prefix changes logits in
        # the last bits, and sampling would amplify that. Greedy decoding takes no seed.
        reuse = not (p.seed is not None and p.temperature > 0)
        shared = self._format.system_prefix(request.messages) if reuse else 0
        slot = self._table.place(self._llama, (request.user, request.conversation), prompt,
                                 shared, reuse)  # fmt: skip
        slot.job, slot.prompt, slot.started = job, prompt, time.monotonic()
        slot.cached = len(slot.tokens)
        slot.count, slot.next = 0, -1
        slot.budget = min(p.max_tokens, self._n_ctx - len(prompt))
        slot.scanner = StopScanner(p.stop)
        slot.sampler = self._llama.sampler(p)
