"""The Models page's use case: the models on offer with what their headers say, which one is
served, and serving another without a restart (checked first, loaded in the background, kept in
appliance.db so that it is served again after a restart, audited)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec

from appliance.config import LlmSettings
from appliance.errors import Conflict, ModelError, NotFound
from appliance.llm.gguf import ModelInfo, read_header, read_model_info
from appliance.llm.models import ModelEntry, load_model_info, offered
from appliance.llm.switch import ModelSwitch
from appliance.ops.doctor import size
from appliance.ops.doctor.model import kv_cache_bytes, ram_available
from appliance.store.audit import AuditLog
from appliance.store.settings import SERVED_MODEL, SettingStore

log = logging.getLogger(__name__)

_HEADERS_KEPT = 64


class Choice(msgspec.Struct, frozen=True, kw_only=True):
    """The model an admin chose on the Models page, kept across restarts."""

    name: str
    by: str
    at: float


class ModelsView(msgspec.Struct, frozen=True, kw_only=True):
    """GET /api/models: every model on offer and the serving state."""

    models: list[ModelEntry]  # `name`: the file name that PUT /api/models/served takes
    served: str  # the file name of the model served
    served_id: str  # its id: the OpenAI API's `model` (GET /v1/models)
    loading: str | None  # the file being loaded to replace it
    replaced: str | None  # the file of the model replaced, while it is still loaded
    finishing: int  # requests it still answers before it is freed
    failed: str | None  # the file whose switch failed last; the served model stayed
    error: str | None  # why it failed
    chosen: Choice | None  # None: the model `llm.model` names is served
    models_dir: str


class Headers:
    """Headers already read, by the file's identity on disk: the page asks for the list every
    few seconds while a model loads, and a header with a big vocabulary takes milliseconds."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, int, int, int], ModelInfo | ModelError] = {}
        self._lock = threading.Lock()

    def read(self, path: Path) -> ModelInfo:
        try:
            stat = path.stat()
        except OSError:
            return read_model_info(path)  # which says what is wrong with the path
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            found = self._kept.get(key)
        if found is None:
            try:
                found = read_model_info(path)
            except ModelError as exc:
                found = exc
            with self._lock:
                if len(self._kept) >= _HEADERS_KEPT:
                    self._kept.clear()
                self._kept[key] = found
        if isinstance(found, ModelError):
            raise found
        return found


class Models:
    def __init__(
        self,
        switch: ModelSwitch,
        llm: LlmSettings,
        store: SettingStore,
        audit: AuditLog,
        ram: Callable[[], int] = lambda: ram_available()[0],
        headers: Headers | None = None,
    ) -> None:
        """`ram`: the bytes of memory available now (within the cgroup's limit)."""
        self._switch, self._llm, self._store, self._audit = switch, llm, store, audit
        self._ram = ram
        self._headers = headers or Headers()

    def view(self) -> ModelsView:
        """The list and the state (reads the headers: on a thread)."""
        state = self._switch.state()
        stored = self._store.get(SERVED_MODEL)
        return ModelsView(
            models=offered(self._llm, self._headers.read),
            served=state.served.name,
            served_id=self.served_id(),
            loading=state.loading.name if state.loading else None,
            replaced=state.replaced.name if state.replaced else None,
            finishing=state.finishing,
            failed=state.failed,
            error=state.error,
            chosen=Choice(name=stored.value, by=stored.set_by, at=stored.set_at)
            if stored
            else None,
            models_dir=self._llm.models_dir,
        )

    def served_id(self) -> str:
        return self._switch.resolve(None)

    def resolve(self, requested: str | None) -> str:
        """The served model's id for a request's `model`, or ModelNotFound."""
        return self._switch.resolve(requested)

    def serve(self, name: str, by: str) -> tuple[ModelsView, bool]:
        """Start serving the model of file `name` (one on offer: never a path); True when it
        loads now, False when it is served already. The admin `by` is audited, and the choice
        kept once the model serves. NotFound, or Conflict saying why it cannot be served."""
        entry = next((e for e in offered(self._llm, self._headers.read) if e.name == name), None)
        if entry is None:
            raise NotFound(
                f"no model {name!r} on offer: name a file in llm.models_dir "
                f"({self._llm.models_dir}) as GET /api/models lists it"
            )
        served = self._switch.served()
        if entry.name == served.name:
            return self.view(), False
        if problem := entry.error or self._memory_problem(entry, served):
            self._switch.failed(entry, problem)
            raise Conflict(f"{entry.name} cannot be served: {problem}; {served.name} still serves")
        started = self._switch.switch(entry, on_served=lambda: self._keep(entry, by))
        if started:
            self._audit.record(by, "model.serve", entry.name, f"replacing {served.name}")
        return self.view(), started

    def _keep(self, entry: ModelEntry, by: str) -> None:
        """The choice, for the next start; choosing the model of `llm.model` goes back to it."""
        if entry.configured:
            self._store.clear(SERVED_MODEL)
        else:
            self._store.set(SERVED_MODEL, entry.name, by)

    def _memory_problem(self, entry: ModelEntry, served: ModelEntry) -> str | None:
        """Not enough memory to load `entry` beside the served model, or None. The served
        model's weights are mapped from its file: memory the kernel counts as available."""
        try:
            header = read_header(Path(entry.path))
        except ModelError as exc:  # changed since it was listed
            return str(exc)
        llm = self._llm
        on_cpu = 1 - self._offloaded(header.metadata)
        kv = kv_cache_bytes(header.metadata, llm.n_ctx * llm.parallel) or 0
        need = int((header.info.size_bytes + kv) * on_cpu)
        weights = served.info.size_bytes if served.info else 0
        available = self._ram() - int(weights * on_cpu)
        if need <= available:
            return None
        return (
            f"not enough memory to load it beside {served.name}: it needs about {size(need)} "
            f"(weights {size(header.info.size_bytes)}, KV cache {size(kv)} for {llm.parallel} "
            f"slots x {llm.n_ctx} tokens), {size(max(available, 0))} is available; free memory, "
            "lower llm.n_ctx or llm.parallel, or choose a smaller model"
        )

    def _offloaded(self, meta: dict[str, object]) -> float:
        """The share of weights and KV cache that goes to the GPU (by layers)."""
        if not self._llm.n_gpu_layers or not self._switch.info().gpu_offload_supported:
            return 0.0
        layers = int(str(meta.get(f"{meta.get('general.architecture')}.block_count", 0))) + 1
        wanted = layers if self._llm.n_gpu_layers < 0 else min(self._llm.n_gpu_layers, layers)
        return wanted / layers


def first_model(llm: LlmSettings, store: SettingStore) -> ModelEntry:
    """The model to serve at start: the one chosen on the Models page while it can be served,
    else the one `llm.model` names; ModelError when that cannot be served."""
    entries = offered(llm)
    if (stored := store.get(SERVED_MODEL)) is not None:
        chosen = next((e for e in entries if e.name == stored.value), None)
        if chosen is not None and chosen.error is None:
            by = stored.set_by
            log.info("serving %s, chosen on the Models page by %s (not llm.model)", chosen.name, by)
            return chosen
        why = chosen.error if chosen is not None else "the file is no longer on offer"
        log.warning(
            "the model chosen on the Models page, %s, cannot be served (%s); serving the one "
            "llm.model names",
            stored.value,
            why,
        )
    configured = next((e for e in entries if e.configured), None)
    if configured is None:
        load_model_info(llm)  # raises: no model configured and none bundled
        raise ModelError("no model to serve; set llm.model")
    if configured.error is not None:
        raise ModelError(configured.error)
    return configured
