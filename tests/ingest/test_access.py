"""Who may see a document, on real files, the real embedder, Chroma and SQLite: the nearest
`.access` file decides, a change of one relabels the chunks without embedding them again, a
broken one shuts the folder to all but admins, and `posix` mode reads the file's group."""

from __future__ import annotations

import grp
import logging
import os
from pathlib import Path

import pytest

from appliance.embed.embedder import Embedder
from appliance.store.audience import ADMINS_ONLY, EVERYONE, Reader, audience_of
from tests.ingest.world import World, make_world

POLICY = "# Salaries\n\nSalary bands are reviewed every March by the pay committee.\n"


@pytest.fixture
def world(tmp_path: Path, onnx_embedder: Embedder) -> World:
    return make_world(tmp_path, onnx_embedder)


def labels(world: World, path: str) -> set[str]:
    """The audience on each vector of the document's chunks, as Chroma holds it."""
    ids = [c.id for c in world.catalog.chunks_of(path)]
    got = world.index._collection.get(ids=ids, include=["metadatas"])
    return {str((m or {}).get("audience")) for m in got["metadatas"] or []}


def test_the_nearest_access_file_decides(world: World) -> None:
    world.write("open.md", POLICY)
    world.write("hr/.access", "# who may read HR's files\nHR\n\nPayroll Team\n")
    world.write("hr/salaries.md", POLICY)
    world.write("hr/board/.access", "board\n")
    world.write("hr/board/minutes.md", POLICY)
    world.write("hr/public/.access", "everyone\n")
    world.write("hr/public/holidays.md", POLICY)
    world.write("vault/.access", "")  # no group: admins only
    world.write("vault/keys.md", POLICY)
    world.pipeline.reconcile()
    audience = {d.path: d.audience for d in world.catalog.documents()}
    assert audience == {
        "open.md": EVERYONE,
        "hr/salaries.md": "hr\npayroll team",
        "hr/board/minutes.md": "board",
        "hr/public/holidays.md": EVERYONE,
        "vault/keys.md": ADMINS_ONLY,
    }
    assert ".access" not in " ".join(audience)  # never indexed itself
    for path, expected in audience.items():
        assert labels(world, path) == {expected}, path


def test_changing_an_access_file_relabels_without_embedding(world: World) -> None:
    world.write("hr/.access", "hr\n")
    world.write("hr/salaries.md", POLICY)
    world.write("hr/sub/bands.md", POLICY.replace("March", "April"))
    world.pipeline.reconcile()
    chunks = {c.id for c in world.catalog.chunks_of("hr/salaries.md")}
    embedded = world.embedder.embedded
    world.write("hr/.access", "hr\nfinance\n")
    assert world.pipeline.sync("hr/.access") == "access changed: 2 documents relabelled"
    assert world.embedder.embedded == embedded  # nothing embedded again
    assert {c.id for c in world.catalog.chunks_of("hr/salaries.md")} == chunks
    assert world.doc("hr/sub/bands.md").audience == "finance\nhr"
    assert labels(world, "hr/sub/bands.md") == {"finance\nhr"}
    (world.root / "hr/.access").unlink()  # gone: everyone
    assert world.pipeline.sync("hr/.access") == "access changed: 2 documents relabelled"
    assert labels(world, "hr/salaries.md") == {EVERYONE}


def test_a_change_while_stopped_is_seen_at_the_next_pass(world: World) -> None:
    world.write("hr/salaries.md", POLICY)
    world.pipeline.reconcile()
    assert world.doc("hr/salaries.md").audience == EVERYONE
    world.write("hr/.access", "hr\n")  # no event: the server was down
    world.pipeline.reconcile()
    assert world.doc("hr/salaries.md").audience == "hr"
    assert labels(world, "hr/salaries.md") == {"hr"}


def test_a_moved_file_takes_the_audience_of_its_new_folder(world: World) -> None:
    world.write("hr/.access", "hr\n")
    world.write("drafts/salaries.md", POLICY)
    world.pipeline.reconcile()
    embedded = world.embedder.embedded
    (world.root / "drafts/salaries.md").rename(world.root / "hr/salaries.md")
    assert world.pipeline.sync("hr/salaries.md") == "moved"
    assert world.embedder.embedded == embedded
    assert world.doc("hr/salaries.md").audience == "hr"
    assert labels(world, "hr/salaries.md") == {"hr"}


def test_an_unreadable_access_file_shuts_its_folder_to_admins(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.write("hr/.access", b"\xff\xfe not text")
    world.write("hr/salaries.md", POLICY)
    with caplog.at_level(logging.WARNING):
        world.pipeline.reconcile()
    assert world.doc("hr/salaries.md").audience == ADMINS_ONLY
    assert "hr/.access cannot be read (it is not UTF-8 text)" in caplog.text
    link = world.root / "legal/.access"
    link.parent.mkdir()
    link.symlink_to(world.root / "hr/.access")
    world.write("legal/contract.md", POLICY)
    world.pipeline.reconcile()
    assert world.doc("legal/contract.md").audience == ADMINS_ONLY  # a link is not followed


def test_vectors_stored_before_audiences_are_labelled_once(world: World) -> None:
    world.write("hr/.access", "hr\n")
    world.write("hr/salaries.md", POLICY)
    world.pipeline.reconcile()
    ids = [c.id for c in world.catalog.chunks_of("hr/salaries.md")]
    world.index._collection.update(ids=ids, metadatas=[{"audience": "*"}] * len(ids))  # as old
    world.catalog.set_meta("vectors.labelled", "0")  # an index made before schema 13
    world.pipeline.repair()
    assert labels(world, "hr/salaries.md") == {"hr"}


def test_posix_mode_reads_the_files_group(tmp_path: Path, onnx_embedder: Embedder) -> None:
    world = make_world(tmp_path, onnx_embedder, access="posix")
    mine = grp.getgrgid(os.getgid()).gr_name
    world.write("hr/.access", "nobody-reads-this\n")  # ignored in posix mode
    path = world.write("hr/salaries.md", POLICY)
    world.pipeline.reconcile()
    assert world.doc("hr/salaries.md").audience == audience_of([mine])
    other = next(g for g in grp.getgrall() if g.gr_gid != os.getgid())
    os.chown(path, -1, other.gr_gid)  # chgrp: size and mtime stay
    assert world.pipeline.sync("hr/salaries.md") == "unchanged"
    assert world.doc("hr/salaries.md").audience == audience_of([other.gr_name])


def test_readers_see_everyone_s_and_their_groups_documents() -> None:
    engineer = Reader(groups=frozenset({"engineering"}))
    assert engineer.may_see(EVERYONE)
    assert engineer.may_see("engineering\nhr")
    assert not engineer.may_see("hr")
    assert not engineer.may_see(ADMINS_ONLY)
    assert Reader(admin=True).may_see(ADMINS_ONLY)
    assert engineer.allowed({EVERYONE, "hr", "engineering"}) == ["*", "engineering"]
    assert engineer.allowed({EVERYONE, "engineering"}) is None  # all of them: no filter
    assert audience_of(["HR ", "hr", "Everyone"]) == EVERYONE
