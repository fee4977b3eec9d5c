"""Keyword search over the chunks: SQLite FTS5 with BM25, kept in step with the catalog by
triggers (the same transaction writes both).

FTS5 scores every chunk that holds any query word, so a query with a common word costs as
much as the chunks that word is in. Two things keep that small without changing the ranking
of the words searched: the counts BM25 weighs words by are cached per version of the index,
and the chunks that hold only the query's most common words are not scored when their best
possible score is below the k-th best score found among the others (see `ranked`).
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import NamedTuple

import msgspec

from appliance.store.db import Database

_WORD = re.compile(r"\w+", re.UNICODE)
# FTS5's own records: the averages (1: its row count, then token totals) and the structure
# (10: segments and a write counter), rewritten by every transaction that changes the index,
# whoever writes.
_VERSION = "SELECT id, block FROM chunks_fts_data WHERE id IN (1, 10) ORDER BY id"
_CACHED_WORDS = 20_000  # document frequencies kept per version of the index
K1 = 1.2  # the constants of FTS5's bm25()
# Index pages one merge step writes (~50 ms for 200 at 20k chunks): the lock is free between.
_MERGE_PAGES = 100
# Chunk ids and BM25 scores of a MATCH, best first, ties in rowid order (as `ORDER BY rank`
# gives them; SQLite keeps only the best `LIMIT` rows while scoring instead of sorting all).
_RANKED = (
    "SELECT c.id, -f.s, f.rowid FROM ({}) f JOIN chunks c ON c.rowid = f.rowid "
    "ORDER BY f.s, f.rowid"
)
_MATCH = "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?{}"
# A reader who may not see every document: only the chunks of audiences they may see match,
# so a forbidden chunk is never among the k best (filtered before ranking, not after). The
# smaller side is named: the chunks they may see (IN), or those they may not (NOT IN); `+rowid`
# keeps SQLite from handing the list to FTS5 as rowid lookups (a MATCH per listed row).
_SEEN = (" AND +rowid {} (SELECT c.rowid FROM chunks c JOIN documents d ON d.id = c.document_id"
         " WHERE d.audience IN ({}))")  # fmt: skip


def _queries(audiences: int | None, exclude: bool = False) -> tuple[str, str]:
    """The one-part and two-part ranked queries, for `audiences` placeholders (None: all),
    whose chunks are kept, or left out with `exclude`."""
    where = "" if audiences is None else _SEEN.format(
        "NOT IN" if exclude else "IN", ",".join("?" * audiences))  # fmt: skip
    match = _MATCH.format(where)
    return (_RANKED.format(f"{match} ORDER BY s, rowid LIMIT ?"),
            _RANKED.format(f"{match} UNION ALL {match} ORDER BY s, rowid LIMIT ?"))  # fmt: skip


_ONE, _TWO = _queries(None)


class _Filter(NamedTuple):
    named: tuple[str, ...]  # audiences
    exclude: bool  # their chunks are left out (else: only theirs are kept)


class _Stats:
    """What pruning needs of one version of the index: its size and each word's count."""

    def __init__(self, version: tuple[bytes, ...], total: int) -> None:
        self.version, self.total = version, total
        self.docs: dict[str, int] = {}


class Terms(msgspec.Struct, frozen=True):
    """A query's words as they will be searched: rarest first (the order BM25 adds them up
    in, whichever query below scores a chunk), with the chunks that hold each and the most
    each can add to a chunk's score."""

    words: list[str]
    docs: list[int]
    most: list[float]


