"""Privacy: the PII policy applied at each point: what the model sees, what is stored, what the
user is shown, what documents are indexed with."""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Literal

import msgspec

from appliance.ops.metrics import Metrics
from appliance.pii.pseudonyms import Pseudonyms, Restorer
from appliance.pii.redactor import Entity, Redactor

_SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
_KEPT_MAPPINGS = 1000  # conversations whose pseudonyms are kept in memory (least recent go)


class Prepared(msgspec.Struct, frozen=True):
    """A message made ready for the model: `entities` are spans of the original text."""

    model_text: str  # what the model sees
    stored_text: str  # what is stored (always without personal data)
    entities: list[Entity]


class Span(msgspec.Struct, frozen=True):
    type: str
    start: int
    end: int


class Policy(msgspec.Struct, frozen=True):
    prompts: Literal["off", "redact", "pseudonymize"]
    documents: Literal["off", "redact"]
    output: Literal["off", "redact"]
    stored: Literal["redact"] = "redact"


class Privacy:
    def __init__(self, redactor: Redactor, policy: Policy, entity_types: Iterable[str],
                 metrics: Metrics | None = None) -> None:  # fmt: skip
        self.redactor = redactor
        self._metrics = metrics or Metrics()
        self.policy = policy
        self._mappings: OrderedDict[str, Pseudonyms] = OrderedDict()
        self._lock = threading.Lock()
        names = "|".join(re.escape(t) for t in sorted(entity_types, key=len, reverse=True))
        self._marker = re.compile(rf"<({names})(?:_\d+)?>")

    # ---- messages ---------------------------------------------------------------------------

    def prepare(self, key: str, text: str, earlier: Iterable[str] = ()) -> Prepared:
        """A user's message for the model (by the prompt policy) and for storage (always with
        placeholders, which its owner sees restored while the conversation's mapping lives).
        `earlier`: the conversation's stored texts, should its mapping be gone."""
        entities = self.redactor.analyze(text)
        self._metrics.found("prompt", (e.type for e in entities))
        masked = self.redactor.pseudonymize(text, entities, self._pseudonyms(key, earlier).assign)
        if self.policy.prompts == "off":
            return Prepared(text, masked, entities)
        if self.policy.prompts == "redact":
            return Prepared(self.redactor.redact(text, entities), masked, entities)
        return Prepared(masked, masked, entities)

    def for_model(self, key: str, stored: str) -> str:
        """An earlier, stored turn as the model sees it under the prompt policy."""
        if self.policy.prompts == "pseudonymize":
            return stored
        if self.policy.prompts == "redact":
            return self._marker.sub(lambda m: f"<{m[1]}>", stored)
        mapping = self._mappings.get(key)
        return mapping.restore(stored) if mapping else stored

    def stored(self, text: str, key: str | None = None) -> str:
        """Text as it may be stored: personal data replaced by the placeholders of the
        conversation `key`, or by its type without one. Placeholders already in it stay."""
        entities = self.redactor.analyze(text)
        if key is None:
            return self.redactor.redact(text, entities)
        mapping = self._pseudonyms(key)
        return mapping.forget_unknown(self.redactor.pseudonymize(text, entities, mapping.assign))

    def stored_answer(self, key: str, text: str) -> str:
        """An answer as stored: with output redaction on, what the model added is stored as
        its type, so a reload does not show what the live answer hid."""
        if self.policy.output == "redact":
            mapping = self._mappings.get(key)
            redacted = self.stored(text)
            return mapping.forget_unknown(redacted) if mapping else redacted
        return self.stored(text, key)

    def answer_filter(self, key: str) -> AnswerFilter:
        """Turns the model's streamed answer into what this user is shown."""
        mapping = self._mappings.get(key)
        redact = self.stored if self.policy.output == "redact" else None
        restore = Restorer(mapping) if mapping and self.policy.prompts == "pseudonymize" else None
        return AnswerFilter(redact, restore)

    def shown(self, key: str, text: str) -> tuple[str, list[Span]]:
        """Stored text as its owner sees it (placeholders put back, where still known), with
        the spans that were personal data, for the page to mark."""
        mapping = self._mappings.get(key)
        out, spans, at = [], [], 0
        for match in self._marker.finditer(text):
            value = mapping.restore(match[0]) if mapping else match[0]
            out.append(text[at : match.start()])
            start = sum(map(len, out))
            out.append(value)
            spans.append(Span(match[1], start, start + len(value)))
            at = match.end()
        out.append(text[at:])
        return "".join(out), spans

    def forget(self, key: str) -> None:
        self._mappings.pop(key, None)

    def _pseudonyms(self, key: str, earlier: Iterable[str] = ()) -> Pseudonyms:
        with self._lock:
            mapping = self._mappings.pop(key, None) or Pseudonyms(earlier)
            self._mappings[key] = mapping  # most recent last
            while len(self._mappings) > _KEPT_MAPPINGS:
                self._mappings.popitem(last=False)
            return mapping

    # ---- documents --------------------------------------------------------------------------

    def document_text(self, text: str) -> str:
        """A document's text as it is indexed, by the documents policy."""
        if self.policy.documents == "off":
            return text
        entities = self.redactor.analyze(text)
        self._metrics.found("document", (e.type for e in entities))
        return self.redactor.redact(text, entities)


class AnswerFilter:
    """Output redaction works sentence by sentence (a name can span tokens), so with it the
    answer arrives a sentence at a time; placeholders are restored as soon as they are whole."""

    def __init__(self, redact: Callable[[str], str] | None, restorer: Restorer | None) -> None:
        self._redact = redact
        self._restorer = restorer
        self._buffer = ""

    def feed(self, piece: str) -> str:
        if self._redact is not None:
            self._buffer += piece
            ends = list(_SENTENCE_END.finditer(self._buffer))
            if not ends:
                return ""
            cut = ends[-1].end()
            piece, self._buffer = self._redact(self._buffer[:cut]), self._buffer[cut:]
        return self._restorer.feed(piece) if self._restorer else piece

    def flush(self) -> str:
        rest, self._buffer = self._buffer, ""
        if self._redact is not None and rest:
            rest = self._redact(rest)
        if self._restorer is None:
            return rest
        return self._restorer.feed(rest) + self._restorer.flush()
