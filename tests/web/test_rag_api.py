"""Answers from documents through the HTTP API, on the real model, embedder, Chroma and SQLite:
citations on the page's stream and the OpenAI API, abstention, collections, the sources that
citations open (and nothing outside the watched folder), the audit of what was retrieved."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from appliance.config import Settings
from tests.conftest import make_admin, make_settings
from tests.ingest.samples import pdf_bytes
from tests.rag.test_retrieve import LEAVE, TRAVEL
from tests.web.conftest import Client, running_app, sse_events

FLIGHT = "How many days before departure must I book a flight?"
ELSEWHERE = "What is the company's policy on bringing dogs to the office?"  # none has it
TASK = "Translate into French: 'The meeting starts at noon.'"  # not for the documents


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Settings]]:
    """One app over a small library (indexing it once for the module's tests)."""
    settings = make_settings(tmp_path_factory.mktemp("rag") / "data")
    docs = settings.watch_path
    for path, data in {"finance/travel.md": TRAVEL, "hr/leave.md": LEAVE,
                       "hr/handbook.pdf": pdf_bytes(["Welcome to the company.", "Our offices.",
                                                     "The parking garage closes at 22:00."]),
                       ".hidden.md": "# Secret\n\nThe safe code is 1234."}.items():  # fmt: skip
        (docs / path).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            (docs / path).write_text(data)
        else:
            (docs / path).write_bytes(data)
    (settings.data_path.parent / "outside.md").write_text("# Outside\n\nNot in the folder.")
    with running_app(settings) as client:
        wait_indexed(client, 3)
        yield client, settings


def wait_indexed(client: Client, documents: int) -> None:
    """Until the watcher has indexed that many documents (a bounded wait, not a timing check)."""
    deadline = time.monotonic() + 120
    while client.get("/api/documents").json()["counts"]["indexed"] < documents:
        assert time.monotonic() < deadline, client.get("/api/documents").json()
        time.sleep(0.2)


def with_pii(data_dir: Path, **pii: str) -> Settings:
    """The suite's settings with some `pii` settings changed."""
    base = make_settings(data_dir)
    return msgspec.structs.replace(base, pii=msgspec.structs.replace(base.pii, **pii))


def ask(client: Client, content: str, **extra: object) -> dict:  # type: ignore[type-arg]
    conv = client.post("/api/conversations", json={}).json()
    body = {"content": content, "max_tokens": 16, "temperature": 0, **extra}
    with client.stream("POST", f"/api/conversations/{conv['id']}/messages", json=body) as r:
        assert r.status_code == 200, r.read()
        events = sse_events(r.iter_lines())
    kind, done = events[-1]
    assert kind == "done"
    done["conversation_id"] = conv["id"]
    return done


def test_an_answer_ends_with_its_sources_and_keeps_them(library: tuple[Client, Settings]) -> None:
    client, _ = library
    done = ask(client, FLIGHT)
    citations = done["citations"]
    assert citations[0]["n"] == 1
    assert citations[0]["source"] == "finance/travel.md"
    assert citations[0]["heading"] == "Travel policy > Flights"
    assert "14 days" in citations[0]["snippet"]
    assert set(citations[0]) == {"n", "chunk_id", "source", "page", "heading", "snippet",
                                 "score", "gone"}  # fmt: skip
    assert done["message"]["citations"] == citations
    shown = client.get(f"/api/conversations/{done['conversation_id']}").json()
    assert shown["messages"][1]["citations"] == citations  # stored with the answer
    audit = client.get("/api/audit", params={"action": "chat"}).json()
    assert "documents ['finance/travel.md'" in audit[0]["detail"]


def test_a_pdf_fact_is_cited_with_its_page(library: tuple[Client, Settings]) -> None:
    client, _ = library
    citations = ask(client, "When does the parking garage close?")["citations"]
    assert (citations[0]["source"], citations[0]["page"]) == ("hr/handbook.pdf", 3)


def test_what_the_documents_miss_is_said_not_invented(library: tuple[Client, Settings]) -> None:
    client, _ = library
    before = client.get("/readyz").json()["completed"]
    done = ask(client, ELSEWHERE)
    assert done["citations"] == []
    assert "documents don't cover" in done["message"]["content"]
    assert ELSEWHERE in done["message"]["content"]
    assert done["message"]["completion_tokens"] == 0
    assert client.get("/readyz").json()["completed"] == before  # the model was not asked


def test_a_task_on_the_user_s_own_text_is_answered_not_from_the_documents(
    library: tuple[Client, Settings],
) -> None:
    client, _ = library
    done = ask(client, TASK)
    assert done["citations"] == []
    assert done["message"]["grounding"] == "direct"  # the page labels it
    assert done["message"]["completion_tokens"] > 0  # the model answered
    assert "documents don't cover" not in done["message"]["content"]
    shown = client.get(f"/api/conversations/{done['conversation_id']}").json()
    assert [m["grounding"] for m in shown["messages"]] == [None, "direct"]  # kept
    audit = client.get("/api/audit", params={"action": "chat"}).json()
    assert audit[0]["detail"] == "via api key; direct; documents []"  # the suite's client
    covered = ask(client, FLIGHT)
    assert covered["message"]["grounding"] == "documents"


def test_collections_limit_what_an_answer_draws_on(library: tuple[Client, Settings]) -> None:
    client, _ = library
    assert client.get("/api/collections").json() == {"finance": 1, "hr": 2}
    done = ask(client, FLIGHT, collections=["hr"])
    assert all(c["source"].startswith("hr/") for c in done["citations"])


def test_the_openai_api_returns_citations(library: tuple[Client, Settings]) -> None:
    client, _ = library
    body = {"messages": [{"role": "user", "content": FLIGHT}], "max_tokens": 8,
            "temperature": 0}  # fmt: skip
    message = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]
    assert message["citations"][0]["source"] == "finance/travel.md"
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        chunks = [data for _, data in sse_events(r.iter_lines()) if data]
    last = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(last) == 1
    assert last[0]["citations"][0]["source"] == "finance/travel.md"
    assert all("citations" not in c for c in chunks if c is not last[0])
    plain = {**body, "messages": [{"role": "user", "content": ELSEWHERE}], "documents": False}
    message = client.post("/v1/chat/completions", json=plain).json()["choices"][0]["message"]
    assert message["citations"] == []
    assert "documents don't cover" not in message["content"]  # the model answered


