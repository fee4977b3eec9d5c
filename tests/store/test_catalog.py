"""The document catalog: rows change in transactions; moves keep chunks; removals return ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.db import Database


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    return Catalog(Database(tmp_path / "appliance.db"))


def rows(prefix: str, texts: list[str]) -> list[ChunkRow]:
    return [ChunkRow(id=f"{prefix}{n}", ord=n, text=t, page=n + 1, heading="H", hash=f"h-{t}",
                     tokens=3) for n, t in enumerate(texts)]  # fmt: skip


def test_replacing_chunks_returns_the_old_ids(catalog: Catalog) -> None:
    state = FileState("a.md", 10, 1, "sha-a")
    assert catalog.replace_chunks(state, None, rows("x", ["one", "two"])) == []
    assert catalog.replace_chunks(state, 2, rows("y", ["three"])) == ["x0", "x1"]
    doc = catalog.get("a.md")
    assert doc is not None
    assert (doc.status, doc.chunks, doc.pages, doc.sha256) == ("indexed", 1, 2, "sha-a")
    assert catalog.owners() == {"y0": "a.md"}


def test_a_move_keeps_the_chunks_and_drops_what_the_target_had(catalog: Catalog) -> None:
    catalog.replace_chunks(FileState("old.md", 1, 1, "s1"), None, rows("o", ["a"]))
    catalog.replace_chunks(FileState("new.md", 1, 1, "s2"), None, rows("n", ["b"]))
    assert catalog.move("old.md", FileState("new.md", 1, 2, "s1")) == ["n0"]
    assert catalog.owners() == {"o0": "new.md"}
    assert catalog.get("old.md") is None


def test_settling_as_failed_drops_chunks_and_keeps_the_reason(catalog: Catalog) -> None:
    catalog.replace_chunks(FileState("a.pdf", 1, 1, "s"), 1, rows("x", ["a"]))
    assert catalog.settle(FileState("a.pdf", 2, 2, "t"), "failed", "damaged") == ["x0"]
    doc = catalog.get("a.pdf")
    assert doc is not None
    assert (doc.status, doc.error, doc.chunks) == ("failed", "damaged", 0)


def test_removing_a_folder_removes_what_is_under_it_only(catalog: Catalog) -> None:
    for path in ("sub/a.md", "sub/deep/b.md", "subway.md", "c.md"):
        catalog.replace_chunks(FileState(path, 1, 1, path), None, rows(path, ["t"]))
    assert sorted(catalog.remove("sub")) == ["sub/a.md0", "sub/deep/b.md0"]
    assert [d.path for d in catalog.documents()] == ["c.md", "subway.md"]


def test_ids_by_hash_finds_reusable_vectors(catalog: Catalog) -> None:
    catalog.replace_chunks(FileState("a.md", 1, 1, "s"), None, rows("x", ["one", "two"]))
    assert catalog.ids_by_hash(["h-two", "h-none"]) == {"h-two": "x1"}
    assert [c.text for c in catalog.chunks(["x1", "x0"])] == ["two", "one"]


def test_pending_and_requeue(catalog: Catalog) -> None:
    catalog.mark_pending(FileState("a.md", 5, 7))
    catalog.settle(FileState("b.bin", 1, 1), "skipped", "unsupported")
    catalog.replace_chunks(FileState("c.md", 1, 1, "s"), None, rows("x", ["one"]))
    catalog.requeue()
    assert {d.path: d.status for d in catalog.documents()} == {
        "a.md": "pending", "b.bin": "skipped", "c.md": "pending"}  # fmt: skip
