"""The extractors: text, pages and heading trails out of each format; damaged files refused."""

from __future__ import annotations

import pytest

from appliance.errors import ExtractError
from appliance.ingest.extract import SUPPORTED, extract
from appliance.ingest.types import Block, Extracted, Limits
from tests.ingest import samples

LIMITS = Limits()
HANDBOOK = [
    ("Title", "Handbook"),
    ("Normal", "Welcome to the company."),
    ("Heading 1", "Leave"),
    ("Normal", "Ask your manager first."),
    ("Heading 2", "Sick leave"),
    ("Normal", "Call in before nine."),
    ("Heading 1", "Pay"),
    ("Normal", "Paid monthly."),
]
MARKDOWN = b"""---
title: Front matter is not a heading
---
# Handbook

Intro paragraph
on two lines.

Leave
-----

- ask first
- then book

### Sick leave

```sh
# not a heading
call-in --before 9
```

Pay
===
Paid monthly.
"""
HTML = b"""<!DOCTYPE html>
<html><head><title>Intranet</title><style>p { color: red }</style>
<script>var secret = "script text";</script></head>
<body><!-- a comment -->
<nav>Home</nav>
<h1>Handbook</h1>
<p>Fish &amp; chips&nbsp;on <b>Fri</b>day.</p>
<p>Second    paragraph
   spans lines.</p>
<h2>Leave</h2>
<ul><li>Ask first</li><li>Then book</li></ul>
<table><tr><th>Name</th><th>Days</th></tr><tr><td>Alice</td><td>3</td></tr></table>
<pre>keep   this
  indent</pre>
<noscript>Enable JavaScript</noscript>
</body></html>
"""
CAFE = "Café crème, naïve façade. " * 4
HALF_A_PDF = samples.pdf_bytes(["Cut short."])[: len(samples.pdf_bytes(["Cut short."])) // 2]
RUSSIAN = "Привет, мир! Это проверка кодировки.\n" * 3


def read(name: str, data: bytes, limits: Limits = LIMITS) -> Extracted:
    return extract(name, data, limits)


def texts(extracted: Extracted) -> list[str]:
    return [block.text for block in extracted.blocks]


def refused(name: str, data: bytes, limits: Limits = LIMITS) -> str:
    """The ExtractError message for a file that must not be read."""
    with pytest.raises(ExtractError) as caught:
        extract(name, data, limits)
    return str(caught.value)


def block_with(extracted: Extracted, text: str) -> Block:
    return next(block for block in extracted.blocks if text in block.text)


# --- PDF ---


def test_pdf_blocks_keep_their_page_numbers() -> None:
    pages = ["First page says café.", "Second page (with brackets).", "Third page \\ backslash."]
    extracted = read("report.pdf", samples.pdf_bytes(pages))
    assert extracted.pages == 3
    for number, text in enumerate(pages, start=1):
        block = block_with(extracted, text)
        assert (block.page, block.heading) == (number, None)


def test_pdf_splits_paragraphs_where_pdfium_reports_a_blank_line() -> None:
    # pdfium reports a blank line only where whitespace is drawn on it; an empty gap between
    # two lines of text comes back as a plain line break, so it does not split the paragraph.
    page = "First paragraph, line one.\nline two.\n  \nSecond paragraph.\n\nStill second."
    extracted = read("report.pdf", samples.pdf_bytes([page]))
    assert texts(extracted) == [
        "First paragraph, line one.\nline two.",
        "Second paragraph.\nStill second.",
    ]


def test_pdf_word_hyphenated_across_lines_is_joined() -> None:
    page = "A sentence long enough to need hyphen-\nation at the end of the line."
    assert texts(read("report.pdf", samples.pdf_bytes([page]))) == [
        "A sentence long enough to need hyphenation at the end of the line."
    ]


def test_password_protected_pdf_says_so() -> None:
    message = refused("secret.pdf", samples.encrypted_pdf_bytes(["Salaries."]))
    assert "password" in message


@pytest.mark.parametrize(
    "data",
    [
        HALF_A_PDF,
        samples.junk_bytes(4096, seed=1),
        b"%PDF-1.7\nthis is not really a PDF\n",
    ],
    ids=["truncated", "junk", "fake-header"],
)
def test_damaged_pdf_is_refused(data: bytes) -> None:
    assert "PDF" in refused("broken.pdf", data)


def test_pdf_without_text_suggests_a_scan() -> None:
    assert "OCR" in refused("scan.pdf", samples.pdf_bytes(["", ""]))


# --- Word ---


def test_docx_headings_form_a_trail() -> None:
    extracted = read("handbook.docx", samples.docx_bytes(HANDBOOK))
    assert extracted.pages is None
    assert block_with(extracted, "Welcome").heading == "Handbook"
    assert block_with(extracted, "Ask your manager").heading == "Handbook > Leave"
    assert block_with(extracted, "Call in").heading == "Handbook > Leave > Sick leave"
    assert block_with(extracted, "Paid monthly").heading == "Handbook > Pay"
    assert block_with(extracted, "Sick leave") == Block(
        "Sick leave", heading="Handbook > Leave > Sick leave"
    )


def test_docx_table_rows_become_blocks_after_the_paragraphs() -> None:
    table = [["Name", "Days", ""], ["Alice", "3", "approved"]]
    extracted = read("leave.docx", samples.docx_bytes(HANDBOOK, tables=[table]))
    assert texts(extracted)[-2:] == ["Name | Days", "Alice | 3 | approved"]
    assert extracted.blocks[-1].heading == "Handbook > Pay"


def test_docx_over_the_unpacked_limit_is_a_zip_bomb() -> None:
    small = Limits(max_unpacked_bytes=1024 * 1024)
    message = refused("bomb.docx", samples.zip_bomb_docx(5 * 1024 * 1024), small)
    assert "zip bomb" in message
    assert "1 MB" in message


def test_docx_member_packed_too_tightly_is_a_zip_bomb() -> None:
    assert "zip bomb" in refused("bomb.docx", samples.zip_bomb_docx(5 * 1024 * 1024))


def test_docx_that_is_not_a_zip_is_refused() -> None:
    assert "not a zip" in refused("letter.docx", b"Dear Sir, this is plain text.")


@pytest.mark.parametrize(
    "members",
    [
        {"notes.txt": b"hello"},
        {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<document/>"},
    ],
    ids=["no-parts", "bogus-parts"],
)
def test_zip_that_is_not_a_word_document_is_refused(members: dict[str, bytes]) -> None:
    assert "Word" in refused("letter.docx", samples.zip_bytes(members))


# --- Markdown ---


def test_markdown_headings_form_a_trail() -> None:
    extracted = read("handbook.md", MARKDOWN)
    headings = {block.text: block.heading for block in extracted.blocks}
    assert headings["Intro paragraph\non two lines."] == "Handbook"
    assert headings["Leave"] == "Handbook > Leave"  # setext level 2 under ATX level 1
    assert headings["- ask first\n- then book"] == "Handbook > Leave"
    assert headings["Sick leave"] == "Handbook > Leave > Sick leave"
    assert headings["Paid monthly."] == "Pay"  # setext level 1 closes all three


def test_markdown_code_keeps_its_source_and_makes_no_heading() -> None:
    code = block_with(read("handbook.markdown", MARKDOWN), "not a heading")
    assert code.text == "```sh\n# not a heading\ncall-in --before 9\n```"
    assert code.heading == "Handbook > Leave > Sick leave"


def test_markdown_front_matter_is_dropped() -> None:
    assert not any("Front matter" in text for text in texts(read("handbook.md", MARKDOWN)))


# --- HTML ---


def test_html_keeps_only_visible_text() -> None:
    joined = "\n".join(texts(read("page.html", HTML)))
    for hidden in ("color: red", "script text", "a comment", "Intranet", "Enable JavaScript"):
        assert hidden not in joined


def test_html_blocks_paragraphs_and_heading_trail() -> None:
    extracted = read("page.htm", HTML)
    assert texts(extracted)[:4] == [
        "Home",
        "Handbook",
        "Fish & chips on Friday.",
        "Second paragraph spans lines.",
    ]
    assert block_with(extracted, "Fish").heading == "Handbook"
    assert block_with(extracted, "Ask first") == Block("Ask first", heading="Handbook > Leave")
    assert block_with(extracted, "Alice").text == "Alice | 3"
    assert block_with(extracted, "keep").text == "keep   this\n  indent"


@pytest.mark.parametrize(
    "data",
    [
        b"faq.html",
        b"https://intranet.example/faq",
        b'<?xml version="1.0"?><feed><entry>News item</entry></feed>',
        ("<div>" * 3000 + "deep" + "</div>" * 3000).encode(),
    ],
    ids=["looks-like-a-file-name", "looks-like-a-url", "xml", "deeply-nested"],
)
def test_odd_html_is_read_without_warnings(data: bytes) -> None:
    assert texts(read("odd.html", data))


# --- plain text ---


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Plain\n\n\n\nUTF-8 é".encode(), ["Plain", "UTF-8 é"]),
        ("With a BOM é\r\n\r\nSecond".encode("utf-8-sig"), ["With a BOM é", "Second"]),
        ("UTF-16 é\n\nSecond".encode("utf-16"), ["UTF-16 é", "Second"]),
        ("UTF-32 é\n\nSecond".encode("utf-32"), ["UTF-32 é", "Second"]),
        (CAFE.encode("cp1252"), [CAFE.strip()]),
        ("Über die Größe der Straße.".encode("cp1252"), ["Über die Größe der Straße."]),
        (RUSSIAN.encode("cp1251"), [RUSSIAN.strip()]),
    ],
    ids=["utf-8", "utf-8-bom", "utf-16", "utf-32", "cp1252-french", "cp1252-german", "cp1251"],
)
def test_text_is_decoded(data: bytes, expected: list[str]) -> None:
    assert texts(read("notes.txt", data)) == expected


