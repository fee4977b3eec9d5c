"""What extractors hand to the chunker: blocks of text with the page and heading they sit under."""

from __future__ import annotations

import msgspec


class Block(msgspec.Struct, frozen=True):
    """A paragraph-sized piece of a document, in reading order."""

    text: str
    page: int | None = None  # 1-based page number, for paged formats (PDF)
    heading: str | None = None  # heading trail, e.g. "Leave > Sick leave"; None before any


class Extracted(msgspec.Struct, frozen=True):
    blocks: list[Block]
    pages: int | None = None  # page count of paged formats; None for the others


class Limits(msgspec.Struct, frozen=True):
    """Caps that keep a hostile file from exhausting memory while it is read."""

    max_unpacked_bytes: int = 200 * 1024 * 1024  # total uncompressed size of a .docx (a zip)
    max_ratio: int = 100  # uncompressed/compressed size of a .docx member beyond which it's a bomb
