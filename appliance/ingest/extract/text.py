"""Plain text: decoding bytes of unknown encoding, refusing binary data, paragraphs."""

from __future__ import annotations

import codecs
import re

from charset_normalizer import from_bytes

from appliance.errors import ExtractError
from appliance.ingest.extract.blocks import paragraphs
from appliance.ingest.types import Block, Extracted

EMPTY = "the file is empty"
BINARY = "not text: it looks like binary data (a text file should hold text)"

# UTF-32 first: its little-endian mark begins with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Unicode category Cc, less tab, line feed, carriage return and form feed.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_MAX_CONTROL_SHARE = 0.05


def read(data: bytes) -> Extracted:
    """The text split into paragraphs on blank lines."""
    return Extracted([Block(paragraph) for paragraph in paragraphs(decode(data))])


def decode(data: bytes) -> str:
    """The bytes as text: by byte order mark, else UTF-8, else the likeliest encoding."""
    return check_text(_decode(data))


def check_text(text: str) -> str:
    """The decoded text, unless it is blank or has the control characters of binary data."""
    if not text.strip():
        raise ExtractError(EMPTY)
    if len(_CONTROL.findall(text)) > _MAX_CONTROL_SHARE * len(text):
        raise ExtractError(BINARY)
    return text


def _decode(data: bytes) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if b"\0" in data:  # only UTF-16/32 text holds NUL bytes, and that came with a mark
        raise ExtractError(BINARY)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return _guess(data)


def _guess(data: bytes) -> str:
    """Windows-1252 if it reads cleanly, else the likeliest guess, Windows code pages first."""
    # On short text the detector ranks sibling code pages (cp1250, mac_iceland, mac_cyrillic)
    # as high as the right one, garbling the accents; office files mostly come from Windows.
    western = from_bytes(data, cp_isolation=["cp1252"]).best()
    if western is not None:
        return str(western)
    matches = list(from_bytes(data))
    if not matches:
        raise ExtractError(BINARY)
    windows = [m for m in matches if m.encoding.startswith("cp125") and m.chaos <= matches[0].chaos]
    return str((windows or matches)[0])