def test_binary_data_is_not_text() -> None:
    assert "binary" in refused("notes.txt", samples.junk_bytes(4096, seed=2))


def test_control_characters_are_not_text() -> None:
    assert "binary" in refused("notes.text", b"\x01\x02\x03\x04 mostly control \x05\x06\x07\x08")


@pytest.mark.parametrize("name", sorted(SUPPORTED))
@pytest.mark.parametrize("data", [b"", b" \r\n\t\n"], ids=["zero-bytes", "whitespace"])
def test_empty_file_says_so(name: str, data: bytes) -> None:
    assert "empty" in refused(f"file{name}", data)


def test_whitespace_in_utf16_is_empty() -> None:
    assert "empty" in refused("notes.txt", " \n\n ".encode("utf-16"))


# --- CSV ---


def test_csv_rows_name_their_values() -> None:
    data = b'name,dept,note\nAlice,HR,\n\nBob,IT,"on leave, back in May"\n'
    assert texts(read("staff.csv", data)) == [
        "name: Alice; dept: HR",
        "name: Bob; dept: IT; note: on leave, back in May",
    ]


def test_csv_ragged_rows_and_semicolons() -> None:
    data = "name;city\nAlice;Zürich;extra\nBob\n".encode("cp1252")
    assert texts(read("staff.csv", data)) == [
        "name: Alice; city: Zürich; column 3: extra",
        "name: Bob",
    ]


