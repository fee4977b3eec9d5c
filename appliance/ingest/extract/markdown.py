"""Markdown: top-level blocks as their source text, under the trail of headings above them."""

from __future__ import annotations

import re
from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token

from appliance.errors import ExtractError
from appliance.ingest.extract import webpage
from appliance.ingest.extract.blocks import HeadingTrail, unify_newlines
from appliance.ingest.extract.text import decode
from appliance.ingest.types import Block, Extracted

_FRONT_MATTER_ENDS = ("---", "...")
# What a rendered page does not show: HTML comments and hidden elements, in HTML blocks or
# inline; a planted instruction there would reach the model unseen.
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_MAY_HIDE = re.compile(r"hidden|style|dialog", re.I)  # worth parsing the tag to know
_CODE = frozenset({"fence", "code_block"})


def read(data: bytes) -> Extracted:
    """Each top-level block (paragraph, list, code, quote) keeps its source lines."""
    lines = _blank_front_matter(unify_newlines(decode(data)).split("\n"))
    tokens = MarkdownIt("commonmark").parse("\n".join(lines))
    return Extracted(list(_blocks(tokens, lines)))


def _blank_front_matter(lines: list[str]) -> list[str]:
    """Blank a leading YAML block (keeping line numbers), or it would read as a heading."""
    if lines[0].rstrip() != "---":
        return lines
    end = next(
        (i for i, line in enumerate(lines[1:], 1) if line.rstrip() in _FRONT_MATTER_ENDS), None
    )
    return lines if end is None else [""] * (end + 1) + lines[end + 1 :]


def _blocks(tokens: list[Token], lines: list[str]) -> Iterator[Block]:
    trail = HeadingTrail()
    hiding: _Open | None = None  # an HTML element that hides, opened in an earlier block
    for index, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting < 0 or token.type == "hr":
            continue
        if hiding is not None:  # what it holds is skipped, up to the block that closes it
            if token.type == "html_block" and hiding.closed_by(token.content):
                hiding = None
            continue
        if token.type == "heading_open":
            title = tokens[index + 1].content  # the heading's inline token, without # or ===
            trail.enter(int(token.tag[1:]), title)
            yield Block(title, heading=trail.text)
        elif token.type == "html_block":
            yield from (Block(b.text, heading=trail.text) for b in _html(token.content))
            hiding = _Open.hiding(token.content)
        else:
            start, end = token.map
            text = "\n".join(lines[start:end])
            if token.type not in _CODE:
                text = _without_hidden(_COMMENT.sub("", text))
            if text.strip():
                yield Block(text, heading=trail.text)


def _without_hidden(text: str) -> str:
    """`text` less the inline HTML elements that hide what they hold, each up to its close
    (or the end of the block)."""
    kept, pos = [], 0
    while start := webpage.START_TAG.search(text, pos):
        name = webpage.opening_hidden(start[0]) if _MAY_HIDE.search(start[0]) else None
        if name is None:
            kept.append(text[pos : start.end()])
            pos = start.end()
            continue
        kept.append(text[pos : start.start()])
        pos = _close(text, name, start.end())
    return "".join(kept) + text[pos:]


def _close(text: str, name: str, pos: int) -> int:
    """Where the element `name` opened before `pos` ends, counting those nested in it."""
    depth = 1
    for tag in re.finditer(rf"<(/?){name}\b[^>]*>", text[pos:], re.I):
        depth += -1 if tag[1] else 1
        if depth == 0:
            return pos + tag.end()
    return len(text)


def _html(markup: str) -> list[Block]:
    """The text a reader sees of an HTML block (none for a comment or a hidden element)."""
    try:
        return webpage.read(markup.encode()).blocks
    except ExtractError:  # nothing visible
        return []


class _Open:
    """An element opened by an HTML block and left open (`<div hidden>`, a blank line, then
    Markdown): Markdown parses its content as blocks of their own, a browser hides them."""

    def __init__(self, name: str, depth: int) -> None:
        self._opens = re.compile(rf"<{name}\b", re.I)
        self._closes = re.compile(rf"</{name}\b", re.I)
        self._depth = depth

    @classmethod
    def hiding(cls, markup: str) -> _Open | None:
        name = webpage.opening_hidden(markup)
        if name is None:
            return None
        open_ = cls(name, 0)
        return None if open_.closed_by(markup) else open_

    def closed_by(self, markup: str) -> bool:
        self._depth += len(self._opens.findall(markup)) - len(self._closes.findall(markup))
        return self._depth <= 0
