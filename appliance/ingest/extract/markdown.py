"""Markdown: top-level blocks as their source text, under the trail of headings above them."""

from __future__ import annotations

from collections.abc import Iterator

from markdown_it import MarkdownIt
from markdown_it.token import Token

from appliance.ingest.extract.blocks import HeadingTrail, unify_newlines
from appliance.ingest.extract.text import decode
from appliance.ingest.types import Block, Extracted

_FRONT_MATTER_ENDS = ("---", "...")


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
    for index, token in enumerate(tokens):
        if token.level != 0 or token.map is None or token.nesting < 0 or token.type == "hr":
            continue
        if token.type == "heading_open":
            title = tokens[index + 1].content  # the heading's inline token, without # or ===
            trail.enter(int(token.tag[1:]), title)
            yield Block(title, heading=trail.text)
        else:
            start, end = token.map
            yield Block("\n".join(lines[start:end]), heading=trail.text)
