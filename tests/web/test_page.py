"""The chat page's and the source view's scripts, run in Node.js over stub DOM objects: which
URLs they fetch for an address, what a citation link carries, and what a streamed answer
shows."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from appliance.web.markdown import StreamedHtml, render
from tests.web.test_streamed_html import ANSWERS, HOSTS, pieces, seeded

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("page_harness.js")
CHAT = "webui/static/app.js"
VIEW = "webui/static/pages.js,webui/static/view.js"
ID = "0123456789abcdef0123456789abcdef"


def run_page(scripts: str, address: str, probe: str = "") -> dict:  # type: ignore[type-arg]
    node = shutil.which("node")
    assert node, "Node.js (`node`) runs the page's scripts here: apt-get install nodejs"
    with tempfile.NamedTemporaryFile("w", suffix=".js") as file:  # a probe of any length
        file.write(probe)
        file.flush()
        return _run(node, scripts, address, f"@{file.name}")


def _run(node: str, scripts: str, address: str, probe: str) -> dict:  # type: ignore[type-arg]
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


def shown_while_streaming(events: Sequence[tuple[str, object]]) -> list[str]:
    """The pending answer's body (as fake_dom.js serializes it) after each of `events`."""
    probe = f"""(() => {{
      document = fakeDocument();
      const answer = pendingAnswer();
      return {json.dumps(events)}.map(([event, data]) => {{
        streamed(answer, event, data);
        return serialize(answer.body);
      }});
    }})()"""
    shown: list[str] = run_page(f"{CHAT},{FAKE_DOM}", "", probe)["result"]
    return shown


FAKE_DOM = "tests/web/fake_dom.js"
TAIL = '<span class="tail"></span>'


def test_a_queued_answer_shows_its_place_in_line_until_its_first_token() -> None:
    events = [("queued", {"ahead": 2}), ("queued", {"ahead": 1}), ("queued", {"ahead": 0}),
              ("token", {"text": "Hello"})]  # fmt: skip
    assert shown_while_streaming(events) == [
        f'<p class="queued">2 people ahead of you</p>{TAIL}',
        f'<p class="queued">1 person ahead of you</p>{TAIL}',
        f'<p class="queued">You\'re next</p>{TAIL}',
        '<span class="tail">Hello</span>',
    ]


def test_the_page_shows_the_whole_answers_render_from_its_parts() -> None:
    """After each round of `render` events: the render of the answer so far, and an empty
    tail (the tokens since are in the render)."""
    rng = seeded(5)
    for answer in ANSWERS:
        html, rendered, text = StreamedHtml(HOSTS), {}, ""
        events: list[tuple[str, dict[str, object]]] = []
        for chunk in [*pieces(answer, rng), ""]:
            html.add(chunk)
            text += chunk
            events.append(("token", {"text": chunk}))
            if rng.random() < 0.5 or not chunk:
                events += [("render", {"part": p, "html": h}) for p, h in html.render()]
                rendered[len(events) - 1] = render(text, HOSTS) + TAIL
        shown = shown_while_streaming(events)
        assert {i: shown[i] for i in rendered} == rendered
        assert shown[-1] == render(answer, HOSTS) + TAIL
