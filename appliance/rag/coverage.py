"""Whether the passages found cover the question: cosine similarity alone does not tell.

A question about a fact the documents lack ("the parental leave for adoptive parents", "the
budget of CC-9900") finds passages on the same topic, often more similar than the right
passage of a covered question. What tells them apart, in order:

1. The question's codes, names and places ("CC-9900", "Oslo", "SAP") must occur in
   the passages found, as written: a passage that lacks them answers another question. A code
   with a digit that they hold ("XJ-4471") says they are about that very thing: covered.
2. A word of the question that no indexed chunk holds at all ("childcare", "adoption"), and
   that the passages do not speak to either: the question without that word is closer to the
   best passages than the question with it (by `word_gain` or more). A synonym the passages
   do speak to ("holiday" for "annual leave") brings the question closer, and passes.
3. Several words of the question that no chunk holds, and only a weak match
   (similarity below `weak_similarity`): the passages are about something else.

Each decision says why, and which terms were missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal, Protocol

import msgspec
import numpy as np

from appliance.rag.retrieve import Hit, exact_terms, holds
from appliance.store.audience import EVERYTHING, Reader
from appliance.store.keywords import STOP_WORDS
from appliance.store.vectors import Vectors

Reason = Literal["", "no_passage", "missing_terms", "unmet_word", "unknown_words"]

_WORD = re.compile(r"[^\W_]+")
# Words of a question that ask rather than say what about: no document need hold them.
_ASKING_TEXT = """
many much long often time times use used need needs get give take make way allowed able like
want know tell please does doing done there here also still just really ever
"""
_ASKING = frozenset(_ASKING_TEXT.split())
_PASSAGES = 3  # the best hits a question's terms are looked for in


class Evidence(Protocol):
    """What coverage needs of the index (the Retriever offers it)."""

    def embed(self, texts: list[str]) -> Vectors: ...
    def stored_vectors(self, chunk_ids: list[str]) -> dict[str, Vectors]: ...
    def unknown(self, words: list[str], reader: Reader = EVERYTHING) -> list[str]: ...


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    covered: bool
    reason: Reason = ""  # why not covered ("" when covered)
    missing: list[str] = msgspec.field(default_factory=list)  # terms no passage / chunk holds


COVERED = Coverage(covered=True)


class CoverageCheck:
    def __init__(self, evidence: Evidence, *, word_gain: float = 0.03,
                 unknown_words: int = 2, weak_similarity: float = 0.45) -> None:  # fmt: skip
        self._evidence = evidence
        self._gain, self._unknown, self._weak = word_gain, unknown_words, weak_similarity

    def judge(self, query: str, hits: Sequence[Hit], reader: Reader = EVERYTHING) -> Coverage:
        """Whether `hits` (best first) cover `query`, and if not, why; words are known or not
        among the documents `reader` may see (what a decline says gives nothing else away)."""
        if not hits:
            return Coverage(covered=False, reason="no_passage")
        best = hits[:_PASSAGES]
        text = " ".join(h.text for h in best)
        terms = exact_terms(query)  # its codes, names and places (not its amounts)
        absent = [t for t in terms if not holds(text, t, any_case=True)]
        if absent:
            return Coverage(covered=False, reason="missing_terms", missing=absent)
        if any(c.isdigit() for t in terms for c in t):  # the passages hold its very code
            return COVERED
        unknown = self._evidence.unknown(content_words(query), reader)
        unmet = self._unmet(query, unknown, best)
        if unmet:
            return Coverage(covered=False, reason="unmet_word", missing=unmet)
        if len(unknown) >= self._unknown and max(h.similarity for h in hits) < self._weak:
            return Coverage(covered=False, reason="unknown_words", missing=unknown)
        return COVERED

    def _unmet(self, query: str, words: list[str], hits: Sequence[Hit]) -> list[str]:
        """The `words` the passages do not speak to: leaving one out of the question brings
        the question closer to every passage, by `word_gain` or more."""
        if not words:
            return []
        stored = self._evidence.stored_vectors([h.chunk_id for h in hits])
        passages = np.stack([stored[h.chunk_id] for h in hits if h.chunk_id in stored])
        without = [_without(query, w) for w in words]
        vectors = self._evidence.embed([query, *without])
        full = passages @ vectors[0]
        return [w for w, v in zip(words, vectors[1:], strict=True)
                if float((full - passages @ v).max()) <= -self._gain]  # fmt: skip


def content_words(query: str) -> list[str]:
    """The words of `query` that say what it is about, lower case, once each."""
    words = (w.lower() for w in _WORD.findall(query))
    return list(dict.fromkeys(w for w in words if len(w) > 2 and not w.isdigit()
                              and w not in STOP_WORDS and w not in _ASKING))  # fmt: skip


def _without(query: str, word: str) -> str:
    return " ".join(re.sub(rf"(?<!\w){re.escape(word)}(?!\w)", " ", query, flags=re.I).split())
