"""The SQLite database under the data directory: one connection, one writer, versioned schema."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.errors import StoreError

log = logging.getLogger(__name__)

# Each entry moves the schema one version up; never edit a released entry, append a new one.
_MIGRATIONS = (
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        created_at REAL NOT NULL,
        finish_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, id);
    CREATE INDEX conversations_by_update ON conversations(updated_at);
    """,
    """
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT NOT NULL UNIQUE,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending', 'indexed', 'failed', 'skipped')),
        chunks INTEGER NOT NULL DEFAULT 0,
        pages INTEGER,
        error TEXT,
        indexed_at REAL
    );
    CREATE INDEX documents_by_sha ON documents(sha256);
    CREATE TABLE chunks (
        id TEXT PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ord INTEGER NOT NULL,
        text TEXT NOT NULL,
        page INTEGER,
        heading TEXT,
        hash TEXT NOT NULL,
        tokens INTEGER NOT NULL
    );
    CREATE INDEX chunks_by_document ON chunks(document_id, ord);
    CREATE INDEX chunks_by_hash ON chunks(hash);
    CREATE TABLE index_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        password_hash TEXT,
        role TEXT NOT NULL CHECK (role IN ('admin', 'employee')),
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE TABLE groups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE,
        source TEXT NOT NULL DEFAULT 'local'
    );
    CREATE TABLE group_members (
        group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (group_id, user_id)
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        prefix TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        last_used_at REAL,
        revoked_at REAL
    );
    CREATE INDEX api_keys_by_user ON api_keys(user_id);
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        csrf TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    ALTER TABLE conversations ADD COLUMN user_id INTEGER REFERENCES users(id) ON DELETE CASCADE;
    CREATE INDEX conversations_by_user ON conversations(user_id, updated_at);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX audit_by_actor ON audit(actor, id);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
    CREATE TABLE feedback (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
        comment TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        PRIMARY KEY (message_id, user_id)
    );
    CREATE INDEX feedback_by_rating ON feedback(rating, created_at);
    """,
    """
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, heading, content='chunks', content_rowid='rowid', tokenize='porter unicode61'
    );
    CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.rowid, new.text, new.heading);
    END;
    CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts(chunks_fts, rowid, text, heading)
        VALUES ('delete', old.rowid, old.text, old.heading);
    END;
    INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');
    CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');
    """,
    # 5: the sources an answer was given (JSON list of citations; NULL: none)
    """
    ALTER TABLE messages ADD COLUMN citations TEXT;
    """,
    # 6: an API key may expire (NULL: it does not)
    """
    ALTER TABLE api_keys ADD COLUMN expires_at REAL;
    """,
    # 7: the audit chain's last verified record (verify starts after it), and client addresses
    # beside the chain (not hashed: purged after audit.address_days)
    """
    CREATE TABLE audit_checkpoint (
        record_id INTEGER NOT NULL,
        hash TEXT NOT NULL,
        records INTEGER NOT NULL,
        at REAL NOT NULL
    );
    CREATE TABLE audit_addresses (
        record_id INTEGER PRIMARY KEY,
        address TEXT NOT NULL,
        at REAL NOT NULL
    );
    CREATE INDEX audit_addresses_by_at ON audit_addresses(at);
    """,
    # 8: a deleted chunk leaves its words in the keyword index's segments until they are merged;
    # this flag (set in the deleting transaction, so a crash cannot lose it) asks for that merge
    """
    CREATE TRIGGER chunks_erased AFTER DELETE ON chunks BEGIN
        INSERT INTO index_meta (key, value) VALUES ('keywords.erased', '1')
        ON CONFLICT(key) DO NOTHING;
    END;
    """,
    # 9: stored citations keep references, not document text: the snippets and headings that
    # answers stored before are dropped (such a citation then shows as gone: it has no chunk id)
    """
    UPDATE messages SET citations = (
        SELECT json_group_array(json_remove(value, '$.snippet', '$.heading'))
        FROM json_each(messages.citations)
    ) WHERE citations IS NOT NULL;
    """,
    # 10: how an answer was made (documents, direct, general, abstained, plain; NULL: a
    # question, or an answer stored before routing)
    """
    ALTER TABLE messages ADD COLUMN grounding TEXT;
    """,
    # 11: questions handed to people (experts), and their answers in the conversation: an
    # assistant message by `author`, `seen` once its owner has read it
    """
    CREATE TABLE handoffs (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
        question TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        searched TEXT NOT NULL DEFAULT '',
        collection TEXT,
        status TEXT NOT NULL,
        expert_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
        answer TEXT,
        created_at REAL NOT NULL,
        claimed_at REAL,
        answered_at REAL,
        closed_at REAL,
        faq_path TEXT
    );
    CREATE INDEX handoffs_by_status ON handoffs(status, created_at);
    CREATE INDEX handoffs_by_conversation ON handoffs(conversation_id);
    ALTER TABLE messages ADD COLUMN author TEXT;
    ALTER TABLE messages ADD COLUMN seen INTEGER NOT NULL DEFAULT 1;
    """,
    # 12: what admins set on the pages and the server keeps across restarts (the model the
    # Models page chose to serve), with who set it and when
    """
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        set_by TEXT NOT NULL,
        set_at REAL NOT NULL
    );
    """,
    # 13: accounts from the company directory (LDAP, OIDC) beside local ones: where each comes
    # from, its id there (an LDAP DN, an OIDC issuer and subject), its e-mail and when it was
    # last read from there; whose view each group membership is; and each document's
    # audience (`*`: everyone; else the groups that may see it, one per line, from the
    # `.access` file nearest to it or its POSIX group)
    """
    ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE users ADD COLUMN external_id TEXT;
    ALTER TABLE users ADD COLUMN email TEXT;
    ALTER TABLE users ADD COLUMN synced_at REAL;
    CREATE UNIQUE INDEX users_by_external ON users(source, external_id)
        WHERE external_id IS NOT NULL;
    ALTER TABLE group_members ADD COLUMN source TEXT NOT NULL DEFAULT 'local';
    CREATE INDEX group_members_by_user ON group_members(user_id);
    ALTER TABLE documents ADD COLUMN audience TEXT NOT NULL DEFAULT '*';
    CREATE INDEX documents_by_audience ON documents(audience);
    """,
)