def test_a_citation_opens_its_source(library: tuple[Client, Settings]) -> None:
    client, _ = library
    pdf = client.get("/api/documents/file/hr/handbook.pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline")
    assert pdf.headers["x-content-type-options"] == "nosniff"
    assert pdf.content.startswith(b"%PDF")
    md = client.get("/api/documents/file/finance/travel.md")
    assert md.status_code == 200
    assert md.text.startswith("# Travel policy")
    assert md.headers["content-disposition"].startswith("attachment")
    assert md.headers["content-security-policy"] == "sandbox"
    text = client.get("/api/documents/text/finance/travel.md").json()
    headings = [p["heading"] for p in text["passages"]]
    assert "Travel policy > Flights" in headings
    assert any("14 days" in p["text"] for p in text["passages"])
    pages = client.get("/api/documents/text/hr/handbook.pdf").json()["passages"]
    assert [p["page"] for p in pages] == [1, 2, 3]
    assert client.get("/view").status_code == 200


@pytest.mark.parametrize("path", [
    "../outside.md", "..%2Foutside.md", "%2e%2e/outside.md", "finance/../../outside.md",
    "/etc/passwd", "%2Fetc%2Fpasswd", "..%5C..%5Coutside.md", ".hidden.md", "nothing.md",
    "finance", "finance/", "../data/appliance.db",
])  # fmt: skip
def test_nothing_outside_the_indexed_folder_is_served(library: tuple[Client, Settings],
                                                      path: str) -> None:  # fmt: skip
    client, _ = library
    for kind in ("file", "text"):
        response = client.get(f"/api/documents/{kind}/{path}")
        assert response.status_code == 404, (kind, path, response.text)
        assert "Not in the folder" not in response.text
        assert "root:" not in response.text


