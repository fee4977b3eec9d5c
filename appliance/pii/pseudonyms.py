"""Reversible pseudonyms: within one conversation the same value always gets the same
placeholder (`<PERSON_1>`), and placeholders are put back for the user, also mid-stream."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

_PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")
_LONGEST = 48  # no placeholder is longer; a held-back "<..." longer than this is plain text


class Pseudonyms:
    """The mapping of one conversation. It lives in memory only: never stored, never logged."""

    def __init__(self, earlier: Iterable[str] = ()) -> None:
        """`earlier`: the conversation's stored texts, whose placeholder numbers are taken
        (after a restart the values are gone, but a new value must not reuse a number)."""
        self._by_value: dict[tuple[str, str], str] = {}
        self._by_name: dict[str, str] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        for text in earlier:
            for match in _PLACEHOLDER.finditer(text):
                self._counts[match[1]] = max(self._counts.get(match[1], 0), int(match[2]))

    def assign(self, kind: str, value: str) -> str:
        key = (kind, value)
        with self._lock:
            if key not in self._by_value:
                self._counts[kind] = self._counts.get(kind, 0) + 1
                name = f"<{kind}_{self._counts[kind]}>"
                self._by_value[key] = name
                self._by_name[name] = value
            return self._by_value[key]

    def forget_unknown(self, text: str) -> str:
        """Placeholders this mapping never gave (the model made them up) become bare types,
        so they can never be restored as someone else."""
        return _PLACEHOLDER.sub(lambda m: m[0] if m[0] in self._by_name else f"<{m[1]}>", text)

    def restore(self, text: str) -> str:
        """Placeholders of this conversation replaced by what they stand for."""
        return _PLACEHOLDER.sub(lambda m: self._by_name.get(m[0], m[0]), text)

    def __len__(self) -> int:
        return len(self._by_name)


class Restorer:
    """Restores a stream piece by piece: a placeholder split over tokens is held back until
    it is complete, then shown as the value it stands for."""

    def __init__(self, pseudonyms: Pseudonyms) -> None:
        self._pseudonyms = pseudonyms
        self._held = ""

    def feed(self, piece: str) -> str:
        text = self._held + piece
        cut = text.rfind("<")
        if cut != -1 and ">" not in text[cut:] and len(text) - cut < _LONGEST:
            self._held, text = text[cut:], text[:cut]
        else:
            self._held = ""
        return self._pseudonyms.restore(text)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return self._pseudonyms.restore(text)
