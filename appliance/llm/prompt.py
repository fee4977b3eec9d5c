"""Messages to prompt tokens: the chat template, control tokens broken, tokens counted.

Shared by every engine, so the prompt a model sees does not depend on which engine serves it.
Read-only after construction: any thread may call it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import jinja2
import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from appliance.errors import InvalidRequest, ModelError
from appliance.llm.types import ChatMessage

# A user-defined token that reads as a role or turn marker: <|im_start|>, [INST], <start_of_turn>.
_MARKER = re.compile(r"<\|[^\s]+\|>|\[/?[A-Z_]+\]|<[a-z_]*(?:turn|role|header|system|user|"
                     r"assistant)[a-z_]*>")
_PROBES = ("a", "b")  # two user turns that differ from their first character
_PREFIXES_KEPT = 32


class PromptFormat:
    """The model's chat template over its vocabulary (a llama_cpp `_internals.LlamaModel`)."""

    def __init__(self, model: Any, template: str, source: str) -> None:
        self._model = model
        self._controls = control_texts(model.vocab)
        eos, bos = model.token_eos(), model.token_bos()
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=model.token_get_text(eos) if eos != -1 else "",
            bos_token=model.token_get_text(bos) if bos != -1 else "",
        )
        self._source = source
        self._prefixes: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, model: Any, template: str, source: str) -> PromptFormat:
        """The format for `model`: `template`, or else the one stored in the GGUF."""
        template = template or model.metadata().get("tokenizer.chat_template", "")
        if not template:
            raise ModelError(
                f"{source} has no chat template in its metadata; set llm.chat_template"
            )
        return cls(model, template, source)

    def plain(self, text: str) -> str:
        """`text` with every control-token text broken by a zero-width space: a message (or a
        document quoted in one) cannot open a system turn or end its own."""
        if self._controls is None:
            return text
        return self._controls.sub(lambda m: m[0][0] + "\u200b" + m[0][1:], text)

    def text(self, messages: tuple[ChatMessage, ...]) -> str:
        """The prompt text, the answer's opening included."""
        turns: Any = [{"role": m.role, "content": self.plain(m.content)} for m in messages]
        try:
            return self._format(messages=turns).prompt
        except (jinja2.TemplateError, ValueError) as exc:
            raise InvalidRequest(
                f"the model's chat template refused these messages: {exc}", param="messages"
            ) from None

    def tokens(self, messages: tuple[ChatMessage, ...]) -> list[int]:
        """The messages as prompt tokens, through the model's chat template."""
        tokens: list[int] = self._model.tokenize(self.text(messages).encode(), False, True)
        return tokens

    def system_prefix(self, messages: tuple[ChatMessage, ...]) -> int:
        """How many of the prompt's first tokens depend only on its leading system messages
        (the operator's system prompt, or the one the chat template puts in when there is
        none): the part that every conversation with that system prompt shares."""
        n_system = 0
        while n_system < len(messages) and messages[n_system].role == "system":
            n_system += 1
        system = messages[:n_system]
        key = "\x00".join(m.content for m in system) + f"\x00{n_system}"
        with self._lock:
            if (known := self._prefixes.get(key)) is not None:
                self._prefixes.move_to_end(key)
                return known
        first, second = (self.tokens((*system, ChatMessage("user", p))) for p in _PROBES)
        n = common_prefix(first, second)
        with self._lock:
            self._prefixes[key] = n
            if len(self._prefixes) > _PREFIXES_KEPT:
                self._prefixes.popitem(last=False)
        return n


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many first tokens `a` and `b` share."""
    n, end = 0, min(len(a), len(b))
    while n < end and a[n] == b[n]:
        n += 1
    return n


def control_texts(vocab: Any) -> re.Pattern[str] | None:
    """The texts of the model's control tokens (`<|im_start|>`, `[INST]`...), which the
    tokenizer would turn into real role markers if a message contained them."""
    control, user = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL, llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
    texts: set[str] = set()
    for i in range(llama_cpp.llama_vocab_n_tokens(vocab)):
        attr = llama_cpp.llama_vocab_get_attr(vocab, i)
        if attr & (control | user):
            text = llama_cpp.llama_vocab_get_text(vocab, i).decode("utf-8", "replace")
            # User-defined tokens are sometimes plain text (whitespace runs, HTML tags): only
            # those shaped like markers are broken; control tokens always are.
            if len(text) > 1 and not text.isspace() and (attr & control or _MARKER.fullmatch(text)):
                texts.add(text)
    if not texts:
        return None
    return re.compile("|".join(re.escape(t) for t in sorted(texts, key=len, reverse=True)))
