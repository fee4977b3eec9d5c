"""Model output to HTML, safely: raw HTML escaped, unsafe schemes dropped, foreign links inert."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

# html=False escapes any tag the model writes (<script>, <img onerror=...>); markdown-it's
# validateLink refuses javascript:, vbscript:, file: and data: (except images) URLs.
# Images are off: an image URL in model output would make the browser fetch from wherever the
# model (or a document it quotes) points, which is a way for text to leave the box.
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MD.enable(["table", "strikethrough"])
_MD.disable("image")


def render(text: str, link_hosts: Collection[str] = ()) -> str:
    """`text` as HTML. A link stays clickable when it is relative (the appliance's own pages:
    the request's host is not known here, and the appliance never writes absolute links to
    itself) or its host is one of `link_hosts` (web.link_hosts); any other becomes text
    showing where it points, since a quoted document can plant a "click here" link that sends
    what the answer holds to another host."""
    return str(_MD.render(text, {"link_hosts": _hosts(link_hosts)}))


def _hosts(link_hosts: Collection[str]) -> frozenset[str]:
    return frozenset(host.lower().rstrip(".") for host in link_hosts)


class StreamedHtml:
    """An answer's HTML while it streams, in parts: joined, they are `render(text so far)`.

    A part followed by another is final, so a render parses only the last part's text: the
    last blocks, which may still change, however long the answer grows. A block is final once
    a later block starts after a blank line and that block's first line is complete: nothing
    written after can reopen it (a list, an indented code block or an open fence that goes on
    past the blank line is one block with what follows). Reference definitions are global: one
    defined in the last part, while a final part has a `[`, makes everything parse again.
    """

    def __init__(self, link_hosts: Collection[str] = ()) -> None:
        self._hosts = _hosts(link_hosts)
        self._final: list[str] = []  # the text of the final parts
        self._last = ""  # the text of the last part, still changing
        self._references: dict[str, Any] = {}  # defined in the final parts' text
        self._bracket = False  # the final parts' text could use a reference
        self.parsed = 0  # characters parsed by the last render: its work

    def add(self, text: str) -> None:
        self._last += text

    def render(self) -> list[tuple[int, str]]:
        """What changed, as (part, html): part `part` is now `html`, and those after it are
        gone; a second pair, when the last part became final, is the new last part."""
        env, tokens = self._parse()
        self.parsed = len(self._last)
        if self._bracket and env["references"].keys() - self._references.keys():
            self._last = "".join(self._final) + self._last
            self._final, self._references, self._bracket = [], {}, False
            env, tokens = self._parse()
            self.parsed += len(self._last)
        part = len(self._final)
        split = self._split(tokens, env["references"])
        if split is None:
            return [(part, _MD.renderer.render(tokens, _MD.options, env))]
        return [
            (part, _MD.renderer.render(tokens[:split], _MD.options, env)),
            (part + 1, _MD.renderer.render(tokens[split:], _MD.options, env)),
        ]

    def _parse(self) -> tuple[dict[str, Any], list[Token]]:
        env: dict[str, Any] = {"link_hosts": self._hosts, "references": dict(self._references)}
        return env, _MD.parse(self._last, env)

    def _split(self, tokens: list[Token], references: dict[str, Any]) -> int | None:
        """Moves the text before the block that makes those before it final into a final
        part, and returns that block's token index; None when no block does (nothing moves).
        A final part uses only references defined in final parts (one being written may yet
        change, or stop being one)."""
        lines = self._last.split("\n")
        found = _final_until(tokens, lines)
        if found is None:
            return None
        index, line = found
        final = "".join(f"{text}\n" for text in lines[:line])
        defined = {k: r for k, r in references.items() if k not in self._references}
        if "[" in final and any(r["map"][1] > line for r in defined.values()):
            return None
        self._final.append(final)
        self._last = self._last[len(final) :]
        self._bracket = self._bracket or "[" in final
        self._references.update((k, r) for k, r in defined.items() if r["map"][1] <= line)
        return index


def _final_until(tokens: list[Token], lines: list[str]) -> tuple[int, int] | None:
    """(token index, line) of the last top-level block that makes those before it final: it
    starts after a blank line, and its first line is complete; None if no block does. Text
    with a carriage return is not split (the parser counts it as a line break)."""
    if any("\r" in line for line in lines):
        return None
    for index in range(len(tokens) - 1, 0, -1):
        token = tokens[index]
        if token.level or token.nesting < 0 or not token.map:
            continue
        line = token.map[0]
        if 0 < line < len(lines) - 1 and not lines[line - 1].strip(" \t"):
            return index, line
    return None


def _allowed(href: str, hosts: frozenset[str]) -> bool:
    try:
        parts = urlsplit(href)
        host = parts.hostname
    except ValueError:  # a malformed address (an unclosed IPv6 bracket): not followed
        return False
    if not parts.scheme and not parts.netloc:
        return not href.startswith(("//", "\\", "/\\"))  # browsers read these as a host
    return parts.scheme.lower() in ("http", "https") and host is not None and host in hosts


def _foreign_links_as_text(state: StateCore) -> None:
    """Every link (inline, reference, autolink or linkified) to a host not allowed loses its
    <a>: its text stays, followed by the address unless the text is the address."""
    hosts: frozenset[str] = state.env.get("link_hosts", frozenset())
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        href: str | None = None  # of the open link being made text
        label = ""
        for token in block.children:
            if token.type == "link_open" and not _allowed(str(token.attrGet("href")), hosts):
                href, label = str(token.attrGet("href")), ""
                continue
            if token.type == "link_close" and href is not None:
                if label != href and token.markup not in ("autolink", "linkify"):
                    children.append(_text(f" ({href})"))
                href = None
                continue
            if href is not None and token.type == "text":
                label += token.content
            children.append(token)
        block.children = children


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


_MD.core.ruler.push("foreign_links_as_text", _foreign_links_as_text)
