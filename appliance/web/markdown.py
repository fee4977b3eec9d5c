"""Model output to HTML, safely: raw HTML is escaped and unsafe link schemes are dropped."""

from __future__ import annotations

from markdown_it import MarkdownIt

# html=False escapes any tag the model writes (<script>, <img onerror=...>); markdown-it's
# validateLink refuses javascript:, vbscript:, file: and data: (except images) URLs.
# Images are off: an image URL in model output would make the browser fetch from wherever the
# model (or a document it quotes) points, which is a way for text to leave the box.
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
_MD.enable(["table", "strikethrough"])
_MD.disable("image")


def render(text: str) -> str:
    return str(_MD.render(text))
