"""Stored citations and the ids the chat API takes, on the real model, embedder and SQLite: an
answer's citations are stored as references (no document text) and shown from the catalog,
marked gone once their chunk is; a conversation id not of the store's format is not found
before anything is read or audited."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from appliance.config import Settings
from tests.conftest import make_settings
from tests.rag.test_retrieve import TRAVEL
from tests.web.conftest import Client, running_app
from tests.web.test_rag_api import FLIGHT, ask, wait_indexed, with_pii

DESK = "# Travel desk\n\nThe travel desk on floor 3 books every hotel stay for trips abroad."
PERSONAL = (
    "# Reviews\n\nIngrid Solberg leads the dune survey team; reach her at "
    "ingrid.solberg@example.com or +47 912 34 567 about dune survey trips."
)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Settings]]:
    settings = make_settings(tmp_path_factory.mktemp("citations") / "data")
    settings.watch_path.mkdir(parents=True, exist_ok=True)
    (settings.watch_path / "travel.md").write_text(TRAVEL)
    (settings.watch_path / "desk.md").write_text(DESK)
    with running_app(settings) as client:
        wait_indexed(client, 2)
        yield client, settings


def stored_citations(settings: Settings) -> str:
    with closing(sqlite3.connect(settings.data_path / "appliance.db")) as db:
        return " ".join(
            r[0] for r in db.execute("SELECT citations FROM messages WHERE citations IS NOT NULL")
        )


def test_citations_are_stored_as_references(library: tuple[Client, Settings]) -> None:
    client, settings = library
    done = ask(client, FLIGHT)
    cited = done["citations"][0]
    assert (cited["source"], cited["gone"]) == ("travel.md", False)
    assert "14 days" in cited["snippet"]  # given live, and shown from the catalog later
    shown = client.get(f"/api/conversations/{done['conversation_id']}").json()
    assert shown["messages"][1]["citations"] == done["citations"]
    raw = stored_citations(settings)
    assert cited["chunk_id"] in raw
    assert "14 days" not in raw
    assert "Flights" not in raw
    passages = client.get("/api/documents/text/travel.md").json()["passages"]
    marked = [p for p in passages if cited["chunk_id"] in p["chunks"]]  # what the view marks
    assert len(marked) == 1
    assert "14 days" in marked[0]["text"]


def test_a_deleted_files_citations_are_marked_gone(library: tuple[Client, Settings]) -> None:
    client, settings = library
    done = ask(client, "Who books hotel stays for trips abroad?")
    assert [c["source"] for c in done["citations"]][:1] == ["desk.md"]
    (settings.watch_path / "desk.md").unlink()
    deadline = time.monotonic() + 60
    while client.get("/api/documents").json()["counts"]["indexed"] > 1:
        assert time.monotonic() < deadline, "the deleted file stayed indexed"
        time.sleep(0.2)
    shown = client.get(f"/api/conversations/{done['conversation_id']}").json()
    desk = [c for c in shown["messages"][1]["citations"] if c["source"] == "desk.md"]
    assert desk
    assert all(c["gone"] and c["snippet"] == "" and c["heading"] is None for c in desk)
    assert "floor 3" not in stored_citations(settings)
    assert client.get("/api/documents/text/desk.md").status_code == 404  # the view says gone


def test_with_redacted_documents_no_personal_data_is_stored(tmp_path: Path) -> None:
    settings = with_pii(tmp_path / "data", documents="redact")
    settings.watch_path.mkdir(parents=True)
    (settings.watch_path / "reviews.md").write_text(PERSONAL)
    with running_app(settings) as client:
        wait_indexed(client, 1)
        done = ask(client, "Who leads the dune survey team?")
        assert [c["source"] for c in done["citations"]] == ["reviews.md"]
        snippet = done["citations"][0]["snippet"]
        assert "dune survey" in snippet
        assert "Solberg" not in snippet
        raw = stored_citations(settings)
    assert "dune survey" not in raw  # no document text at all
    assert not any(v in raw for v in ("Ingrid", "ingrid.solberg@", "912 34 567"))


BAD_IDS = (
    "..%2Fdocuments%2Ffile%2Ftravel.md",
    "0" * 31,
    "0" * 33,
    "A" * 32,
    "0123456789abcdef0123456789abcdeg",
    "Ingrid%20Solberg",
    "x" * 2000,
)


def test_a_malformed_conversation_id_is_not_found(library: tuple[Client, Settings]) -> None:
    client, _ = library
    body = {"content": "hello", "max_tokens": 4}
    for bad in BAD_IDS:
        base = f"/api/conversations/{bad}"
        for method, url, json in (
            ("GET", base, None),
            ("PATCH", base, {"title": "t"}),
            ("DELETE", base, None),
            ("POST", f"{base}/messages", body),
            ("POST", f"{base}/regenerate", {}),
            ("POST", f"{base}/messages/1/feedback", {"rating": "up"}),
        ):
            response = client.request(method, url, json=json)
            assert response.status_code == 404, (method, url, response.text)
            assert bad not in response.text  # not echoed
    audit = client.get("/api/audit", params={"action": "chat"}).json()
    assert not any(bad in r["target"] for r in audit for bad in BAD_IDS)
