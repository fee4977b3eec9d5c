"""Citations stored before schema 9 (with their snippets) lose their text on upgrade, and show
as gone: no chunk id names their passage."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import msgspec

from appliance.chat.citations import shown
from appliance.store import db as schema
from appliance.store.db import Database

OLD = [
    {
        "n": 1,
        "source": "hr/review.md",
        "page": None,
        "heading": "Ingrid Solberg",
        "snippet": "Ingrid Solberg earns 7,000 a month",
        "score": 0.5,
    }
]


def test_an_upgrade_drops_the_text_of_stored_citations(tmp_path: Path) -> None:
    path = tmp_path / "appliance.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        for number, script in enumerate(schema._MIGRATIONS[:8], start=1):
            conn.executescript(f"BEGIN; {script}; PRAGMA user_version={number}; COMMIT;")
        conn.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at) VALUES ('c', 't', 0, 0)"
        )
        conn.execute(
            "INSERT INTO messages (conversation_id, role, content, created_at, "
            "citations) VALUES ('c', 'assistant', 'a [1]', 0, ?)",
            (msgspec.json.encode(OLD).decode(),),
        )
    database = Database(path)
    raw = database.query("SELECT citations FROM messages")[0][0]
    database.close()
    assert "Ingrid" not in raw
    assert "7,000" not in raw
    [citation] = shown(raw, lambda ids: [])
    assert (citation.n, citation.source, citation.gone, citation.snippet) == (
        1,
        "hr/review.md",
        True,
        "",
    )
