"""Turning a stream of token bytes into text: whole UTF-8 characters, cut at stop strings."""

from __future__ import annotations

import codecs
from collections.abc import Sequence


class StopScanner:
    """Decodes token pieces and holds back text that may be the start of a stop string.

    `feed` returns the text that is safe to show now; once a stop string appears, `stopped`
    turns true and nothing from the stop string on is ever returned.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self.stopped = False

    def feed(self, piece: bytes) -> str:
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(piece)
        if not self._stops:
            return self._take(len(self._pending))
        cut = min((i for i in (self._pending.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            text = self._pending[:cut]
            self._pending = ""
            return text
        return self._take(len(self._pending) - self._held_back())

    def flush(self) -> str:
        """The text still held back, once generation has ended without a stop string."""
        if self.stopped:
            return ""
        self._pending += self._decoder.decode(b"", final=True)
        return self._take(len(self._pending))

    def _held_back(self) -> int:
        """Length of the longest tail of pending text that starts some stop string."""
        pending = self._pending
        longest = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(pending)), longest, -1):
                if pending.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def _take(self, n: int) -> str:
        text, self._pending = self._pending[:n], self._pending[n:]
        return text
