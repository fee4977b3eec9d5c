"""The watched folder under a real server: files dropped in appear in /api/documents, and chat
keeps answering while they are indexed."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import Server
from tests.rag.test_retrieve import TRAVEL

FILES = 60


def documents(server: Server) -> dict[str, object]:
    body: dict[str, object] = server.http.get("/api/documents", timeout=10).json()
    return body


def statuses(server: Server) -> dict[str, str]:
    return {d["path"]: d["status"] for d in documents(server)["documents"]}  # type: ignore[attr-defined,index]


def wait_for(what: str, predicate: object, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def drop_files(folder: Path) -> None:
    for i in range(FILES):
        body = "\n\n".join(f"Rule {i}.{n}: staff of unit {i} file report {n} with the office "
                           f"of section {n} every quarter, signed by the manager of team {i}."
                           for n in range(30))  # fmt: skip
        (folder / f"policy-{i:02}.md").write_text(f"# Policy {i}\n\n{body}\n")


def test_chat_answers_while_a_folder_of_documents_is_indexed(server: Server) -> None:
    folder = server.log.parent / "documents"
    drop_files(folder)
    wait_for("indexing started", lambda: len(statuses(server)) > 0)
    reply = server.http.post("/v1/chat/completions", timeout=60, json={
        "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16})  # fmt: skip
    assert reply.status_code == 200
    assert reply.json()["choices"][0]["message"]["content"]
    assert documents(server)["indexing"] is True  # the answer came while indexing went on
    wait_for("all indexed", lambda: list(statuses(server).values()) == ["indexed"] * FILES)
    view = documents(server)
    assert view["watch_dir"] == str(folder)
    assert view["counts"] == {"pending": 0, "indexed": FILES, "failed": 0, "skipped": 0}
    first = view["documents"][0]  # type: ignore[index]
    assert set(first) == {"path", "status", "chunks", "pages", "error", "indexed_at", "audience"}
    assert first["chunks"] > 1
    assert first["pages"] is None
    (folder / "policy-00.md").unlink()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7 not really")
    wait_for("delete and failure seen", lambda: "policy-00.md" not in statuses(server)
             and statuses(server).get("broken.pdf") == "failed")  # fmt: skip


def test_the_documents_page_is_served_under_the_policy(server: Server) -> None:
    page = server.http.get("/documents", timeout=10)
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert '<script src="/static/documents.js"' in page.text
    assert "<script>" not in page.text
    assert server.http.get("/static/documents.js", timeout=10).status_code == 200


def test_answers_cite_the_documents_and_the_sources_open(server: Server) -> None:
    folder = server.log.parent / "documents"
    (folder / "finance").mkdir(exist_ok=True)
    (folder / "finance/travel.md").write_text(TRAVEL)
    wait_for("travel policy indexed",
             lambda: statuses(server).get("finance/travel.md") == "indexed")  # fmt: skip
    question = {"role": "user", "content": "How many days before departure must I book a flight?"}
    reply = server.http.post("/v1/chat/completions", timeout=60, json={
        "messages": [question], "max_tokens": 16, "collections": ["finance"]})  # fmt: skip
    assert reply.status_code == 200
    citations = reply.json()["choices"][0]["message"]["citations"]
    assert citations[0]["source"] == "finance/travel.md"
    assert citations[0]["heading"] == "Travel policy > Flights"
    follow_up = server.http.post("/v1/chat/completions", timeout=60, json={
        "messages": [{"role": "user", "content": "What is the daily allowance at home?"},
                     {"role": "assistant", "content": "45 euros."},
                     {"role": "user", "content": "and abroad?"}],
        "max_tokens": 8, "collections": ["finance"]})  # fmt: skip
    assert "60 euros abroad" in follow_up.json()["choices"][0]["message"]["citations"][0]["snippet"]
    source = server.http.get("/api/documents/file/finance/travel.md")
    assert source.status_code == 200
    assert source.text == TRAVEL
    outside = server.http.get("/api/documents/file/%2e%2e/server.log")
    assert outside.status_code == 404
    nothing = server.http.post("/v1/chat/completions", timeout=60, json={
        "messages": [{"role": "user",
                      "content": "What is the company's policy on bringing dogs to the office?"}],
        "max_tokens": 8})  # fmt: skip
    message = nothing.json()["choices"][0]["message"]
    assert message["citations"] == []
    assert "documents don't cover" in message["content"]
