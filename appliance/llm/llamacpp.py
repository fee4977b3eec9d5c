"""The llama.cpp backend: loads one GGUF through llama-cpp-python and generates from it."""

from __future__ import annotations

import ctypes
import logging
import re
import secrets
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import jinja2
import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from appliance.config import LlmSettings
from appliance.errors import InvalidRequest, ModelError
from appliance.llm.text import StopScanner
from appliance.llm.types import (
    ChatMessage,
    DoneEvent,
    Event,
    GenerationRequest,
    LoadReport,
    SamplingParams,
    TokenEvent,
)

log = logging.getLogger(__name__)

# A user-defined token that reads as a role or turn marker: <|im_start|>, [INST], <start_of_turn>.
_MARKER = re.compile(r"<\|[^\s]+\|>|\[/?[A-Z_]+\]|<[a-z_]*(?:turn|role|header|system|user|"
                     r"assistant)[a-z_]*>")
# create_chat_completion's sampling defaults, so answers follow llama-cpp-python's own.
_TOP_K, _MIN_P, _REPEAT_PENALTY = 40, 0.05, 1.0


class LlamaCppBackend:
    """Owned by the engine thread: nothing here is called from two threads at once."""

    def __init__(self, model_path: Path, model_id: str, settings: LlmSettings) -> None:
        self.model_id = model_id
        self._path = model_path
        self._settings = settings
        self._llama: Any = None
        self._format: Jinja2ChatFormatter | None = None
        self._pieces: dict[int, bytes] = {}
        self._controls: re.Pattern[str] | None = None

    def load(self) -> LoadReport:
        s = self._settings
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(self._path),
                n_ctx=s.n_ctx,
                n_threads=s.n_threads or None,
                n_threads_batch=s.n_threads_batch or s.n_threads or None,
                n_gpu_layers=s.n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"llama.cpp could not load {self._path}: {exc}") from None
        self._format = self._formatter()
        self._controls = self._control_texts()
        return self._report()

    def _control_texts(self) -> re.Pattern[str] | None:
        """The texts of the model's control tokens (`<|im_start|>`, `[INST]`...), which the
        tokenizer would turn into real role markers if a message contained them."""
        vocab = self._llama._model.vocab
        control, user = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL, llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        texts: set[str] = set()
        for i in range(llama_cpp.llama_vocab_n_tokens(vocab)):
            attr = llama_cpp.llama_vocab_get_attr(vocab, i)
            if attr & (control | user):
                text = llama_cpp.llama_vocab_get_text(vocab, i).decode("utf-8", "replace")
                # User-defined tokens are sometimes plain text (whitespace runs, HTML tags):
                # only those shaped like markers are broken; control tokens always are.
                if len(text) > 1 and not text.isspace() and (
                        attr & control or _MARKER.fullmatch(text)):
                    texts.add(text)
        if not texts:
            return None
        return re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))

    def _plain(self, text: str) -> str:
        """`text` with every control-token text broken by a zero-width space: a message (or a
        document quoted in one) cannot open a system turn or end its own."""
        if self._controls is None:
            return text
        return self._controls.sub(lambda m: m[0][0] + "\u200b" + m[0][1:], text)

    def _formatter(self) -> Jinja2ChatFormatter:
        llama = self._llama
        template = self._settings.chat_template or llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(
                f"{self._path} has no chat template in its metadata; set llm.chat_template"
            )
        model = llama._model
        eos, bos = llama.token_eos(), llama.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )

    def _report(self) -> LoadReport:
        supported = bool(llama_cpp.llama_supports_gpu_offload())
        n_layer = int(llama_cpp.llama_model_n_layer(self._llama.model))
        wanted = self._settings.n_gpu_layers
        layers = 0 if not supported else (n_layer + 1 if wanted < 0 else min(wanted, n_layer + 1))
        log.info(
            "loaded %s: %d layers, n_ctx %d; this llama.cpp build %s GPU offload; "
            "%d of %d layers on the GPU",
            self.model_id, n_layer, self._llama.n_ctx(),
            "supports" if supported else "has no", layers, n_layer + 1,
        )  # fmt: skip
        if wanted and not supported:
            log.warning("llm.n_gpu_layers=%d is ignored: this build is CPU-only", wanted)
        return LoadReport(gpu_offload_supported=supported, gpu_layers=layers)

    @property
    def n_ctx(self) -> int:
        return int(self._llama.n_ctx())

    def tokens(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        """The messages as prompt tokens, through the model's chat template (the answer's
        opening included); thread-safe: it reads the vocabulary, never the context."""
        assert self._format is not None  # noqa: S101 - load() ran first
        turns: Any = [{"role": m.role, "content": self._plain(m.content)} for m in messages]
        try:
            prompt = self._format(messages=turns).prompt
        except (jinja2.TemplateError, ValueError) as exc:
            raise InvalidRequest(
                f"the model's chat template refused these messages: {exc}", param="messages"
            ) from None
        tokens: list[int] = self._llama.tokenize(prompt.encode(), add_bos=False, special=True)
        return tokens

    def count_prompt(self, request: GenerationRequest) -> list[int]:
        """The request as prompt tokens; refused when it leaves no room for an answer."""
        tokens = self.tokens(request.messages)
        n_ctx = self.n_ctx
        if len(tokens) >= n_ctx:
            raise InvalidRequest(
                f"the conversation is {len(tokens)} tokens, the model's context is {n_ctx}; "
                "start a new conversation or raise llm.n_ctx",
                param="messages",
            )
        return tokens

    def generate(
        self, request: GenerationRequest, cancelled: Callable[[], bool]
    ) -> Iterator[Event]:
        tokens = self.count_prompt(request)
        p = request.params
        self._llama.set_seed(p.seed if p.seed is not None else secrets.randbits(31))
        if p.seed is not None and p.temperature > 0:
            # Reusing a cached prompt prefix changes logits in the last bits, and sampling
            # amplifies that: a seeded request re-evaluates its prompt so it is reproducible.
            # At temperature 0 decoding is greedy and takes nothing from the seed.
            self._llama.reset()
        done = DoneEvent(finish_reason="cancelled", prompt_tokens=len(tokens), completion_tokens=0)
        if self._prefill(tokens, cancelled):
            done = yield from self._decode(tokens, p, cancelled)
        yield done

    def _prefill(self, tokens: list[int], cancelled: Callable[[], bool]) -> bool:
        """Evaluate the prompt's full batches, stopping early when cancelled.

        llama-cpp-python evaluates a prompt in one uninterruptible call; done here batch by
        batch, a client that leaves during a long prompt frees the engine within one batch.
        `generate` then finds that prefix cached and evaluates the last, partial batch in one
        decode, as it would have (a prompt of one batch costs nothing extra here).
        """
        llama = self._llama
        cached = llama.input_ids[: llama.n_tokens].tolist()
        start = 0
        while start < min(len(cached), len(tokens) - 1) and cached[start] == tokens[start]:
            start += 1
        if start < llama.n_tokens and not llama._ctx.kv_cache_seq_rm(-1, start, -1):
            llama.reset()  # recurrent memory (Mamba, RWKV, hybrids) cannot be cut part way
            start = 0
        llama.n_tokens = start
        end = start + (len(tokens) - 1 - start) // llama.n_batch * llama.n_batch
        for i in range(start, end, llama.n_batch):
            if cancelled():
                return False
            llama.eval(tokens[i : i + llama.n_batch])
        return not cancelled()

    def _decode(
        self, tokens: list[int], p: SamplingParams, cancelled: Callable[[], bool]
    ) -> Generator[TokenEvent, None, DoneEvent]:
        budget = min(p.max_tokens, self._llama.n_ctx() - len(tokens))
        scanner = StopScanner(p.stop)
        count, reason = 0, "length"
        stream = self._llama.generate(
            tokens, top_k=_TOP_K, top_p=p.top_p, min_p=_MIN_P, temp=p.temperature,
            repeat_penalty=_REPEAT_PENALTY,
        )  # fmt: skip
        for token in stream:
            if cancelled():
                reason = "cancelled"
                break
            if llama_cpp.llama_vocab_is_eog(self._llama._model.vocab, token):
                reason = "stop"
                break
            count += 1
            if text := scanner.feed(self._piece(token)):
                yield TokenEvent(text)
            if scanner.stopped or count >= budget:
                reason = "stop" if scanner.stopped else "length"
                break
        stream.close()
        if reason != "cancelled" and (rest := scanner.flush()):
            yield TokenEvent(rest)
        return DoneEvent(finish_reason=reason, prompt_tokens=len(tokens),  # type: ignore[arg-type]
                         completion_tokens=count)  # fmt: skip

    def _piece(self, token: int) -> bytes:
        """A token's bytes, leading space kept (llama_detokenize would strip it)."""
        piece = self._pieces.get(token)
        if piece is None:
            buf = ctypes.create_string_buffer(256)
            n = llama_cpp.llama_token_to_piece(self._llama._model.vocab, token, buf, 256, 0, False)
            piece = buf.raw[: max(n, 0)]
            self._pieces[token] = piece
        return piece
