"""Word .docx: a zip-bomb check, then paragraphs and table rows under their heading trail."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import docx
from docx.document import Document
from docx.oxml.ns import qn
from docx.oxml.text.paragraph import CT_P
from docx.oxml.text.run import CT_R
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from appliance.errors import ExtractError
from appliance.ingest.extract.blocks import HeadingTrail
from appliance.ingest.types import Block, Extracted, Limits

NOT_ZIP = "not a valid .docx (not a zip archive); save it again from Word"
_HEADING = re.compile(r"Heading ([1-9])")
_RATIO_CHECKED_ABOVE = 1024 * 1024  # small XML parts compress very well and are harmless


def read(data: bytes, limits: Limits) -> Extracted:
    """Paragraphs and table rows (cells joined by " | ") in document order."""
    _check_archive(data, limits)
    return Extracted(list(_blocks(docx.Document(io.BytesIO(data)))))


def _check_archive(data: bytes, limits: Limits) -> None:
    """Refuse a zip that would unpack past the limits, before anything inflates it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise ExtractError(NOT_ZIP) from exc
    if sum(member.file_size for member in members) > limits.max_unpacked_bytes:
        size = f"{limits.max_unpacked_bytes / 2**20:g} MB"
        raise ExtractError(f"the .docx unpacks to more than {size} (a zip bomb?); it was not read")
    if any(_ratio(member) > limits.max_ratio for member in members):
        raise ExtractError(
            f"a part of the .docx unpacks to more than {limits.max_ratio} times its packed size "
            "(a zip bomb?); it was not read"
        )


def _ratio(member: zipfile.ZipInfo) -> float:
    if member.file_size <= _RATIO_CHECKED_ABOVE:
        return 0
    return member.file_size / max(member.compress_size, 1)


def _blocks(document: Document) -> Iterator[Block]:
    # Hidden text (w:vanish) is not shown to a reader; most files have none, so the plain
    # python-docx text is used unless the body holds some.
    text = _shown if next(document.element.body.iter(qn("w:vanish")), None) is not None else None
    trail = HeadingTrail()
    levels: dict[str | None, int | None] = {}  # by style id: python-docx's lookup is slow
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            yield from (Block(row, heading=trail.text) for row in _rows(item, text))
            continue
        style_id = item._p.style  # the style id, read without python-docx's lookup
        if style_id not in levels:
            levels[style_id] = _heading_level(item)
        shown = item.text if text is None else text(item._p)
        if (level := levels[style_id]) is not None:
            trail.enter(level, shown)
        yield Block(shown, heading=trail.text)


def _heading_level(paragraph: Paragraph) -> int | None:
    """0 for "Title", 1..9 for "Heading 1".."Heading 9", None for body text."""
    name = paragraph.style.name if paragraph.style is not None else None
    if name == "Title":
        return 0
    match = _HEADING.fullmatch(name or "")
    return int(match[1]) if match else None


def _rows(table: Table, text: Callable[[CT_P], str] | None) -> Iterator[str]:
    for row in table.rows:
        # A cell spanning several grid columns comes back once per column: keep it once.
        cells = row.cells
        unique = [cell for i, cell in enumerate(cells) if i == 0 or cell is not cells[i - 1]]
        texts = (_cell_text(cell, text).strip() for cell in unique)
        yield " | ".join(shown for shown in texts if shown)


def _cell_text(cell: _Cell, text: Callable[[CT_P], str] | None) -> str:
    return cell.text if text is None else "\n".join(text(p._p) for p in cell.paragraphs)


def _shown(paragraph: CT_P) -> str:
    """The paragraph's text less its runs marked hidden (w:vanish), as python-docx reads it:
    runs, and runs within hyperlinks."""
    runs = paragraph.xpath("w:r | w:hyperlink/w:r")
    return "".join(run.text for run in runs if not _vanished(run))


def _vanished(run: CT_R) -> bool:
    vanish: Any = None if run.rPr is None else run.rPr.vanish  # python-docx types it loosely
    return vanish is not None and bool(vanish.val)
