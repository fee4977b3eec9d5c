"""Chunking: blocks packed into chunks of at most N embedding tokens, never across a page or
heading, with an overlap inside a section."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from itertools import groupby

import msgspec

from appliance.ingest.types import Block

Spans = Callable[[str], list[tuple[int, int]]]


class Chunk(msgspec.Struct, frozen=True):
    text: str
    page: int | None
    heading: str | None
    tokens: int

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


class Chunker:
    """`spans` is the embedding model's tokenizer: sizes are in the tokens it will see."""

    def __init__(self, spans: Spans, size: int, overlap: int) -> None:
        if not 0 <= overlap < size:
            raise ValueError("overlap must be at least 0 and less than size")
        self._spans = spans
        self._size = size
        self._overlap = overlap

    @property
    def signature(self) -> str:
        """Changes whenever the same blocks would be chunked differently."""
        return f"size={self._size},overlap={self._overlap}"

    def chunks(self, blocks: list[Block]) -> list[Chunk]:
        out: list[Chunk] = []
        for (page, heading), section in groupby(blocks, key=lambda b: (b.page, b.heading)):
            for text in self._pack([b.text for b in section]):
                out.append(Chunk(text, page, heading, len(self._spans(text))))
        return out

    def _pack(self, texts: list[str]) -> Iterator[str]:
        """Whole paragraphs while they fit; a paragraph too long alone is cut in windows."""
        current: list[str] = []
        used = 0
        for piece, tokens in self._pieces(texts):
            if current and used + tokens > self._size:
                yield "\n\n".join(current)
                tail = self._tail("\n\n".join(current))
                current, used = ([tail], len(self._spans(tail))) if tail else ([], 0)
                if current and used + tokens > self._size:
                    current, used = [], 0
            current.append(piece)
            used += tokens
        if current:
            yield "\n\n".join(current)

    def _pieces(self, texts: list[str]) -> Iterator[tuple[str, int]]:
        for text in texts:
            spans = self._spans(text)
            if len(spans) <= self._size:
                yield text, len(spans)
            else:
                yield from self._windows(text, spans)

    def _windows(self, text: str, spans: list[tuple[int, int]]) -> Iterator[tuple[str, int]]:
        """Windows of `size` tokens, stepping `size - overlap`, cut between words."""
        start = 0
        while start < len(spans):
            end = min(start + self._size, len(spans))
            if end < len(spans):
                end = _word_boundary(spans, start, end)
            yield text[spans[start][0] : spans[end - 1][1]], end - start
            if end == len(spans):
                return
            start = max(end - self._overlap, start + 1)
            while start < end and spans[start][0] == spans[start - 1][1]:
                start += 1  # don't start inside a word (a "##piece" glued to the previous)

    def _tail(self, text: str) -> str:
        """The last `overlap` tokens of a chunk, starting at a word, carried into the next."""
        if not self._overlap:
            return ""
        spans = self._spans(text)
        if len(spans) <= self._overlap:
            return ""
        start = len(spans) - self._overlap
        while start < len(spans) and spans[start][0] == spans[start - 1][1]:
            start += 1
        return text[spans[start][0] :].strip() if start < len(spans) else ""


def _word_boundary(spans: list[tuple[int, int]], start: int, end: int) -> int:
    """The largest cut ≤ `end` (and > `start`) that falls between two words, else `end`."""
    for cut in range(end, start, -1):
        if cut >= len(spans) or spans[cut][0] > spans[cut - 1][1]:
            return cut
    return end
