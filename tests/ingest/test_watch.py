"""The folder watcher on a real folder: start-up pass, then adds, edits, renames, deletes and
half-written files, each seen through watchfiles' real events."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.embed.embedder import Embedder
from appliance.ingest.watch import FolderWatcher
from appliance.store.catalog import ChunkRow, FileState
from tests.ingest.samples import junk_bytes
from tests.ingest.world import World, assert_index_equals_folder, make_world

SETTLE_S = 0.5


def wait_for(what: str, predicate: Callable[[], bool], limit: float = 30) -> None:
    """Polls until `predicate` holds: a bounded wait, not a timing check."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture
def watched(tmp_path: Path, onnx_embedder: Embedder) -> Iterator[World]:
    world = make_world(tmp_path, onnx_embedder)
    world.write("before-start.md", "# Old\n\nWritten while the appliance was down.")
    watcher = FolderWatcher(world.pipeline, SETTLE_S)
    watcher.start()
    wait_for("the start-up pass", lambda: world.status() == {"before-start.md": "indexed"})
    yield world
    watcher.stop()


def settled(world: World, expected: dict[str, str]) -> Callable[[], bool]:
    return lambda: world.status() == expected


def test_add_edit_rename_delete_are_followed(watched: World) -> None:
    watched.write("a.md", "# A\n\nAlpha policy text.")
    wait_for("add", settled(watched, {"a.md": "indexed", "before-start.md": "indexed"}))
    watched.write("a.md", "# A\n\nAlpha policy text, amended.")
    wait_for("edit", lambda: "amended" in " ".join(
        c.text for c in watched.catalog.chunks(sorted(watched.catalog.owners()))))  # fmt: skip
    embedded = watched.embedder.embedded
    (watched.root / "a.md").rename(watched.root / "b.md")
    wait_for("rename", settled(watched, {"b.md": "indexed", "before-start.md": "indexed"}))
    assert watched.embedder.embedded == embedded
    (watched.root / "b.md").unlink()
    wait_for("delete", settled(watched, {"before-start.md": "indexed"}))
    assert_index_equals_folder(watched)


def test_a_file_still_being_written_is_not_read_half_written(watched: World) -> None:
    stored: list[str | None] = []  # every version of a file the index took in
    replace = watched.catalog.replace_chunks

    def spy(file: FileState, pages: int | None, chunks: list[ChunkRow]) -> list[str]:
        stored.append(file.sha256)
        return replace(file, pages, chunks)

    watched.catalog.replace_chunks = spy  # type: ignore[method-assign]
    parts = [f"Part {n}: a paragraph of the long report being copied in.\n\n" for n in range(8)]
    path = watched.root / "copying.md"
    seen = set()
    with path.open("w", encoding="utf-8") as out:
        for part in parts:
            out.write(part)
            out.flush()
            time.sleep(SETTLE_S / 4)  # a slow copy, yet faster than the settle time
            seen.add(watched.status().get("copying.md"))
    assert "pending" in seen  # listed as waiting while it is being written
    final = hashlib.sha256(path.read_bytes()).hexdigest()
    wait_for("indexed once complete", lambda: watched.status().get("copying.md") == "indexed")
    assert stored == [final]  # read once, complete; never a partial version


def test_a_bad_file_does_not_stop_the_watcher(watched: World) -> None:
    watched.write("junk.txt", junk_bytes(4000, seed=7))
    watched.write("good.md", "Still indexed after the junk.")
    wait_for("both settled", settled(watched, {"junk.txt": "failed", "good.md": "indexed",
                                               "before-start.md": "indexed"}))  # fmt: skip
    watched.write("later.md", "And this one too.")
    wait_for("later", lambda: watched.status().get("later.md") == "indexed")
    assert_index_equals_folder(watched)


def test_a_folder_moved_in_and_out(watched: World, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "x.md").write_text("Moved in as a folder.")
    outside.rename(watched.root / "team")
    wait_for("folder in", lambda: watched.status().get("team/deep/x.md") == "indexed")
    (watched.root / "team").rename(tmp_path / "gone")
    wait_for("folder out", settled(watched, {"before-start.md": "indexed"}))
    assert_index_equals_folder(watched)


def test_without_watching_the_folder_is_read_once_at_start(tmp_path: Path,
                                                          onnx_embedder: Embedder) -> None:
    world = make_world(tmp_path, onnx_embedder)
    world.write("a.md", "Read at start.")
    watcher = FolderWatcher(world.pipeline, SETTLE_S, watch=False)
    watcher.start()
    assert watcher.idle.wait(30)
    watcher.stop()
    assert world.status() == {"a.md": "indexed"}
