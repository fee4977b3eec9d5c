"""Chunking: blocks packed into chunks of at most N embedding tokens, never across a page or
heading, with an overlap inside a section."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from itertools import groupby

import msgspec

from appliance.ingest.types import Block

Spans = list[tuple[int, int]]  # character (start, end) of each token


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

    def __init__(self, spans: Callable[[str], Spans], size: int, overlap: int) -> None:
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
            texts = [b.text for b in section]
            if heading and all(t.strip() == heading.rsplit(" > ", 1)[-1] for t in texts):
                continue  # only the heading line itself: a chunk that would answer nothing
            for text, tokens in self._pack(texts):
                out.append(Chunk(text, page, heading, tokens))
        return out

    def _pack(self, texts: list[str]) -> Iterator[tuple[str, int]]:
        """Whole paragraphs while they fit; a paragraph too long alone is cut in windows.
        Each paragraph is tokenized once; a chunk's tokens are its paragraphs' tokens."""
        current: list[str] = []
        used = 0
        last: Spans = []
        for piece, spans in self._pieces(texts):
            if current and used + len(spans) > self._size:
                yield "\n\n".join(current), used
                tail, tail_spans = self._tail(current[-1], last)
                fits = tail and len(tail_spans) + len(spans) <= self._size
                current, used = ([tail], len(tail_spans)) if fits else ([], 0)
            current.append(piece)
            used += len(spans)
            last = spans
        if current:
            yield "\n\n".join(current), used

    def _pieces(self, texts: list[str]) -> Iterator[tuple[str, Spans]]:
        for text in texts:
            spans = self._spans(text)
            if len(spans) <= self._size:
                yield text, spans
            else:
                yield from self._windows(text, spans)

    def _windows(self, text: str, spans: Spans) -> Iterator[tuple[str, Spans]]:
        """Windows of `size` tokens, stepping `size - overlap`, cut between words."""
        start = 0
        while start < len(spans):
            end = min(start + self._size, len(spans))
            if end < len(spans):
                end = _word_boundary(spans, start, end)
            yield _cut(text, spans, start, end)
            if end == len(spans):
                return
            start = max(end - self._overlap, start + 1)
            while start < end and spans[start][0] == spans[start - 1][1]:
                start += 1  # don't start inside a word (a "##piece" glued to the previous)

    def _tail(self, text: str, spans: Spans) -> tuple[str, Spans]:
        """The last `overlap` tokens of a paragraph, from a word start, to open the next chunk."""
        if not self._overlap or not spans:
            return "", []
        start = max(len(spans) - self._overlap, 0)
        while 0 < start < len(spans) and spans[start][0] == spans[start - 1][1]:
            start += 1
        if start >= len(spans):
            return "", []
        return _cut(text, spans, start, len(spans))


def _cut(text: str, spans: Spans, start: int, end: int) -> tuple[str, Spans]:
    """Tokens start..end of `text`, with their spans made relative to the piece."""
    offset = spans[start][0]
    return text[offset : spans[end - 1][1]], [(a - offset, b - offset) for a, b in spans[start:end]]


def _word_boundary(spans: Spans, start: int, end: int) -> int:
    """The largest cut ≤ `end` (and > `start`) that falls between two words, else `end`."""
    for cut in range(end, start, -1):
        if cut >= len(spans) or spans[cut][0] > spans[cut - 1][1]:
            return cut
    return end
