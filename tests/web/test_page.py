"""The chat page's and the source view's scripts, run in Node.js over stub DOM objects: which
URLs they fetch for an address, and what a citation link carries."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("page_harness.js")
CHAT = "webui/static/app.js"
VIEW = "webui/static/pages.js,webui/static/view.js"
ID = "0123456789abcdef0123456789abcdef"


def run_page(scripts: str, address: str, probe: str = "") -> dict:  # type: ignore[type-arg]
    node = shutil.which("node")
    assert node, "Node.js (`node`) runs the page's scripts here: apt-get install nodejs"
    done = subprocess.run(
        [node, str(HARNESS), scripts, address, probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict = json.loads(done.stdout)  # type: ignore[type-arg]
    return result


def test_an_address_that_is_no_conversation_id_fetches_nothing_of_it() -> None:
    for address in (
        "#../documents/file/hr/x.md",
        "#..%2Fdocuments%2Ffile%2Fx",
        f"#{ID}/../x",
        f"#{ID.upper()}",
        "#javascript:alert(1)",
    ):
        fetched = run_page(CHAT, address)["fetched"]
        assert fetched, address
        assert all(
            url
            in ("/api/me", "/v1/models", "/api/privacy", "/api/collections", "/api/conversations")
            for url in fetched
        ), (address, fetched)


def test_a_conversation_id_in_the_address_opens_it() -> None:
    assert f"/api/conversations/{ID}" in run_page(CHAT, f"#{ID}")["fetched"]


def test_a_citation_link_carries_the_chunk_id_not_the_text() -> None:
    citation = {
        "n": 1,
        "chunk_id": "c1",
        "source": "hr/Ingrid Solberg.md",
        "page": 2,
        "heading": "Salary of Ingrid",
        "snippet": "earns 7,000 a month",
        "score": 0.5,
        "gone": False,
    }
    url = run_page(CHAT, "", f"sourceUrl({json.dumps(citation)})")["result"]
    assert url.startswith("/view?")
    assert "chunk=c1" in url
    assert "7%2C000" not in url
    assert "earns" not in url
    assert "Salary" not in url
    pdf = {**citation, "source": "hr/handbook.pdf"}
    assert run_page(CHAT, "", f"sourceUrl({json.dumps(pdf)})")["result"] == (
        "/api/documents/file/hr/handbook.pdf#page=2"
    )
    gone = {**pdf, "gone": True, "snippet": "", "heading": None}
    assert run_page(CHAT, "", f"sourceUrl({json.dumps(gone)})")["result"].startswith("/view?")


def test_the_source_view_marks_the_passage_by_chunk_id() -> None:
    passages = [{"text": "a", "chunks": ["c1"]}, {"text": "b", "chunks": ["c2", "c3"]}]
    probe = f"[cited({json.dumps(passages)}, 'c3'), cited({json.dumps(passages)}, 'gone')]"
    page = run_page(VIEW, "?path=hr/x.md&chunk=c3", probe)
    assert page["result"] == [1, -1]
    assert "/api/documents/text/hr/x.md" in page["fetched"]
