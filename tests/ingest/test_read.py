"""Reading files a hostile share controls: a link, a FIFO or a device swapped in between the
pipeline's check and its read is refused when opened, nothing is read from it, and the next
file is indexed; the document view refuses the same."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.embed.embedder import Embedder
from appliance.errors import NotFound
from appliance.ingest.folder import Kind, TooLarge, read_capped
from appliance.ingest.library import DocumentLibrary
from appliance.ingest.watch import FolderWatcher
from appliance.store.audience import EVERYTHING
from tests.ingest.test_watch import wait_for
from tests.ingest.world import World, make_world

NONCE = "environ-nonce-5d41402abc4b2a76"


@pytest.fixture
def world(tmp_path: Path, onnx_embedder: Embedder) -> World:
    return make_world(tmp_path, onnx_embedder)


def swap_after_check(world: World, path: str, swap: Callable[[], None]) -> None:
    """The real check sees the real file; the swap happens right after it, before the read."""
    check = world.pipeline.folder.kind

    def checked_then_swapped(checked: str) -> Kind:
        kind = check(checked)
        if checked == path and kind == "file":
            swap()
        return kind

    world.pipeline.folder.kind = checked_then_swapped  # type: ignore[method-assign]


def replace_with_link(full: Path, target: Path | str) -> Callable[[], None]:
    def swap() -> None:
        full.unlink()
        full.symlink_to(target)

    return swap


def replace_with_fifo(full: Path) -> Callable[[], None]:
    def swap() -> None:
        full.unlink()
        os.mkfifo(full)

    return swap


def bounded(call: Callable[[], object]) -> object:
    """`call` on a thread: a read that blocks (a FIFO) fails the test instead of hanging it."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(_outcome(call)), daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the read blocked the thread"
    if isinstance(result[0], Exception):
        raise result[0]
    return result[0]


def _outcome(call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as exc:
        return exc


def sync_bounded(world: World, path: str) -> object:
    return bounded(lambda: world.pipeline.sync(path))


def indexed_text(world: World) -> str:
    return " ".join(c.text for c in world.catalog.chunks(sorted(world.catalog.owners())))


@pytest.mark.parametrize("target", ["environ", "secret", "zero", "fifo"])
def test_a_file_swapped_between_check_and_read_is_not_read(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    monkeypatch.setenv("APPLIANCE_TEST_NONCE", NONCE)  # in /proc/self/environ of new processes
    secret = tmp_path / "settings.toml"
    secret.write_text(f'[web]\nsecret = "{NONCE}"\n')
    full = world.write("notes.md", "# Notes\n\nHarmless at check time.")
    swap = {
        "environ": replace_with_link(full, "/proc/self/environ"),
        "secret": replace_with_link(full, secret),
        "zero": replace_with_link(full, "/dev/zero"),
        "fifo": replace_with_fifo(full),
    }[target]
    swap_after_check(world, "notes.md", swap)
    assert sync_bounded(world, "notes.md") == "skipped"
    doc = world.doc("notes.md")
    reason = "symbolic link" if target != "fifo" else "not a regular file"
    assert reason in (doc.error or ""), doc.error
    assert doc.chunks == 0
    assert NONCE not in indexed_text(world)
    world.write("next.md", "# Next\n\nIndexed after the swap.")
    assert world.pipeline.sync("next.md") == "indexed"


def test_a_folder_swapped_for_a_link_on_the_way_is_not_followed(
    world: World, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "plan.md").write_text(f"# Plan\n\nThe secret is {NONCE}.")
    world.write("team/plan.md", "# Plan\n\nHarmless at check time.")

    def swap() -> None:
        (world.root / "team").rename(tmp_path / "old-team")
        (world.root / "team").symlink_to(outside)

    swap_after_check(world, "team/plan.md", swap)
    assert sync_bounded(world, "team/plan.md") == "skipped"
    assert "symbolic link" in (world.doc("team/plan.md").error or "")
    assert NONCE not in indexed_text(world)


def test_fifos_and_links_in_the_folder_are_passed_over(world: World, tmp_path: Path) -> None:
    os.mkfifo(world.root / "pipe.md")
    (world.root / "zero.txt").symlink_to("/dev/zero")
    world.write("real.md", "# Real\n\nIndexed.")
    done = world.pipeline.reconcile()
    assert done.files_total == 1
    assert world.status() == {"real.md": "indexed"}
    assert sync_bounded(world, "pipe.md") == "ignored"
    assert sync_bounded(world, "zero.txt") == "ignored"


def test_the_watcher_goes_on_after_a_fifo(world: World) -> None:
    watcher = FolderWatcher(world.pipeline, 0.2)
    watcher.start()
    try:
        world.write("first.md", "# First\n\nBefore the FIFO.")
        wait_for("first", lambda: world.status().get("first.md") == "indexed")
        os.mkfifo(world.root / "trap.txt")
        world.write("after.md", "# After\n\nAfter the FIFO.")
        wait_for("after", lambda: world.status().get("after.md") == "indexed")
    finally:
        watcher.stop()
    assert "trap.txt" not in world.status()


def test_a_file_larger_than_its_stat_says_is_read_only_to_the_cap() -> None:
    fd = os.open("/proc/self/maps", os.O_RDONLY)  # its stat says 0 bytes
    with pytest.raises(TooLarge):
        read_capped(fd, 100)


@pytest.mark.parametrize("swap", ["link", "fifo"])
def test_the_document_view_refuses_a_file_swapped_after_indexing(
    world: World, tmp_path: Path, swap: str
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(NONCE)
    full = world.write("doc.md", "# Doc\n\nIndexed.")
    world.pipeline.reconcile()
    library = DocumentLibrary(world.catalog, str(world.root))
    with library.open("doc.md", EVERYTHING) as file:
        assert b"Indexed." in file.read()
    (replace_with_link(full, secret) if swap == "link" else replace_with_fifo(full))()
    with pytest.raises(NotFound):
        # without O_NONBLOCK, a FIFO blocks here
        bounded(lambda: library.open("doc.md", EVERYTHING))
