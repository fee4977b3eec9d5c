"""The document catalog in SQLite: which files are indexed, how, and their chunks. The truth."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Literal, get_args

import msgspec

from appliance.store.audience import EVERYONE
from appliance.store.db import Database
from appliance.store.keywords import KeywordIndex

Status = Literal["pending", "indexed", "failed", "skipped"]
_CHUNK_SELECT = ("SELECT c.id, d.path, c.ord, c.text, c.page, c.heading, d.audience "
                 "FROM chunks c JOIN documents d ON d.id = c.document_id")  # fmt: skip
_DOC_COLUMNS = ("id, path, size, mtime_ns, sha256, status, chunks, pages, error, indexed_at, "
                "audience")  # fmt: skip


class Document(msgspec.Struct, frozen=True):
    id: int
    path: str  # relative to the watched folder, "/"-separated
    size: int
    mtime_ns: int
    sha256: str | None
    status: Status
    chunks: int
    pages: int | None
    error: str | None
    indexed_at: float | None
    audience: str = EVERYONE  # who may see it (store/audience.py)


class FileState(msgspec.Struct, frozen=True):
    """What the catalog records of a file as it was read."""

    path: str
    size: int
    mtime_ns: int
    sha256: str | None = None
    audience: str = EVERYONE  # from the `.access` file above it, or its POSIX group


class ChunkRow(msgspec.Struct, frozen=True):
    id: str  # also the id of its vector in the VectorIndex; new for every write
    ord: int
    text: str
    page: int | None
    heading: str | None
    hash: str  # sha256 of text: chunks with the same text share one vector
    tokens: int


class StoredChunk(msgspec.Struct, frozen=True):
    """A chunk as retrieval needs it: where it comes from, and its text."""

    id: str
    path: str
    ord: int
    text: str
    page: int | None
    heading: str | None
    audience: str = EVERYONE  # its document's


class Catalog:
    """Rows change only in transactions, so a crash leaves either the old state or the new."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def documents(self) -> list[Document]:
        rows = self._db.query(f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY path")  # noqa: S608
        return [Document(**dict(r)) for r in rows]

    def get(self, path: str) -> Document | None:
        rows = self._db.query(f"SELECT {_DOC_COLUMNS} FROM documents WHERE path = ?", (path,))  # noqa: S608
        return Document(**dict(rows[0])) if rows else None

    def with_sha(self, sha256: str) -> list[Document]:
        rows = self._db.query(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE sha256 = ? AND status = 'indexed'",  # noqa: S608
            (sha256,),
        )
        return [Document(**dict(r)) for r in rows]

    def mark_pending(self, file: FileState) -> None:
        """Records a file as waiting; its old chunks stay searchable until replaced."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO documents (path, size, mtime_ns, status, audience) "
                "VALUES (?, ?, ?, 'pending', ?) ON CONFLICT(path) DO UPDATE SET "
                "size = excluded.size, mtime_ns = excluded.mtime_ns, status = 'pending', "
                "error = NULL, audience = excluded.audience",
                (file.path, file.size, file.mtime_ns, file.audience),
            )

    def requeue(self, path: str | None = None) -> None:
        """Marks one file (or all) to be read again even if its bytes did not change."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE documents SET status = 'pending', sha256 = NULL "
                "WHERE status != 'skipped' AND (? IS NULL OR path = ?)", (path, path))  # fmt: skip

    def touch(self, file: FileState) -> None:
        """Same bytes as last read (only the mtime moved): the earlier outcome stands."""
        with self._db.transaction() as conn:
            conn.execute(
                "UPDATE documents SET size = ?, mtime_ns = ?, status = CASE WHEN error IS NULL"
                " THEN 'indexed' ELSE 'failed' END WHERE path = ?",
                (file.size, file.mtime_ns, file.path),
            )

    def settle(self, file: FileState, status: Status, error: str | None) -> list[str]:
        """Ends a file as failed or skipped, without chunks; returns the chunk ids dropped."""
        with self._db.transaction() as conn:
            doc_id = _upsert(conn, file, status, error, pages=None, chunks=0)
            return _drop_chunks(conn, doc_id)

    def replace_chunks(self, file: FileState, pages: int | None,
                       chunks: Sequence[ChunkRow]) -> list[str]:  # fmt: skip
        """Stores the new chunks as 'indexed'; returns the ids of the chunks they replace."""
        with self._db.transaction() as conn:
            doc_id = _upsert(conn, file, "indexed", None, pages=pages, chunks=len(chunks))
            dropped = _drop_chunks(conn, doc_id)
            conn.executemany(
                "INSERT INTO chunks (id, document_id, ord, text, page, heading, hash, tokens) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(c.id, doc_id, c.ord, c.text, c.page, c.heading, c.hash, c.tokens)
                 for c in chunks],
            )  # fmt: skip
            return dropped

    def move(self, old: str, file: FileState) -> list[str]:
        """A renamed file keeps its row and chunks; a row the new path had is dropped."""
        with self._db.transaction() as conn:
            dropped = _remove(conn, file.path)
            conn.execute("UPDATE documents SET path = ?, size = ?, mtime_ns = ? WHERE path = ?",
                         (file.path, file.size, file.mtime_ns, old))  # fmt: skip
            return dropped

    def remove(self, path: str) -> list[str]:
        """Forgets a file, or every file under a folder; returns the chunk ids dropped."""
        with self._db.transaction() as conn:
            dropped = _remove(conn, path)
            prefix = path.rstrip("/") + "/"
            for (under,) in conn.execute(
                "SELECT path FROM documents WHERE substr(path, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall():
                dropped += _remove(conn, under)
            return dropped

    def set_audience(self, path: str, audience: str) -> list[str] | None:
        """A document's new audience (an `.access` file or its group changed): its chunks'
        ids, for their vectors to be labelled the same, or None when it had that one already
        (or is not in the catalog)."""
        with self._db.transaction() as conn:
            row = conn.execute(
                "UPDATE documents SET audience = ? WHERE path = ? AND audience != ? RETURNING id",
                (audience, path, audience),
            ).fetchone()
            if row is None:
                return None
            ids = conn.execute("SELECT id FROM chunks WHERE document_id = ?", (row[0],))
            return [r[0] for r in ids.fetchall()]

    def audiences(self) -> set[str]:
        """The distinct audiences of the documents (a handful: one per rule)."""
        return {str(r[0]) for r in self._db.query("SELECT DISTINCT audience FROM documents")}

    def labels(self) -> dict[str, list[str]]:
        """Every audience with the ids of its documents' chunks (to label vectors anew)."""
        out: dict[str, list[str]] = {}
        for chunk_id, audience in self._db.query(
            "SELECT c.id, d.audience FROM chunks c JOIN documents d ON d.id = c.document_id"
        ):
            out.setdefault(audience, []).append(chunk_id)
        return out

    def ids_by_hash(self, hashes: Sequence[str]) -> dict[str, str]:
        """One chunk id per known text hash (to reuse its vector)."""
        found: dict[str, str] = {}
        for start in range(0, len(hashes), 500):
            part = tuple(hashes[start : start + 500])
            marks = ",".join("?" * len(part))
            for row in self._db.query(
                f"SELECT hash, MIN(id) FROM chunks WHERE hash IN ({marks}) GROUP BY hash", part  # noqa: S608
            ):
                found[row[0]] = row[1]
        return found

    def owners(self) -> dict[str, str]:
        """Every chunk id with the path of its document."""
        rows = self._db.query(
            "SELECT c.id, d.path FROM chunks c JOIN documents d ON d.id = c.document_id"
        )
        return {r[0]: r[1] for r in rows}

    def chunks(self, ids: Sequence[str]) -> list[StoredChunk]:
        marks = ",".join("?" * len(ids))
        sql = f"{_CHUNK_SELECT} WHERE c.id IN ({marks})"
        rows = self._db.query(sql, tuple(ids))
        by_id = {r[0]: StoredChunk(**dict(r)) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def chunks_of(self, path: str) -> list[StoredChunk]:
        """A document's chunks in reading order."""
        rows = self._db.query(f"{_CHUNK_SELECT} WHERE d.path = ? ORDER BY c.ord", (path,))
        return [StoredChunk(**dict(r)) for r in rows]

    def compact(self, between: Callable[[], None] = lambda: None) -> None:
        """Erases what removed chunks left on disk (their words in the keyword index, their
        pages in the WAL), if any chunk was removed since the last time: once after a batch of
        removals, not per file (~0.3 s at 20k chunks, in steps; `between` runs between them)."""
        if KeywordIndex(self._db).compact(between):
            self._db.checkpoint()

    def counts(self) -> dict[str, int]:
        """Files by status, each status there (0 when none has it)."""
        rows = self._db.query("SELECT status, COUNT(*) FROM documents GROUP BY status")
        return {**dict.fromkeys(get_args(Status), 0), **{row[0]: int(row[1]) for row in rows}}

    def has_chunks(self) -> bool:
        return bool(self._db.query("SELECT 1 FROM chunks LIMIT 1"))

    def meta(self, key: str) -> str | None:
        rows = self._db.query("SELECT value FROM index_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO index_meta (key, value) VALUES (?, ?)",
                         (key, value))  # fmt: skip


def _upsert(conn: sqlite3.Connection, file: FileState, status: Status, error: str | None,
            pages: int | None, chunks: int) -> int:  # fmt: skip
    row = conn.execute(
        "INSERT INTO documents (path, size, mtime_ns, sha256, status, chunks, pages, error,"
        " indexed_at, audience) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO"
        " UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
        " sha256 = excluded.sha256, status = excluded.status, chunks = excluded.chunks,"
        " pages = excluded.pages, error = excluded.error, indexed_at = excluded.indexed_at,"
        " audience = excluded.audience RETURNING id",
        (file.path, file.size, file.mtime_ns, file.sha256, status, chunks, pages, error,
         time.time(), file.audience),
    ).fetchone()  # fmt: skip
    return int(row[0])


def _drop_chunks(conn: sqlite3.Connection, doc_id: int) -> list[str]:
    rows = conn.execute("DELETE FROM chunks WHERE document_id = ? RETURNING id", (doc_id,))
    return [r[0] for r in rows.fetchall()]


def _remove(conn: sqlite3.Connection, path: str) -> list[str]:
    row = conn.execute("SELECT id FROM documents WHERE path = ?", (path,)).fetchone()
    if row is None:
        return []
    dropped = _drop_chunks(conn, row[0])
    conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
    return dropped
