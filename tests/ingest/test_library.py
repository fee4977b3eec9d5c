"""The library's file access: only indexed documents, only inside the watched folder, read from
the descriptor that was checked (a link swapped in on the way is refused)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.embed.fake import HashingEmbedder
from appliance.errors import NotFound
from appliance.ingest.library import DocumentLibrary, _after_overlap
from appliance.store.audience import EVERYTHING
from tests.ingest.world import make_world


@pytest.fixture
def library(tmp_path: Path) -> DocumentLibrary:
    world = make_world(tmp_path, HashingEmbedder(), size=64, overlap=8)
    world.write("hr/leave.md", "# Leave\n\n25 days a year.")
    world.pipeline.reconcile()
    outside = tmp_path / "outside/hr"
    outside.mkdir(parents=True)
    (outside / "leave.md").write_text("secret")
    return DocumentLibrary(world.catalog, str(world.root))


def test_an_indexed_document_opens(library: DocumentLibrary) -> None:
    with library.open("hr/leave.md", EVERYTHING) as file:
        assert file.read().startswith(b"# Leave")


@pytest.mark.parametrize("swap", ["file", "folder"])
def test_a_link_swapped_in_after_indexing_is_refused(library: DocumentLibrary, tmp_path: Path,
                                                     swap: str) -> None:  # fmt: skip
    root = Path(library.watch_dir)
    if swap == "file":
        (root / "hr/leave.md").unlink()
        os.symlink(tmp_path / "outside/hr/leave.md", root / "hr/leave.md")
    else:
        (root / "hr").rename(root / "hr-away")
        os.symlink(tmp_path / "outside/hr", root / "hr")
    with pytest.raises(NotFound):
        library.open("hr/leave.md", EVERYTHING)


@pytest.mark.parametrize("path", ["../outside/hr/leave.md", "/etc/passwd", "hr/../hr/leave.md",
                                  "hr//leave.md", "hr\\leave.md", "hr/missing.md", ""])  # fmt: skip
def test_paths_the_index_does_not_hold_are_not_found(library: DocumentLibrary, path: str) -> None:
    with pytest.raises(NotFound):
        library.open(path, EVERYTHING)
    with pytest.raises(NotFound):
        library.passages(path, EVERYTHING)


def test_chunks_are_joined_without_their_overlap_or_chance_repeats() -> None:
    assert _after_overlap("the travel desk books all flights", "books all flights early.") == (
        " early.")
    assert _after_overlap("see the", "exam rules") == " exam rules"
