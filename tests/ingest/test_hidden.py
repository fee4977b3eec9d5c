"""Text a reader of the file does not see is not indexed: hidden HTML, comments, Word's
hidden runs (a planted instruction there would reach the model unseen)."""

from __future__ import annotations

import io

import docx
import pytest

from appliance.ingest.extract import extract
from appliance.ingest.types import Limits

HIDDEN_HTML = [
    "<p hidden>PLANTED</p>",
    '<p hidden="hidden">PLANTED</p>',
    '<div style="display:none">PLANTED</div>',
    '<div style="color: red; DISPLAY : NONE !important">PLANTED</div>',
    '<span style="visibility:hidden">PLANTED</span>',
    '<span style="visibility: collapse">PLANTED</span>',
    '<p aria-hidden="true">PLANTED</p>',
    '<p style="font-size:0">PLANTED</p>',
    '<p style="font-size: 0px">PLANTED</p>',
    '<p style="opacity:0.0">PLANTED</p>',
    "<dialog>PLANTED</dialog>",
    "<div hidden><p>nested <b>PLANTED</b></p><table><tr><td>PLANTED</td></tr></table></div>",
    '<input type="hidden" name="q" value="PLANTED">',
    "<!-- PLANTED -->",
]
SHOWN_HTML = [
    "<details><summary>More</summary><p>SHOWN</p></details>",
    '<p hidden="until-found">SHOWN</p>',
    '<p aria-hidden="false">SHOWN</p>',
    '<p style="opacity:0.5; font-size:10px">SHOWN</p>',
    '<p style="display:block">SHOWN</p>',
    "<dialog open>SHOWN</dialog>",
]


def texts(name: str, data: bytes) -> str:
    return "\n".join(block.text for block in extract(name, data, Limits()).blocks)


@pytest.mark.parametrize("element", HIDDEN_HTML)
def test_html_hidden_from_readers_is_not_indexed(element: str) -> None:
    page = f"<html><body><h1>Title</h1><p>Visible text.</p>{element}<p>After.</p></body></html>"
    text = texts("page.html", page.encode())
    assert "PLANTED" not in text
    assert "Visible text." in text
    assert "After." in text


@pytest.mark.parametrize("element", SHOWN_HTML)
def test_html_a_reader_can_see_is_indexed(element: str) -> None:
    page = f"<html><body><h1>Title</h1>{element}</body></html>"
    assert "SHOWN" in texts("page.html", page.encode())


def test_markdown_comments_and_hidden_html_blocks_are_not_indexed() -> None:
    md = (
        "# Title\n\nVisible one.\n\n<!-- PLANTED block comment -->\n\n"
        "Visible <!-- PLANTED inline comment --> two.\n\n"
        'Inline <span style="display:none">PLANTED <b>x</b></span>and <i hidden>PLANTED</i>'
        '<em aria-hidden="true">PLANTED</em> <span style="color:red">red</span> hidden.\n\n'
        '<div style="display:none">\nPLANTED hidden div\n</div>\n\n'
        "<div hidden>\n\nPLANTED as Markdown in a hidden div\n\n<div>\n\nPLANTED nested\n\n"
        "</div>\n\nPLANTED still hidden\n\n</div>\n\nVisible after the div.\n\n"
        "<div>\nVisible three.\n</div>\n\n```html\n<!-- code is shown as it is -->\n```\n"
    )
    text = texts("notes.md", md.encode())
    assert "PLANTED" not in text
    shown_texts = ("Visible one.", "two.", "Visible three.", "Visible after the div.",
                   "code is shown as it is", "Inline and", "red</span> hidden.")  # fmt: skip
    for shown in shown_texts:
        assert shown in text


def test_markdown_a_quoted_gt_does_not_end_a_hiding_tag() -> None:
    """A ">" inside a quoted attribute value is the value's, not the end of the tag: what
    follows it can still hide the element, inline or as an HTML block left open."""
    md = (
        "# Title\n\n"
        'Inline <span title=">" hidden>PLANTED</span>and '
        "<i data-x='a>b' style=\"display:none\">PLANTED</i>shown.\n\n"
        '<div title=">" hidden>\n\nPLANTED as Markdown in a hidden div\n\n</div>\n\n'
        'He said "5 > 3", <b title = "a>b">bold</b> after.\n'
    )
    text = texts("notes.md", md.encode())
    assert "PLANTED" not in text
    for shown in ("Inline and", "shown.", 'He said "5 > 3"', "bold</b> after."):
        assert shown in text


def test_docx_hidden_runs_are_not_indexed() -> None:
    document = docx.Document()
    paragraph = document.add_paragraph("Visible start. ")
    paragraph.add_run("PLANTED hidden run.").font.hidden = True
    paragraph.add_run("Visible end.")
    document.add_paragraph().add_run("PLANTED hidden paragraph.").font.hidden = True
    cell = document.add_table(rows=1, cols=2).rows[0].cells
    cell[0].paragraphs[0].add_run("PLANTED in a cell").font.hidden = True
    cell[1].text = "Visible cell."
    document.add_paragraph().add_run("Shown, hidden turned off.").font.hidden = False
    buffer = io.BytesIO()
    document.save(buffer)
    text = texts("memo.docx", buffer.getvalue())
    assert "PLANTED" not in text
    for shown in ("Visible start.", "Visible end.", "Visible cell.", "Shown, hidden turned off."):
        assert shown in text
