"""Upgrades of appliance.db: a database of an older schema opens migrated with its data, one
of a newer schema is refused untouched, and a failed step leaves the version before it."""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from appliance.accounts.service import Accounts
from appliance.chat.citations import shown
from appliance.errors import StoreError
from appliance.store import db as schema
from appliance.store.audit import AuditLog
from appliance.store.catalog import Catalog
from appliance.store.conversations import ConversationStore
from appliance.store.db import SCHEMA_VERSION, Database, migrate, schema_version
from appliance.store.keywords import KeywordIndex
from appliance.store.users import UserStore, key_hash
from tests.data import make_fixture_db as fixture

CONVERSATION = "a" * 32
OLD_KEY = "apl_old-key-of-schema-4"
SCHEMA_4_ROWS: tuple[tuple[str, tuple[object, ...]], ...] = (
    ("INSERT INTO users (id, name, role, created_at) VALUES (1, 'old', 'employee', 1.0)", ()),
    (
        "INSERT INTO api_keys (user_id, name, prefix, hash, created_at) VALUES (1, 'k', ?, ?, 1)",
        (OLD_KEY[:12], key_hash(OLD_KEY)),
    ),
    (
        "INSERT INTO conversations (id, title, created_at, updated_at, user_id)"
        " VALUES (?, 'Old chat', 1.0, 2.0, 1)",
        (CONVERSATION,),
    ),
    (
        "INSERT INTO messages (conversation_id, role, content, created_at)"
        " VALUES (?, 'user', 'hello from schema 4', 1.5)",
        (CONVERSATION,),
    ),
    (
        "INSERT INTO documents (id, path, size, mtime_ns, sha256, status, chunks)"
        " VALUES (1, 'old.md', 10, 5, 's', 'indexed', 1)",
        (),
    ),
    (
        "INSERT INTO chunks (id, document_id, ord, text, hash, tokens)"
        " VALUES ('k1', 1, 0, 'the archive of schema four', 'h', 5)",
        (),
    ),
)


def version_of(path: Path) -> int:
    with closing(sqlite3.connect(path)) as conn:
        return schema_version(conn)


def test_the_fixture_of_schema_11_opens_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "appliance.db"
    shutil.copyfile(fixture.FIXTURE, path)
    assert version_of(path) == fixture.SCHEMA <= SCHEMA_VERSION
    db = Database(path)
    try:
        assert schema_version(db._conn) == SCHEMA_VERSION  # migrated, if this code is newer
        accounts = Accounts(UserStore(db))
        user = accounts.authenticate(fixture.USER, fixture.PASSWORD)
        assert user is not None
        assert user.role == "admin"
        key_user = accounts.user_for_key(fixture.KEY)
        assert key_user is not None
        assert key_user.name == fixture.USER
        store = ConversationStore(db)
        [conversation] = store.recent(user.id)
        assert conversation.title == fixture.TITLE
        messages = store.messages(conversation.id)
        assert [(m.role, m.content) for m in messages] == [
            ("user", fixture.QUESTION),
            ("assistant", fixture.ANSWER),
        ]
        catalog = Catalog(db)
        [citation] = shown(messages[1].citations, catalog.chunks)
        assert (citation.source, citation.gone) == (fixture.DOCUMENT, False)
        assert [c.text for c in catalog.chunks_of(fixture.DOCUMENT)] == list(fixture.CHUNKS)
        assert [i for i, _ in KeywordIndex(db).search("allowance abroad", 5)] == ["c1"]
        audit = AuditLog(db)
        assert [(r.actor, r.action, r.target) for r in reversed(audit.records())] == list(
            fixture.AUDIT
        )
        assert audit.verify(full=True).intact
    finally:
        db.close()


def test_a_database_of_schema_4_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    """Schema 4 (accounts, catalog with keyword index, audit) before expiring keys, audit
    checkpoints, citations, grounding and hand-offs: every later step runs on real rows."""
    path = tmp_path / "appliance.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        migrate(conn, 4)
        assert schema_version(conn) == 4
        for sql, params in SCHEMA_4_ROWS:
            conn.execute(sql, params)
    db = Database(path)
    try:
        assert schema_version(db._conn) == SCHEMA_VERSION
        assert Accounts(UserStore(db)).user_for_key(OLD_KEY) is not None
        [key] = UserStore(db).keys(1)
        assert key.expires_at is None  # migration 6's column, for the row that was there
        store = ConversationStore(db)
        [message] = store.messages(CONVERSATION)
        assert (message.content, message.citations, message.grounding) == (
            "hello from schema 4",
            None,
            None,
        )
        assert store.unseen(1) == {}  # migration 11: old messages count as seen
        assert [i for i, _ in KeywordIndex(db).search("archive", 5)] == ["k1"]
        AuditLog(db).record("cli", "after.upgrade")
        assert AuditLog(db).verify().intact
    finally:
        db.close()


def test_a_newer_database_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "appliance.db"
    shutil.copyfile(fixture.FIXTURE, path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 3}")
    before = path.read_bytes()
    with pytest.raises(StoreError) as refused:
        Database(path)
    message = str(refused.value)
    assert f"schema version {SCHEMA_VERSION + 3}" in message
    assert f"the {SCHEMA_VERSION} this appliance knows" in message
    assert "Upgrade the appliance, or restore a backup" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appliance.db"]  # no -wal left


def test_a_failed_migration_leaves_the_version_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "appliance.db"
    shutil.copyfile(fixture.FIXTURE, path)
    broken = "CREATE TABLE half_done (a); INSERT INTO no_such_table VALUES (1);"
    monkeypatch.setattr(schema, "_MIGRATIONS", (*schema._MIGRATIONS, broken))
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            migrate(conn, SCHEMA_VERSION + 1)
        assert not conn.in_transaction
        assert schema_version(conn) == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "half_done" not in tables
    Database(path).close()  # and it still opens


def test_a_migration_another_process_made_meanwhile_is_skipped(tmp_path: Path) -> None:
    """Two processes start on an old file at once: the one that sees the new version only
    after its own step failed does not fail the start."""
    path = tmp_path / "appliance.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as first:
        migrate(first, 5)
        with closing(sqlite3.connect(path, isolation_level=None)) as second:
            migrate(second, 5)
            migrate(first, 6)  # the other process's step 6, done between our read and step

            class Stale:
                """What `second` read before the other's step: version 5, once."""

                def __init__(self) -> None:
                    self.reads = 0

                def __call__(self, conn: sqlite3.Connection) -> int:
                    self.reads += 1
                    return 5 if self.reads == 1 else schema_version(conn)

            stale = Stale()
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(schema, "schema_version", stale)
                migrate(second, 7)
            assert schema_version(second) == 7
