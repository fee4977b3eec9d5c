"""Keyword search over the chunks: SQLite FTS5 with BM25, kept in step with the catalog by
triggers (the same transaction writes both)."""

from __future__ import annotations

import re

from appliance.store.db import Database

_WORD = re.compile(r"\w+", re.UNICODE)


class KeywordIndex:
    def __init__(self, db: Database) -> None:
        self._db = db

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Chunk ids with their BM25 score (higher is better), best first."""
        words = _WORD.findall(query.lower())
        if not words or k <= 0:
            return []
        # Each word quoted (no FTS5 syntax from users), any of them may match; BM25 ranks.
        match = " OR ".join(f'"{w}"' for w in dict.fromkeys(words))
        rows = self._db.query(
            "SELECT c.id, -bm25(chunks_fts) AS score FROM chunks_fts "
            "JOIN chunks c ON c.rowid = chunks_fts.rowid WHERE chunks_fts MATCH ? "
            "ORDER BY bm25(chunks_fts) LIMIT ?", (match, k))  # fmt: skip
        return [(r[0], float(r[1])) for r in rows]
