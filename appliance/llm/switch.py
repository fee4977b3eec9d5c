"""The served model, and switching to another without a restart: the new one loads in the
background while the old one serves; once it is ready, new requests go to it, the requests in
flight (waiting or answering) finish on the old one, and the old one is then freed.

At most two models are loaded at once, and only for as long as the old one still has requests:
a switch is refused while one is loading or an old one is still finishing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

import msgspec

from appliance.errors import Conflict, ModelError, ModelNotFound
from appliance.llm.engine import Engine, Generation
from appliance.llm.gguf import ModelInfo
from appliance.llm.models import ModelEntry
from appliance.llm.types import ChatMessage, EngineInfo, GenerationRequest

log = logging.getLogger(__name__)

DEFAULT = "default"  # the OpenAI API's name for "whichever model is served"
_DRAIN_POLL_S = 0.05


class ServingEngine(Engine, Protocol):
    """An engine the switch can start, wait for and free (the batched engine is one)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def wait_ready(self, timeout: float | None = None) -> bool: ...

    def wait_loaded(self, timeout: float | None = None) -> bool: ...


class SwitchState(msgspec.Struct, frozen=True, kw_only=True):
    """What the Models page shows about serving."""

    served: ModelEntry
    loading: ModelEntry | None  # being loaded to replace the served one
    replaced: ModelEntry | None  # the model replaced, while it is still loaded
    finishing: int  # requests it still answers before it is freed
    failed: str | None  # the file whose switch failed last (the served model stayed)
    error: str | None  # why


class _Loaded:
    def __init__(self, entry: ModelEntry, engine: ServingEngine) -> None:
        self.entry, self.engine = entry, engine
        assert entry.info is not None  # noqa: S101 - only readable models are loaded
        self.id = entry.info.id