class KeywordIndex:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._stats = _Stats((), 0)

    def search(
        self, query: str, k: int, audiences: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """Chunk ids with their BM25 score (higher is better), best first."""
        return self.ranked(self.terms(query), k, audiences)

    def terms(self, query: str) -> Terms:
        """The words of `query` worth searching, weighed against the index as it is now: the
        quick half of `search` (the caller may start other work between the two)."""
        words = list(dict.fromkeys(_WORD.findall(query.lower())))
        if not words:
            return Terms([], [], [])
        stats = self._current()
        docs = {w: self._docs(stats, w) for w in words}
        # A word no chunk holds adds nothing to any score: it is not asked for.
        kept = sorted(
            (w for w in _telling(words, docs, stats.total) if docs[w]), key=docs.__getitem__
        )
        return Terms(kept, [docs[w] for w in kept], [_most(stats.total, docs[w]) for w in kept])

    def ranked(
        self, terms: Terms, k: int, audiences: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """The k best chunks for `terms`, as one query for all its words ranks them; only
        among the chunks of documents of `audiences` (None: all), filtered before ranking.
        (Word statistics stay those of the whole index, as in search engines' document-level
        security: they weigh words, they return no text.)

        A chunk that holds none of the rarer words scores less than the sum of the common
        words' `most`. So the chunks of the rarest words are scored first (with every word);
        the k-th best of them is a floor under the k-th best overall, and the common words
        whose `most` add up to less than it need not find chunks of their own. Every chunk
        scored gets the score the full query gives it, added up in the same order.
        """
        words, most = terms.words, terms.most
        if not words or k <= 0 or audiences == []:
            return []
        seen = self._filter(audiences) if audiences is not None else None
        head = 1
        while head < len(words) and sum(terms.docs[:head]) < k:
            head += 1
        best = self._scored(words, 0, head, k, seen)
        floor = best[-1][1] if len(best) == k else 0.0
        cut, below = len(words), 0.0
        while cut > head and (below + most[cut - 1]) * (1 + 1e-9) < floor:
            below += most[cut - 1]
            cut -= 1
        if cut > head:  # the chunks of the words between, not scored yet
            more = self._scored(words, head, cut, k, seen)
            best = sorted(best + more, key=lambda r: (-r[1], r[2]))[:k]  # ties: rowid order
        return [(i, s) for i, s, _ in best]

    def _scored(
        self, words: list[str], start: int, cut: int, k: int, seen: _Filter | None
    ) -> list[tuple[str, float, int]]:
        """The k best chunks that hold any of `words[start:cut]` but none of `words[:start]`
        (those were scored before), scored with all of `words`: a word a chunk doesn't hold
        adds exactly 0, the others are added in the order of `words`."""
        match = _any(words[start:cut])
        if start:
            match = f"({match}) NOT ({_any(words[:start])})"
        one, two = (_ONE, _TWO) if seen is None else _queries(len(seen.named), seen.exclude)
        named = seen.named if seen is not None else ()
        if cut >= len(words):
            rows = self._db.query(one, (match, *named, k))
        else:  # the common words match or not: both halves score with them
            rest = _any(words[cut:])
            rows = self._db.query(two, (f"({match}) AND ({rest})", *named,
                                        f"({match}) NOT ({rest})", *named, k))  # fmt: skip
        return [(r[0], float(r[1]), int(r[2])) for r in rows]

    def _filter(self, audiences: Sequence[str]) -> _Filter:
        """The audiences to name in the query: those seen, or those not, whichever holds
        fewer chunks (the list SQLite builds for each query is that long)."""
        allowed = set(audiences)
        chunks = {str(a): int(n) for a, n in self._db.query(
            "SELECT audience, SUM(chunks) FROM documents GROUP BY audience")}  # fmt: skip
        seen = sum(n for a, n in chunks.items() if a in allowed)
        unseen = [a for a in chunks if a not in allowed]
        if sum(chunks.values()) - seen < seen:
            return _Filter(tuple(unseen), exclude=True)
        return _Filter(tuple(sorted(allowed)), exclude=False)

    def compact(self, between: Callable[[], None] = lambda: None) -> bool:
        """Erases what deleted chunks left in the index, if a chunk was deleted since the last
        time; returns whether it did. FTS5 keeps a deleted chunk's words in its segments
        (with a mark that hides them) until the segments are merged: they are merged into one,
        as `optimize` does, but in steps with the database free between them (`between` runs
        there), so that searches and chats are not held up at 100k chunks.

        The flag the deleting transaction set becomes 'keywords.merging' in the first step
        (a chunk deleted during the merge sets a new flag, for the next time) and is cleared in
        the step that finds nothing left: a crash or error between steps leaves it, and the
        next call merges again."""
        with self._db.transaction() as conn:
            if conn.execute("DELETE FROM index_meta WHERE key = 'keywords.erased'").rowcount:
                conn.execute(
                    "INSERT INTO index_meta (key, value) VALUES ('keywords.merging', '1')"
                    " ON CONFLICT(key) DO NOTHING"
                )
            elif not conn.execute(
                "SELECT 1 FROM index_meta WHERE key = 'keywords.merging'"
            ).fetchone():
                return False
            _merge(conn, -_MERGE_PAGES)  # negative: all segments, whatever their level
        done = False
        while not done:  # positive: go on with that merge until it has nothing left to do
            between()
            with self._db.transaction() as conn:
                if done := _merge(conn, _MERGE_PAGES) < 2:
                    conn.execute("DELETE FROM index_meta WHERE key = 'keywords.merging'")
        return True

    def _current(self) -> _Stats:
        """The statistics of the index as it is now: reused until a write changes it."""
        blocks = {r[0]: bytes(r[1]) for r in self._db.query(_VERSION)}
        version = (blocks.get(1, b""), blocks.get(10, b""))
        stats = self._stats
        if stats.version != version or len(stats.docs) > _CACHED_WORDS:
            stats = self._stats = _Stats(version, _varint(version[0]))
        return stats

    def _docs(self, stats: _Stats, word: str) -> int:
        """How many chunks match `word` as FTS5 reads it (stemmed, split as its tokenizer
        splits): the count BM25 weighs it by. (The fts5vocab table holds stems: a lookup
        there misses every word whose stem differs, "policies" or "was", however common.)"""
        found = stats.docs.get(word)
        if found is None:
            found = stats.docs[word] = self._db.query(
                "SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (f'"{word}"',)
            )[0][0]
        return found


def _merge(conn: sqlite3.Connection, pages: int) -> int:
    """One FTS5 merge step; the rows it changed (under 2: there was nothing left to merge)."""
    before = conn.total_changes
    conn.execute("INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('merge', ?)", (pages,))
    return conn.total_changes - before


def _any(words: list[str]) -> str:
    """An FTS5 query for chunks with any of `words`, each quoted: no FTS5 syntax from users."""
    return " OR ".join(f'"{w}"' for w in words)


# The words of a question that say nothing of its subject. Rare in policy text, BM25 would
# weigh them high: "how" and "what" would pull in the one chunk that explains how to do what.
_STOP_TEXT = """
a about after all also am an and any are as at be been before but by can could did do does
for from had has have how i if in into is it its may me might must my no not of on or our
shall should so than that the their them then there these they this those to up us was we
were what when where which who whom whose why will with would you your get got
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
# Below this many chunks a fifth of them is a handful: the frequency rule would drop the very
# words that tell a small library's documents apart.
_SMALL_INDEX = 100


def _telling(words: list[str], docs: dict[str, int], total: int) -> list[str]:
    """Drops stop words, and words found in more than a fifth of the chunks ("policy" in a
    folder of policies): they barely move BM25, yet make it score most of the index. If all
    are dropped, the rarest word stays."""
    kept = [
        w for w in words if w not in STOP_WORDS and (total < _SMALL_INDEX or docs[w] <= total / 5)
    ]
    return kept or [min(words, key=docs.__getitem__)]


def _most(total: int, docs: int) -> float:
    """More than a word found in `docs` of `total` chunks can add to a chunk's BM25 score:
    its IDF (as FTS5 computes it) times k1 + 1, which the term-frequency part approaches."""
    idf = math.log((0.5 + total - docs) / (0.5 + docs))
    return max(idf, 1e-6) * (K1 + 1)


def _varint(data: bytes) -> int:
    """The SQLite varint `data` starts with (0 when empty): FTS5's row count."""
    value = 0
    for i, byte in enumerate(data[:9]):
        if i == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            break
    return value
