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
        words = list(dict.fromkeys(_WORD.findall(query.lower())))
        if not words or k <= 0:
            return []
        words = self._telling(words)
        # Each word quoted (no FTS5 syntax from users), any of them may match; BM25 ranks.
        match = " OR ".join(f'"{w}"' for w in words)
        # FTS5 ranks `ORDER BY rank LIMIT` inside the index; the join comes after, on k rows.
        rows = self._db.query(
            "SELECT c.id, -f.rank FROM (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts "
            "MATCH ? ORDER BY rank LIMIT ?) f JOIN chunks c ON c.rowid = f.rowid "
            "ORDER BY f.rank", (match, k))  # fmt: skip
        return [(r[0], float(r[1])) for r in rows]

    def _telling(self, words: list[str]) -> list[str]:
        """Drops words found in more than a fifth of the chunks ("the", "policy" in a folder
        of policies): they barely move BM25, yet make it score most of the index. If all are
        that common, the rarest one stays."""
        total = self._db.query("SELECT COUNT(*) FROM chunks")[0][0] or 1
        marks = ",".join("?" * len(words))
        # The vocabulary holds porter stems: a word whose stem differs ("policies") is not
        # found there and simply stays in the query.
        sql = f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})"  # noqa: S608
        docs = {r[0]: r[1] for r in self._db.query(sql, tuple(words))}
        kept = [w for w in words if docs.get(w, 0) <= total / 5]
        return kept or [min(words, key=lambda w: docs.get(w, 0))]
