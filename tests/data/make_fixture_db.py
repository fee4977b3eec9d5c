"""Writes tests/data/appliance-schema-11.db: a small database made by the schema of its version
(11), with an account, an API key, a conversation with messages, a catalog entry with its
chunks and audit records, through the stores themselves. It is committed: every later schema
must open it (migrating it) with its data intact (tests/store/test_migrations.py). Make a new
one beside it (appliance-schema-N.db) when a migration changes what is stored; never
regenerate an old one with newer code.

    .venv/bin/python -m tests.data.make_fixture_db
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from appliance.accounts.service import KEY_PREFIX, Accounts
from appliance.chat.citations import Reference
from appliance.store.audit import AuditLog
from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.conversations import ConversationStore
from appliance.store.db import SCHEMA_VERSION, Database
from appliance.store.users import UserStore

FIXTURE = Path(__file__).resolve().parent / "appliance-schema-11.db"
SCHEMA = 11
USER = "fixture-admin"
PASSWORD = "fixture password"  # noqa: S105 - a test account's, published here
KEY = KEY_PREFIX + "fixture-key-0123456789abcdefghijklmnopqrstuvw"
TITLE = "Booking a flight"
QUESTION = "How early must I book a flight?"
ANSWER = "At least 14 days before departure [1]."
DOCUMENT = "finance/travel.md"
CHUNKS = (
    "Flights are booked at least 14 days before departure through the travel desk.",
    "The daily allowance is 45 euros at home and 60 euros abroad.",
)
AUDIT = (("cli", "user.add", USER), (USER, "sign_in", USER), (USER, "chat", "conversation"))


def make(path: Path) -> None:
    db = Database(path)
    try:
        accounts = Accounts(UserStore(db))
        user = accounts.add(USER, PASSWORD, "admin")
        accounts.users.add_key(user.id, "fixture", KEY)
        store = ConversationStore(db)
        conversation = store.create(TITLE, user.id)
        store.add_message(conversation.id, "user", QUESTION)
        citations = msgspec.json.encode([Reference(n=1, chunk_id="c0", source=DOCUMENT)])
        store.add_message(
            conversation.id,
            "assistant",
            ANSWER,
            finish_reason="stop",
            citations=citations.decode(),
            grounding="documents",
        )
        rows = [
            ChunkRow(f"c{n}", n, text, None, "Travel policy", f"h{n}", 20)
            for n, text in enumerate(CHUNKS)
        ]
        Catalog(db).replace_chunks(
            FileState(DOCUMENT, 200, 1_700_000_000_000_000_000, "s"), None, rows
        )
        log = AuditLog(db)
        for actor, action, target in AUDIT:
            log.record(actor, action, target)
    finally:
        db.close()
    with sqlite3.connect(path) as conn:  # one small file: no -wal, 1 KiB pages
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA page_size=1024")
        conn.execute("VACUUM")
    conn.close()


if __name__ == "__main__":
    if SCHEMA_VERSION != SCHEMA:
        raise SystemExit(
            f"this code's schema is {SCHEMA_VERSION}: write appliance-schema-{SCHEMA_VERSION}.db "
            f"(copy this script's SCHEMA), and keep {FIXTURE.name} as it is"
        )
    FIXTURE.unlink(missing_ok=True)
    make(FIXTURE)
    print(f"{FIXTURE}: {FIXTURE.stat().st_size} bytes")