SCHEMA_VERSION = len(_MIGRATIONS)  # the newest schema this code knows


class Database:
    """Owns the one connection; every statement runs under its lock (SQLite's single writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            _refuse_newer(self._conn, path)  # before any pragma that writes to the file
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # deleted rows are overwritten with zeros, not only unlinked (Debian's SQLite does
            # this by default, other builds do not)
            self._conn.execute("PRAGMA secure_delete=ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the database {path}: {exc}; check that data_dir "
                f"({path.parent}) is writable by this user"
            ) from None
        try:
            migrate(self._conn)
        except sqlite3.Error as exc:
            found = schema_version(self._conn)
            self._conn.close()
            raise StoreError(
                f"cannot upgrade the database {path} from schema version {found} to "
                f"{SCHEMA_VERSION}: {exc}; it stays at version {found} (each step is one "
                f"transaction). Check that data_dir ({path.parent}) is writable by this user "
                "and has free space, or restore a backup (`appliance restore`)"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IntegrityError passes through for the store to explain."""
        with self._lock, _explained(self.path):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # also when COMMIT itself failed (disk full)
                    self._conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, _explained(self.path):
            return self._conn.execute(sql, params).fetchall()

    def checkpoint(self) -> None:
        """Erasure's last step: the WAL (where the deleted rows' pages still are, as they were
        before) is copied into the main file and truncated to nothing. Up to a few ms per MB
        of WAL, with the lock held: never on the event loop."""
        with self._lock, _explained(self.path):
            busy = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:  # another process (a backup, `appliance` commands) is reading the database
            log.warning(
                "database %s: another reader blocked the checkpoint after an erasure; the "
                "deleted data stays in its -wal file until the next checkpoint (SQLite makes "
                "one every 1000 pages written)",
                self.path,
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def schema_version(conn: sqlite3.Connection) -> int:
    """The version a database's schema is at (PRAGMA user_version; 0: a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> None:
    """Moves the schema up to version `upto`, one transaction per migration (its new version
    is written in the same transaction: a failed step leaves the version before it). When
    another process migrated the same file meanwhile, its work counts: the step is skipped."""
    while (version := schema_version(conn)) < upto:
        number = version + 1
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE; {_MIGRATIONS[version]}; PRAGMA user_version={number}; COMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if schema_version(conn) == version:  # not a step another process took first
                raise


def _refuse_newer(conn: sqlite3.Connection, path: Path) -> None:
    if (found := schema_version(conn)) > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"the database {path} has schema version {found}, newer than the {SCHEMA_VERSION} "
            "this appliance knows: a newer appliance wrote it. Upgrade the appliance, or "
            "restore a backup made by this version (`appliance restore`); the database was "
            "left as it is"
        )


@contextmanager
def _explained(path: Path) -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError:
        raise
    except sqlite3.Error as exc:
        raise StoreError(f"database {path}: {exc}") from exc
