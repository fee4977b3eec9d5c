"""The llama.cpp side of the batched engine: one model, one context with a KV stream per
slot, one batch; every call into llama-cpp-python's low-level API is here. Used by the
engine thread only (the prompt format excepted, which any thread may use)."""

from __future__ import annotations

import ctypes
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import llama_cpp
from llama_cpp import _internals, _logger

from appliance.config import LlmSettings
from appliance.errors import ModelError
from appliance.llm.prompt import PromptFormat
from appliance.llm.types import LoadReport, SamplingParams

log = logging.getLogger(__name__)


def _holding_gil(fn: Any) -> Any:
    """`fn`, a short llama.cpp call, bound so that it keeps the GIL. ctypes lets the GIL go
    around every call, and getting it back waits while another thread runs Python (up to
    the switch interval): the engine then waits for the event loop at every call. Only the
    long calls (decode, states) let it go, for the other threads to run meanwhile."""
    held = getattr(ctypes.PyDLL(llama_cpp.llama_cpp._lib._name), fn.__name__)
    held.argtypes, held.restype = fn.argtypes, fn.restype
    return held


_sample = _holding_gil(llama_cpp.llama_sampler_sample)
_is_eog = _holding_gil(llama_cpp.llama_vocab_is_eog)
_token_to_piece = _holding_gil(llama_cpp.llama_token_to_piece)
_seq_rm = _holding_gil(llama_cpp.llama_memory_seq_rm)

# create_chat_completion's sampling defaults, so answers follow llama-cpp-python's own.
_TOP_K, _MIN_P = 40, 0.05