def test_a_symlink_swapped_in_is_not_followed(library: tuple[Client, Settings]) -> None:
    client, settings = library
    leave = settings.watch_path / "hr/leave.md"
    saved = leave.read_bytes()
    leave.unlink()
    os.symlink(settings.data_path.parent / "outside.md", leave)
    try:
        assert client.get("/api/documents/file/hr/leave.md").status_code == 404
    finally:
        leave.unlink()
        leave.write_bytes(saved)
    # A folder on the way swapped for a link to a folder outside that has the same file name.
    outside = settings.data_path.parent / "elsewhere"
    (outside / "finance").mkdir(parents=True)
    (outside / "finance/travel.md").write_text("# Outside\n\nNot in the folder.")
    finance = settings.watch_path / "finance"
    finance.rename(settings.watch_path / ".finance-away")
    os.symlink(outside / "finance", finance)
    try:
        response = client.get("/api/documents/file/finance/travel.md")
        assert response.status_code == 404
        assert "Not in the folder" not in response.text
    finally:
        finance.unlink()
        (settings.watch_path / ".finance-away").rename(finance)


def test_employees_open_sources_too(library: tuple[Client, Settings]) -> None:
    client, settings = library
    key = make_admin(settings.data_path, "emma", "employee")
    response = client.get("/api/documents/file/finance/travel.md",
                          headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert response.status_code == 200


def test_with_redacted_documents_only_admins_get_originals(tmp_path: Path) -> None:
    settings = with_pii(tmp_path / "data", documents="redact")
    (settings.watch_path).mkdir(parents=True)
    (settings.watch_path / "travel.md").write_text(TRAVEL)
    with running_app(settings) as client:
        key = make_admin(settings.data_path, "emma", "employee")
        employee = {"Authorization": f"Bearer {key}"}
        wait_indexed(client, 1)
        assert client.get("/api/documents/file/travel.md", headers=employee).status_code == 403
        assert client.get("/api/documents/text/travel.md", headers=employee).status_code == 200
        assert client.get("/api/documents/file/travel.md").status_code == 200


def test_names_the_model_sees_as_placeholders_are_searched_as_written(tmp_path: Path) -> None:
    settings = with_pii(tmp_path / "data", prompts="pseudonymize")
    settings.watch_path.mkdir(parents=True)
    (settings.watch_path / "desk.md").write_text(
        "# Travel desk\n\nIngrid Solberg runs the travel desk and signs off every trip abroad.")
    (settings.watch_path / "leave.md").write_text(LEAVE)
    with running_app(settings) as client:
        wait_indexed(client, 2)
        done = ask(client, "What does Ingrid Solberg do?")
        assert [c["source"] for c in done["citations"]][:1] == ["desk.md"]
        url = f"/api/conversations/{done['conversation_id']}/regenerate"
        with client.stream("POST", url, json={"max_tokens": 8, "temperature": 0}) as r:
            again = sse_events(r.iter_lines())[-1][1]
        assert again["citations"] == done["citations"]


def test_a_refused_chat_is_audited_too(library: tuple[Client, Settings]) -> None:
    client, _ = library
    conv = client.post("/api/conversations", json={}).json()
    url = f"/api/conversations/{conv['id']}/messages"
    assert client.post(url, json={"content": "   "}).status_code == 400
    record = client.get("/api/audit", params={"action": "chat"}).json()[0]
    assert record["target"] == conv["id"]
    assert record["detail"] == "via api key; refused (InvalidRequest)"
