"""PDF text through pdfium: page by page, split into paragraphs on blank lines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

from appliance.errors import ExtractError
from appliance.ingest.extract.blocks import paragraphs
from appliance.ingest.types import Block, Extracted

PROTECTED = (
    "the PDF is password-protected; save a copy without a password and put that in the folder"
)
SECURITY = (
    "the PDF uses an unsupported kind of protection; "
    "save a copy without protection and put that in the folder"
)
_LINE_END_HYPHEN = "\ufffe"


def read(data: bytes) -> Extracted:
    """Every page's text, as paragraphs that know their 1-based page number."""
    with closing(_open(data)) as document:
        pages = len(document)
        blocks = [block for index in range(pages) for block in _page_blocks(document, index)]
    return Extracted(blocks, pages=pages)


def _open(data: bytes) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if exc.err_code == pdfium_c.FPDF_ERR_PASSWORD:
            raise ExtractError(PROTECTED) from exc
        if exc.err_code == pdfium_c.FPDF_ERR_SECURITY:
            raise ExtractError(SECURITY) from exc
        raise


def _page_blocks(document: pdfium.PdfDocument, index: int) -> Iterator[Block]:
    # Close each page as soon as it is read, so a long PDF holds one page at a time.
    with closing(document[index]) as page, closing(page.get_textpage()) as textpage:
        text: str = textpage.get_text_range()
    # pdfium joins a word hyphenated across a line break and marks the join with U+FFFE.
    text = text.replace(_LINE_END_HYPHEN, "")
    return (Block(paragraph, page=index + 1) for paragraph in paragraphs(text))
