"""A real index over a watched folder in tmp_path, and the check that it equals the folder."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.embed.embedder import Embedder, Vectors
from appliance.ingest.access import AccessRules, Mode
from appliance.ingest.chunk import Chunker
from appliance.ingest.folder import ignored
from appliance.ingest.pipeline import IngestPipeline
from appliance.ingest.sandbox import Sandbox
from appliance.ingest.types import Limits
from appliance.store.catalog import Catalog
from appliance.store.chroma import ChromaIndex
from appliance.store.db import Database


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.embedded = 0

    name = property(lambda self: self.inner.name)
    dim = property(lambda self: self.inner.dim)
    max_tokens = property(lambda self: self.inner.max_tokens)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return self.inner.token_spans(text)

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded += len(texts)
        return self.inner.embed(texts)


@dataclass
class World:
    root: Path
    db: Database
    catalog: Catalog
    index: ChromaIndex
    embedder: CountingEmbedder
    pipeline: IngestPipeline

    def write(self, path: str, data: bytes | str) -> Path:
        full = self.root / path
        full.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            full.write_text(data, encoding="utf-8")
        else:
            full.write_bytes(data)
        return full

    def status(self) -> dict[str, str]:
        return {d.path: d.status for d in self.catalog.documents()}

    def doc(self, path: str):  # type: ignore[no-untyped-def]
        found = self.catalog.get(path)
        assert found is not None, f"{path} not in the catalog"
        return found


def make_world(
    data: Path,
    embedder: Embedder,
    *,
    size: int = 64,
    overlap: int = 8,
    max_file_bytes: int = 10 * 2**20,
    limits: Limits | None = None,
    redact: Callable[[str], str] | None = None,
    sandbox: Sandbox | None = None,
    access: Mode = "file",
) -> World:
    root = data / "documents"
    root.mkdir(parents=True, exist_ok=True)
    db = Database(data / "appliance.db")
    catalog = Catalog(db)
    counting = CountingEmbedder(embedder)
    index = ChromaIndex(data / "chroma", embedder.name)
    pipeline = IngestPipeline(
        root,
        catalog,
        index,
        counting,
        Chunker(counting.token_spans, size, overlap),
        max_file_bytes=max_file_bytes,
        limits=limits or Limits(),
        redact=redact,
        sandbox=sandbox,
        access=AccessRules(root, access),
    )
    return World(root, db, catalog, index, counting, pipeline)


def assert_index_equals_folder(world: World) -> None:
    """Every file has its row; every indexed row matches its bytes and owns exactly its chunks,
    each with one vector; no vector without a chunk; no row without a file."""
    on_disk = {
        p.relative_to(world.root).as_posix(): p
        for p in world.root.rglob("*")
        if p.is_file() and not p.is_symlink() and not ignored(p.relative_to(world.root).as_posix())
    }
    docs = {d.path: d for d in world.catalog.documents()}
    assert set(docs) == set(on_disk)
    owners = world.catalog.owners()
    for path, doc in docs.items():
        assert doc.status != "pending", path
        if doc.status == "indexed":
            assert doc.sha256 == hashlib.sha256(on_disk[path].read_bytes()).hexdigest(), path
        assert sum(1 for p in owners.values() if p == path) == doc.chunks, path
    assert world.index.ids() == set(owners)