class Context:
    """Each slot has a KV stream of its own (not llama.cpp's unified cache) and attention is
    flash attention: then a sequence's logits do not depend on what else is in the batch, and
    an answer decoded beside three others is the one it would be alone (the unified cache
    changed logits by up to 1.0 on the bundled model, enough to change greedy answers)."""

    def __init__(self, path: Path, model_id: str, settings: LlmSettings) -> None:
        s = settings
        _logger.set_verbose(False)
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0x7FFFFFFF if s.n_gpu_layers < 0 else s.n_gpu_layers
        try:
            self._model: Any = _internals.LlamaModel(path_model=str(path), params=params,
                                                verbose=False)  # fmt: skip
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp could not load {path}: {exc}") from None
        self._ctx: Any = None
        self._batch: Any = None
        try:
            self._open(path, model_id, s)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path, model_id: str, s: LlmSettings) -> None:
        cpus = os.cpu_count() or 1
        self.batch_size = max(512, s.parallel + s.prefill_chunk)
        cp = llama_cpp.llama_context_default_params()
        cp.n_ctx = s.n_ctx * s.parallel  # a stream of n_ctx for each slot
        cp.n_batch = self.batch_size
        cp.n_ubatch = 512
        cp.n_seq_max = s.parallel
        cp.kv_unified = False
        cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        cp.n_threads = s.n_threads or max(cpus // 2, 1)
        cp.n_threads_batch = s.n_threads_batch or s.n_threads or cpus
        try:
            self._ctx = _internals.LlamaContext(model=self._model, params=cp, verbose=False)
        except ValueError as exc:
            raise ModelError(f"llama.cpp could not make a context for {path} "
                             f"({cp.n_ctx} tokens): {exc}; lower llm.n_ctx or llm.parallel"
                             ) from None  # fmt: skip
        self._mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = llama_cpp.llama_batch_init(self.batch_size, 0, 1)
        self.format = PromptFormat.of(self._model, s.chat_template, str(path))
        self._pieces: dict[int, bytes] = {}
        self.report = self._report(model_id, s)

    @property
    def vocab(self) -> Any:
        return self._model.vocab

    def _report(self, model_id: str, s: LlmSettings) -> LoadReport:
        supported = bool(llama_cpp.llama_supports_gpu_offload())
        n_layer = int(llama_cpp.llama_model_n_layer(self._model.model))
        wanted = s.n_gpu_layers
        layers = 0 if not supported else (n_layer + 1 if wanted < 0 else min(wanted, n_layer + 1))
        log.info(
            "loaded %s: %d layers, %d slots of %d tokens; this llama.cpp build %s GPU "
            "offload; %d of %d layers on the GPU", model_id, n_layer, s.parallel, s.n_ctx,
            "supports" if supported else "has no", layers, n_layer + 1,
        )  # fmt: skip
        if wanted and not supported:
            log.warning("llm.n_gpu_layers=%d is ignored: this build is CPU-only", wanted)
        return LoadReport(gpu_offload_supported=supported, gpu_layers=layers)

    def close(self) -> None:
        if self._batch is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None
        self._model.close()

    # --- the batch ---------------------------------------------------------------------------

    def clear_batch(self) -> None:
        self._batch.n_tokens = 0

    def add(self, seq: int, pos: int, tokens: Sequence[int], last_logits: bool) -> int:
        """Append a sequence's next tokens (from position `pos`) to the batch; the index of
        the last one's logits, or -1 when not asked for."""
        b = self._batch
        for token in tokens:
            i = b.n_tokens
            b.token[i] = token
            b.pos[i] = pos
            b.seq_id[i][0] = seq
            b.n_seq_id[i] = 1
            b.logits[i] = 0
            b.n_tokens = i + 1
            pos += 1
        if last_logits:
            b.logits[b.n_tokens - 1] = 1
            return int(b.n_tokens - 1)
        return -1

    def decode(self) -> bool:
        """Decode the batch; False when llama.cpp refused it (no room in the KV cache)."""
        return bool(llama_cpp.llama_decode(self._ctx.ctx, self._batch) == 0)

    # --- sampling ----------------------------------------------------------------------------

    def sampler(self, p: SamplingParams) -> Any:
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        if p.temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
            return chain
        # llama.cpp takes 32 bits, and 0xFFFFFFFF means "random": a seed is kept below it
        seed = p.seed % 0xFFFFFFFF if p.seed is not None else secrets.randbits(31)
        for sampler in (llama_cpp.llama_sampler_init_top_k(_TOP_K),
                        llama_cpp.llama_sampler_init_top_p(p.top_p, 1),
                        llama_cpp.llama_sampler_init_min_p(_MIN_P, 1),
                        llama_cpp.llama_sampler_init_temp(p.temperature),
                        llama_cpp.llama_sampler_init_dist(seed)):  # fmt: skip
            llama_cpp.llama_sampler_chain_add(chain, sampler)
        return chain

    def sample(self, sampler: Any, index: int) -> int:
        """The next token from the logits at `index` of the batch just decoded."""
        return int(_sample(sampler, self._ctx.ctx, index))

    def free_sampler(self, sampler: Any) -> None:
        llama_cpp.llama_sampler_free(sampler)

    def ends(self, token: int) -> bool:
        """The token ends a turn (end of generation)."""
        return bool(_is_eog(self._model.vocab, token))

    def piece(self, token: int) -> bytes:
        """A token's bytes, leading space kept (llama_detokenize would strip it)."""
        piece = self._pieces.get(token)
        if piece is None:
            size = 256
            while True:
                buf = ctypes.create_string_buffer(size)
                n = _token_to_piece(self._model.vocab, token, buf, size, 0, False)
                if n >= 0:
                    break
                size = -n  # it needs this many bytes
            piece = buf.raw[:n]
            self._pieces[token] = piece
        return piece

    # --- the KV of each sequence -------------------------------------------------------------

    def keep(self, seq: int, n: int) -> int:
        """Keep the first `n` positions of the sequence; how many it keeps (0 where memory
        cannot be cut part way: recurrent models)."""
        if _seq_rm(self._mem, seq, n, -1):
            return n
        _seq_rm(self._mem, seq, -1, -1)
        return 0

    def clear(self, seq: int) -> None:
        _seq_rm(self._mem, seq, -1, -1)

    def state(self, seq: int, most: int) -> bytes:
        """The sequence's KV as bytes (empty when over `most` bytes, or none)."""
        size = llama_cpp.llama_state_seq_get_size(self._ctx.ctx, seq)
        if not 0 < size <= most:
            return b""
        buf = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buf, size, seq)
        return memoryview(buf)[:written].tobytes()

    def restore(self, seq: int, state: bytes) -> bool:
        """Put a state read by `state` into the sequence; False (and the sequence empty)
        when it does not fit."""
        buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if llama_cpp.llama_state_seq_set_data(self._ctx.ctx, buf, len(state), seq):
            return True
        self.clear(seq)
        return False
