"""DocumentLibrary: what the admin views and the source links read: the catalog, the indexing
progress, the collections, and a document's file or indexed text, confined to the folder."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import msgspec

from appliance.errors import NotFound
from appliance.ingest.folder import Refused, collection_of, open_inside
from appliance.store.audience import Reader
from appliance.store.catalog import Catalog, Document

_OVERLAP_CHARS = 2000  # longer than any chunk overlap (documents.chunk_overlap tokens)
_MIN_OVERLAP = 12  # shorter repeats are chance ("see the" + "exam"), not the chunks' overlap


class Passage(msgspec.Struct, frozen=True):
    """A stretch of a document's indexed text under one page and heading."""

    text: str
    page: int | None
    heading: str | None
    chunks: tuple[str, ...] = ()  # its chunks' ids: a citation link marks the passage by one


class DocumentLibrary:
    def __init__(
        self, catalog: Catalog, watch_dir: str, indexing: Callable[[], bool] = lambda: False
    ) -> None:
        self._catalog = catalog
        self.watch_dir = watch_dir
        self._indexing = indexing

    def documents(self, reader: Reader) -> list[Document]:
        """The documents `reader` may see (an admin: all of them)."""
        return [d for d in self._catalog.documents() if reader.may_see(d.audience)]

    def indexing(self) -> bool:
        """True while the watcher has files to read."""
        return self._indexing()

    def collections(self, reader: Reader) -> dict[str, int]:
        """Top-level subfolders holding indexed documents `reader` may see, with how many
        each holds (a folder of documents they may not see is not named)."""
        counts = Counter(
            collection_of(d.path)
            for d in self._catalog.documents()
            if d.status == "indexed" and collection_of(d.path) and reader.may_see(d.audience)
        )
        return dict(sorted(counts.items()))

    def open(self, path: str, reader: Reader) -> BinaryIO:
        """The file of indexed document `path` (relative to the watched folder), open.

        Anything else is "not found": a path the index does not hold (outside the folder, a
        hidden or skipped file), one `reader` may not see (the same answer: no hint that it
        exists), or one that is, when opened, a link or not a regular file (swapped in since
        it was indexed): see open_inside.
        """
        self._indexed(path, reader)
        try:
            return os.fdopen(open_inside(Path(self.watch_dir), path), "rb")
        except (Refused, OSError):
            raise NotFound(f"no document {path!r} in the watched folder") from None

    def passages(self, path: str, reader: Reader) -> list[Passage]:
        """The document's text as it is indexed (redacted where the documents policy says
        so), one passage per run of chunks under the same page and heading; not found for a
        reader who may not see it."""
        self._indexed(path, reader)
        passages: list[Passage] = []
        for chunk in self._catalog.chunks_of(path):
            last = passages[-1] if passages else None
            if last and (last.page, last.heading) == (chunk.page, chunk.heading):
                text = last.text + _after_overlap(last.text, chunk.text)
                passages[-1] = Passage(text, chunk.page, chunk.heading, (*last.chunks, chunk.id))
            else:
                passages.append(Passage(chunk.text, chunk.page, chunk.heading, (chunk.id,)))
        return passages

    def _indexed(self, path: str, reader: Reader) -> Document:
        parts = path.split("/")
        bad = not path or path.startswith("/") or "\\" in path or "\0" in path
        if bad or any(p in ("", ".", "..") for p in parts):
            raise NotFound(f"no document {path!r} in the watched folder")
        document = self._catalog.get(path)
        if (
            document is None
            or document.status != "indexed"
            or not reader.may_see(document.audience)
        ):
            raise NotFound(f"no document {path!r} in the watched folder")
        return document


def _after_overlap(before: str, chunk: str) -> str:
    """`chunk` without the start it repeats from the end of `before` (chunks overlap)."""
    tail = before[-_OVERLAP_CHARS:]
    for n in range(min(len(tail), len(chunk)), _MIN_OVERLAP - 1, -1):
        if tail.endswith(chunk[:n]):
            return chunk[n:]
    return " " + chunk
