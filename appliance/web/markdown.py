"""Model output to HTML, safely: raw HTML escaped, unsafe schemes dropped, foreign links inert."""

from __future__ import annotations

from collections.abc import Collection
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
    hosts = frozenset(host.lower().rstrip(".") for host in link_hosts)
    return str(_MD.render(text, {"link_hosts": hosts}))


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