def test_csv_with_only_a_header_has_no_text() -> None:
    assert "no data rows" in refused("staff.csv", b"name,dept\n\n")


def test_csv_with_a_runaway_field_is_refused() -> None:
    assert "CSV" in refused("staff.csv", b'name,note\nAlice,"' + b"x" * 200_000 + b"\n")


# --- every format ---


def test_unsupported_extension_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"\.exe"):
        extract("setup.exe", b"MZ", LIMITS)


def test_extension_is_case_insensitive() -> None:
    assert read("REPORT.PDF", samples.pdf_bytes(["Shouting name."])).pages == 1


EVERY_FORMAT = {
    ".pdf": samples.pdf_bytes(["  Padded  \n \n \n \nline  ", "   "]),
    ".docx": samples.docx_bytes([("Heading 1", "  "), ("Normal", "  text  "), ("Normal", "")]),
    ".md": b"\n\n#   Title  \n\n\n   \n  para  \n\n\n\n",
    ".markdown": b"para\n\n\n\n- list\n\n\n\n  - nested\n",
    ".html": b"<p>  </p><div> a <p></p> b </div><pre>\n\n\n  x\n\n\n\n</pre>",
    ".htm": b"<h1> </h1><p>\n\ntext\n\n</p>",
    ".txt": b"\n\n  a  \n \n\t\n b \n\n",
    ".text": b"a\r\n\r\n\r\nb",
    ".csv": b"a,b\n , \nx, \n",
}


def test_every_supported_format_has_a_sample() -> None:
    assert set(EVERY_FORMAT) == SUPPORTED


@pytest.mark.parametrize(("suffix", "data"), EVERY_FORMAT.items(), ids=EVERY_FORMAT.keys())
def test_blocks_are_stripped_and_never_empty(suffix: str, data: bytes) -> None:
    extracted = read(f"sample{suffix}", data)
    assert extracted.blocks
    for block in extracted.blocks:
        assert block.text == block.text.strip()
        assert block.text
        assert "\n\n\n" not in block.text
