"""Sample documents built in code (PDF, encrypted PDF, DOCX, zip bomb, junk) for ingest tests."""

from __future__ import annotations

import io
import random
import zipfile
import zlib

import docx
from pypdf import PdfReader, PdfWriter

TableRows = list[list[str]]


def _pdf_string(line: str) -> bytes:
    """A PDF literal string: ( ) and \\ escaped, in cp1252 (what WinAnsiEncoding is, nearly)."""
    escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("cp1252") + b")"


def _content_stream(text: str) -> bytes:
    """Draw each line of `text` with 14pt leading from the top-left margin."""
    shows = b" T* ".join(_pdf_string(line) + b" Tj" for line in text.split("\n"))
    return b"BT /F1 12 Tf 72 720 Td 14 TL " + shows + b" ET"


def _pdf_objects(pages: list[str]) -> list[bytes]:
    """Catalog, page tree, font, then a page and its content stream per page (objects 1..n)."""
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        stream = _content_stream(text)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return objects


def pdf_bytes(pages: list[str]) -> bytes:
    """A minimal valid PDF, one page per string; "\\n" starts a new line on the page."""
    return _pdf_file(_pdf_objects(pages))


def pdf_bomb(unpacked_bytes: int) -> bytes:
    """A one-page PDF whose content stream, FlateDecode, inflates to `unpacked_bytes` of text
    operators (a few MB on disk)."""
    packer = zlib.compressobj(9)
    line = b"T* (All work and no play) Tj\n"  # a line each: text, not glyphs drawn over each other
    block = line * (2**20 // len(line))
    packed = [packer.compress(b"BT /F1 12 Tf 72 720 Td 14 TL\n")]
    packed += [packer.compress(block) for _ in range(unpacked_bytes // len(block))]
    stream = b"".join([*packed, packer.compress(b"ET"), packer.flush()])
    objects = _pdf_objects(["x"])[:4]
    objects.append(
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"
    )
    return _pdf_file(objects)


def _pdf_file(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(offsets) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def encrypted_pdf_bytes(pages: list[str], password: str = "secret") -> bytes:  # noqa: S107
    """The same PDF, encrypted with a user password (RC4-128: needs no crypto package)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes(pages))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_bytes(items: list[tuple[str, str]], tables: list[TableRows] | None = None) -> bytes:
    """A .docx of (style, text) paragraphs ("Title", "Heading 1", "Normal", ...), then tables."""
    document = docx.Document()
    for style, text in items:
        document.add_paragraph(text, style=style)
    for rows in tables or []:
        table = document.add_table(rows=len(rows), cols=max(len(row) for row in rows))
        for row, values in zip(table.rows, rows, strict=False):
            for cell, value in zip(row.cells, values, strict=False):
                cell.text = value
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def zip_bomb_docx(unpacked_bytes: int) -> bytes:
    """A zip shaped like a .docx whose word/document.xml inflates to `unpacked_bytes` of zeros."""
    out = io.BytesIO()
    chunk = b"\0" * (1024 * 1024)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            for start in range(0, unpacked_bytes, len(chunk)):
                member.write(chunk[: unpacked_bytes - start])
    return out.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A plain zip archive holding `members` (name → content)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


def junk_bytes(n: int, seed: int = 0) -> bytes:
    """`n` reproducible random bytes: no text format should accept them."""
    return random.Random(seed).randbytes(n)  # noqa: S311 - test data, not a secret