class ModelSwitch:
    """The `Engine` that the rest of the app uses: the served model's engine, swappable.

    `make` builds the (not yet started) engine of a model; every engine is started, and
    stopped, here."""

    def __init__(self, first: ModelEntry, make: Callable[[ModelInfo], ServingEngine]) -> None:
        assert first.info is not None  # noqa: S101 - the caller read its header
        self._make = make
        self._current = _Loaded(first, make(first.info))
        self._old: _Loaded | None = None  # the model replaced, until it is freed
        self._old_open = False  # requests told the old model's id may still go to it
        self._loading: ModelEntry | None = None
        self._loading_engine: ServingEngine | None = None
        self._failed: tuple[str, str] | None = None  # (file, error) of the last failed switch
        self._retired = (0, 0)  # completed and cancelled requests of models freed
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._current.engine.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping.set()
            engines = [self._loading_engine, self._current.engine]
            if self._old is not None:
                engines.append(self._old.engine)
            thread = self._thread
        for engine in engines:
            if engine is not None:
                engine.stop()
        if thread is not None:
            thread.join()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """The served model is loaded (at start: the first one)."""
        return self._current.engine.wait_ready(timeout)

    # --- which model ------------------------------------------------------------------------

    def served(self) -> ModelEntry:
        return self._current.entry

    def state(self) -> SwitchState:
        with self._lock:
            old = self._old
            return SwitchState(
                served=self._current.entry,
                loading=self._loading,
                replaced=old.entry if old is not None else None,
                finishing=old.engine.info().pending if old is not None else 0,
                failed=self._failed[0] if self._failed else None,
                error=self._failed[1] if self._failed else None,
            )

    def resolve(self, requested: str | None) -> str:
        """The served model's id for a request's `model`: the id itself, `default` or none;
        any other name is ModelNotFound (a typo must not get another model's answer)."""
        served = self._current.id
        if requested is None or requested in (DEFAULT, served):
            return served
        raise _not_found(requested, served)

    def switch(self, entry: ModelEntry, on_served: Callable[[], None]) -> bool:
        """Start loading `entry` in the background; `on_served` runs once it serves. False
        when it is served already. Conflict while another switch is under way."""
        if entry.info is None or entry.error is not None:
            raise ModelError(entry.error or f"{entry.path} cannot be read")
        with self._lock:
            if self._stopping.is_set():
                raise ModelError("the server is shutting down")
            if entry.info.id == self._current.id:
                return False
            if self._loading is not None:
                raise Conflict(f"{self._loading.name} is loading; wait until it serves or fails")
            if self._old is not None:
                raise Conflict(
                    f"{self._old.entry.name} is still finishing "
                    f"{self._old.engine.info().pending} requests; switch again once it is freed"
                    if self._old_open
                    else f"{self._old.entry.name} is being freed; switch again in a moment"
                )
            self._loading, self._failed = entry, None
            self._thread = threading.Thread(
                target=self._load, args=(entry, on_served), name="llm-switch", daemon=True
            )
            self._thread.start()
        return True

    def failed(self, entry: ModelEntry, error: str) -> None:
        """Say that a switch to `entry` was refused before it loaded (the page shows it)."""
        with self._lock:
            self._failed = (entry.name, error)

    # --- the Engine protocol ---------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> Generation:
        with self._lock:  # the engine chosen cannot be freed before it has the request
            engine = self._engine_for(request.model)
            return engine.submit(request)

    def cancel(self, generation_id: str) -> None:
        for loaded in (self._current, self._old):  # ids are unique across engines
            if loaded is not None:
                loaded.engine.cancel(generation_id)

    def info(self) -> EngineInfo:
        """The served model's state; the counts include an old model's last requests."""
        with self._lock:
            info, old, loading = self._current.engine.info(), self._old, self._loading
            completed, cancelled = self._retired
        if old is not None:
            before = old.engine.info()
            completed, cancelled = completed + before.completed, cancelled + before.cancelled
            info = msgspec.structs.replace(
                info,
                queued=info.queued + before.queued,
                pending=info.pending + before.pending,
                busy=info.busy or before.busy,
            )
        return msgspec.structs.replace(
            info,
            completed=info.completed + completed,
            cancelled=info.cancelled + cancelled,
            loading=loading.info.id if loading is not None and loading.info else None,
        )

    def count_tokens(self, messages: tuple[ChatMessage, ...]) -> int:
        return self._current.engine.count_tokens(messages)

    def context_size(self) -> int:
        return self._current.engine.context_size()

    def _engine_for(self, model: str | None) -> ServingEngine:
        """A request pinned to the model it was told it gets is answered by it: also the old
        one, if it was resolved before the swap and the old one is still finishing."""
        if model is None or model == self._current.id:
            return self._current.engine
        if self._old is not None and self._old_open and model == self._old.id:
            return self._old.engine
        raise _not_found(model, self._current.id)

    # --- the switch's thread ----------------------------------------------------------------

    def _load(self, entry: ModelEntry, on_served: Callable[[], None]) -> None:
        assert entry.info is not None  # noqa: S101 - checked by switch()
        log.info("loading model %s to replace %s", entry.info.id, self._current.id)
        try:
            engine = self._make(entry.info)
        except Exception as exc:
            self._give_up(entry, None, f"the model failed to load: {exc}")
            return
        with self._lock:
            if self._stopping.is_set():
                return
            self._loading_engine = engine
            engine.start()
        engine.wait_loaded()
        if (error := engine.info().load_error) is not None or self._stopping.is_set():
            self._give_up(entry, engine, error)
            return
        with self._lock:
            if self._stopping.is_set():  # stop() has stopped this engine too
                return
            old, self._current = self._current, _Loaded(entry, engine)
            self._old, self._old_open = old, True
            self._loading, self._loading_engine = None, None
        log.info("now serving %s; %s is freed once its requests end", entry.info.id, old.id)
        try:
            on_served()
        except Exception:
            log.exception("model %s serves, but the choice was not kept", entry.info.id)
        self._free(old)

    def _give_up(self, entry: ModelEntry, engine: ServingEngine | None, error: str | None) -> None:
        with self._lock:
            self._loading, self._loading_engine = None, None
            if error is not None and not self._stopping.is_set():
                self._failed = (entry.name, error)
        if engine is not None:
            engine.stop()  # what it loaded is freed; its thread ends
        if error is not None:
            log.error("switching to %s failed; %s serves: %s", entry.name, self._current.id, error)

    def _free(self, old: _Loaded) -> None:
        """Once the old model's last request has ended, stop its engine (its memory is freed)."""
        while not self._stopping.wait(_DRAIN_POLL_S):
            with self._lock:  # submit() holds it too: nothing reaches the old engine after this
                if old.engine.info().pending == 0:
                    self._old_open = False
                    break
        else:  # the server stops meanwhile: stop() stops the old engine with the others
            return
        old.engine.stop()
        with self._lock:
            info = old.engine.info()
            self._old = None
            done, gone = self._retired
            self._retired = (done + info.completed, gone + info.cancelled)
        log.info("model %s freed", old.id)


def _not_found(requested: str, served: str) -> ModelNotFound:
    return ModelNotFound(
        f"the model {requested!r} is not served here: use {served!r} (the model served) or "
        f"{DEFAULT!r}"
    )
