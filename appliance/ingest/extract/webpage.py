"""HTML pages: the visible text, in paragraphs, under the trail of h1-h6 headings."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from bs4 import BeautifulSoup
from bs4.dammit import UnicodeDammit
from bs4.element import NavigableString, PageElement, PreformattedString, Tag

from appliance.ingest.extract.blocks import HeadingTrail
from appliance.ingest.extract.text import check_text
from appliance.ingest.types import Block, Extracted

_HIDDEN = frozenset({"head", "script", "style", "noscript", "template", "svg", "iframe"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_CELLS = frozenset({"td", "th"})
_BREAKS = _HEADINGS | {
    *("address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "details"),
    *("dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form"),
    *("header", "hr", "html", "li", "main", "nav", "ol", "p", "pre", "section", "summary"),
    *("table", "tbody", "tfoot", "thead", "tr", "ul"),
}
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*>")
# A start tag, to its ">": one inside a quoted attribute value (`title=">"`) does not end it.
# (Elsewhere a quote is a plain character, as a browser takes it; no part backtracks.)
START_TAG = re.compile(r"""<([a-zA-Z][\w-]*+)(?:[^>=]|=\s*+"[^"]*+"|=\s*+'[^']*+'|=)*+>""")
# Inline styles that hide an element from a reader. (A stylesheet's classes are not read:
# hiding by class is not caught.)
_ZERO = re.compile(r"[+-]?0*\.?0+(?:[a-z]+|%)?")
_HIDING: dict[str, Callable[[str], object]] = {
    "display": lambda value: value == "none",
    "visibility": lambda value: value in ("hidden", "collapse"),
    "font-size": _ZERO.fullmatch,
    "opacity": _ZERO.fullmatch,
}


def read(data: bytes) -> Extracted:
    """Block-level elements break paragraphs; a table row is one block, its cells " | "."""
    page = _Page()
    for node, closing in _walk(BeautifulSoup(_markup(data), "lxml")):
        if isinstance(node, Tag) and closing:
            page.close(node)
        elif isinstance(node, Tag):
            page.open(node)
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            page.text(node)  # PreformattedString: comments, doctype, CDATA, processing instructions
    page.flush()
    return Extracted(page.blocks)


def _markup(data: bytes) -> str:
    """Decoded by BOM, <meta charset> or guess; bare of what makes bs4 warn about its input."""
    markup = check_text(UnicodeDammit(data, is_html=True).unicode_markup or "")
    # An XML declaration reads as "XML parsed as HTML", and short markup with no newline as
    # a file name or URL passed by mistake: both only warnings, which our tests make errors.
    return _XML_DECLARATION.sub("", markup) + "\n"


def _walk(root: Tag) -> Iterator[tuple[PageElement, bool]]:
    """Depth-first (node, closing) events without recursion, so deep nesting cannot overflow;
    what a reader does not see is left out with all it holds."""
    stack: list[tuple[PageElement, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if isinstance(node, Tag) and (node.name in _HIDDEN or _hidden(node)):
            continue
        yield node, closing
        if isinstance(node, Tag) and not closing:
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))


def opening_hidden(markup: str) -> str | None:
    """The name of the element `markup` starts with, when it hides what it holds."""
    start = START_TAG.match(markup.lstrip())
    if start is None:
        return None
    tag = BeautifulSoup(_markup(start[0].encode()), "lxml").find(start[1].lower())
    return tag.name if isinstance(tag, Tag) and _hidden(tag) else None


def _hidden(tag: Tag) -> bool:
    """Hidden from readers: a planted instruction there would reach the model unseen. The
    `hidden` attribute (but `until-found`, shown by find in page, like a closed <details>),
    aria-hidden, a closed <dialog>, or an inline style with display:none,
    visibility:hidden, a zero font size or opacity 0."""
    attrs = tag.attrs
    if "hidden" in attrs and str(attrs["hidden"]).strip().lower() != "until-found":
        return True
    if str(attrs.get("aria-hidden", "")).strip().lower() == "true":
        return True
    if tag.name == "dialog" and "open" not in attrs:
        return True
    return any(_hides(declaration) for declaration in str(attrs.get("style", "")).split(";"))


def _hides(declaration: str) -> bool:
    name, _, value = declaration.partition(":")
    value = value.lower().replace("!important", "").strip()
    hides = _HIDING.get(name.strip().lower())
    return bool(hides and hides(value))


class _Page:
    """Collects inline text until a block boundary turns it into a Block."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._trail = HeadingTrail()
        self._parts: list[str] = []
        self._in_pre = 0

    def open(self, tag: Tag) -> None:
        if tag.name in _CELLS and any(part.strip() for part in self._parts):
            self._parts.append(" | ")
        elif tag.name in _BREAKS:
            self.flush()
        self._in_pre += tag.name == "pre"

    def close(self, tag: Tag) -> None:
        if tag.name in _HEADINGS:
            title = self._take()
            self._trail.enter(int(tag.name[1]), title)
            self.blocks.append(Block(title, heading=self._trail.text))
        elif tag.name in _BREAKS:
            self.flush()
        self._in_pre -= tag.name == "pre"

    def text(self, text: str) -> None:
        self._parts.append(text)

    def flush(self) -> None:
        text = self._take()
        if text:
            self.blocks.append(Block(text, heading=self._trail.text))

    def _take(self) -> str:
        text, self._parts = "".join(self._parts), []
        return text if self._in_pre else " ".join(text.split())
