"""Text out of documents: one reader per file type behind extract(), and the types it reads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePath
from typing import NamedTuple

import msgspec

from appliance.errors import ExtractError
from appliance.ingest.extract import markdown, pdf, tabular, text, webpage, word
from appliance.ingest.extract.blocks import clean
from appliance.ingest.types import Extracted, Limits

__all__ = ["SUPPORTED", "extract"]

NO_TEXT = "no text found in the file"


class _Format(NamedTuple):
    read: Callable[[bytes, Limits], Extracted]
    unreadable: str  # said when the parsing library fails on the file
    no_text: str = NO_TEXT


_PLAIN = _Format(lambda data, _: text.read(data), "not a readable text file")
_MARKDOWN = _Format(lambda data, _: markdown.read(data), "not a readable Markdown file")
_HTML = _Format(lambda data, _: webpage.read(data), "not a readable HTML page")
_FORMATS: dict[str, _Format] = {
    ".pdf": _Format(
        lambda data, _: pdf.read(data),
        "not a readable PDF (damaged or not a PDF at all)",
        "no text found (a scanned PDF? text recognition (OCR) is not supported)",
    ),
    ".docx": _Format(
        word.read, "not a readable .docx (damaged, or not a Word document); save it again from Word"
    ),
    ".md": _MARKDOWN,
    ".markdown": _MARKDOWN,
    ".html": _HTML,
    ".htm": _HTML,
    ".txt": _PLAIN,
    ".text": _PLAIN,
    ".csv": _Format(
        lambda data, _: tabular.read(data),
        "not a readable CSV file",
        "no data rows found (the CSV has at most a header row)",
    ),
}

SUPPORTED: frozenset[str] = frozenset(_FORMATS)


def extract(name: str, data: bytes, limits: Limits) -> Extracted:
    """The text blocks of file `name` (only its extension counts) whose content is `data`.

    Raises ExtractError, with a message for a person, when the file cannot be read.
    """
    form = _FORMATS.get(PurePath(name).suffix.lower())
    if form is None:
        raise ValueError(f"no extractor for {name!r}; check SUPPORTED first")
    if not data.strip():
        raise ExtractError(text.EMPTY)
    extracted = _read(form, data, limits)
    blocks = [msgspec.structs.replace(b, text=t) for b in extracted.blocks if (t := clean(b.text))]
    if not blocks:
        raise ExtractError(form.no_text)
    return Extracted(blocks, pages=extracted.pages)


def _read(form: _Format, data: bytes, limits: Limits) -> Extracted:
    try:
        return form.read(data, limits)
    except (ExtractError, MemoryError):
        raise
    except Exception as exc:  # a parser failing on a hostile file is the file's fault
        raise ExtractError(form.unreadable) from exc
