"""Block assembly shared by the readers: text cleanup, paragraph splitting, the heading trail."""

from __future__ import annotations

import re

_BLANK_LINES = re.compile(r"\n\s*\n")


def unify_newlines(text: str) -> str:
    """Turn Windows and old Mac line ends into "\\n"."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def clean(text: str) -> str:
    """Strip the text and squeeze every run of blank lines into one."""
    return _BLANK_LINES.sub("\n\n", unify_newlines(text)).strip()


def paragraphs(text: str) -> list[str]:
    """Split text on blank (empty or whitespace-only) lines."""
    return _BLANK_LINES.split(unify_newlines(text))


class HeadingTrail:
    """The headings above the current position, outermost first ("Leave > Sick leave")."""

    def __init__(self) -> None:
        self._headings: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> None:
        """A heading of `level` (smaller is outer) replaces those at its level and below."""
        title = " ".join(title.split())
        if title:
            outer = [(lvl, text) for lvl, text in self._headings if lvl < level]
            self._headings = [*outer, (level, title)]

    @property
    def text(self) -> str | None:
        return " > ".join(title for _, title in self._headings) or None
