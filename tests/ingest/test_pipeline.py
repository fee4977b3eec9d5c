"""The ingest pipeline on real files, the real embedder, Chroma and SQLite: the index follows
the folder through adds, edits, renames, copies, deletes and bad files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.config import PII_ENTITIES
from appliance.embed.embedder import Embedder
from appliance.ingest.types import Limits
from appliance.pii.policy import Policy, Privacy
from appliance.pii.redactor import Redactor
from tests.ingest.samples import (
    docx_bytes,
    encrypted_pdf_bytes,
    junk_bytes,
    pdf_bytes,
    zip_bomb_docx,
)
from tests.ingest.world import World, assert_index_equals_folder, make_world

HANDBOOK = """# Handbook

## Leave

Employees get 25 days of paid leave per year. Requests go to the manager.

## Travel

Book trains for trips under 500 km. Expenses are refunded within 30 days.
"""


@pytest.fixture
def world(tmp_path: Path, onnx_embedder: Embedder) -> World:
    return make_world(tmp_path, onnx_embedder)


def long_text(paragraphs: int) -> str:
    return "\n\n".join(f"Paragraph {n}: the policy for topic {n} says employees must file "
                       f"form {n} with the office of section {n} before the deadline."
                       for n in range(paragraphs))  # fmt: skip


def test_every_format_is_indexed_with_pages_and_headings(world: World) -> None:
    world.write("handbook.md", HANDBOOK)
    world.write("sub/report.pdf", pdf_bytes(["Page one text.", "Page two text.", "Third."]))
    world.write("sub/memo.docx", docx_bytes([("Heading 1", "Memo"), ("Normal", "Hello all.")]))
    world.write("page.html", "<h1>Intranet</h1><p>Welcome</p><script>var x;</script>")
    world.write("people.csv", "name,role\nAda,engineer\n")
    world.write("notes.txt", "Plain notes.")
    done = world.pipeline.reconcile()
    assert done.files_done == 6
    assert done.failed == 0
    assert set(world.status().values()) == {"indexed"}
    pdf = world.doc("sub/report.pdf")
    assert pdf.pages == 3
    chunks = world.catalog.chunks(sorted(world.catalog.owners()))
    assert {c.page for c in chunks if c.path == "sub/report.pdf"} == {1, 2, 3}
    assert {c.heading for c in chunks if c.path == "handbook.md"} >= {"Handbook > Leave"}
    assert not any("var x" in c.text for c in chunks)
    assert_index_equals_folder(world)


def test_an_edit_replaces_the_chunks_and_a_delete_removes_them(world: World) -> None:
    world.write("a.md", HANDBOOK)
    world.pipeline.reconcile()
    world.write("a.md", HANDBOOK.replace("25 days", "30 days"))
    assert world.pipeline.sync("a.md") == "indexed"
    texts = " ".join(c.text for c in world.catalog.chunks(sorted(world.catalog.owners())))
    assert "30 days" in texts
    assert "25 days" not in texts
    assert_index_equals_folder(world)
    (world.root / "a.md").unlink()
    assert world.pipeline.sync("a.md") == "removed"
    assert world.status() == {}
    assert world.index.ids() == set()


def test_a_rename_or_a_copy_embeds_nothing_again(world: World) -> None:
    world.write("a.md", HANDBOOK)
    world.pipeline.reconcile()
    ids = set(world.catalog.owners())
    before = world.embedder.embedded
    (world.root / "a.md").rename(world.root / "renamed.md")
    assert world.pipeline.sync("renamed.md") == "moved"
    assert world.pipeline.sync("a.md") == "removed"
    assert set(world.catalog.owners()) == ids  # the same chunks, under the new name
    world.write("copy.md", HANDBOOK)
    assert world.pipeline.sync("copy.md") == "indexed"
    chunk_ids = set(world.catalog.owners())
    os.utime(world.root / "renamed.md", ns=(1, 1))
    world.pipeline.queue("renamed.md")  # as the watcher does on the event
    assert world.status()["renamed.md"] == "pending"
    assert world.pipeline.sync("renamed.md") == "unchanged"
    assert world.status()["renamed.md"] == "indexed"
    assert set(world.catalog.owners()) == chunk_ids  # not even re-chunked
    assert world.embedder.embedded == before
    assert_index_equals_folder(world)


def test_editing_one_paragraph_embeds_only_what_changed(world: World) -> None:
    world.write("long.md", long_text(40))
    world.pipeline.reconcile()
    total = world.doc("long.md").chunks
    before = world.embedder.embedded
    world.write("long.md", long_text(40).replace("topic 33 says", "topic 33 now says"))
    world.pipeline.sync("long.md")
    assert 0 < world.embedder.embedded - before <= 3 < total
    assert_index_equals_folder(world)


BAD_FILES = {
    "corrupt.pdf": (pdf_bytes(["Some text."])[:200], "not a readable PDF"),
    "locked.pdf": (encrypted_pdf_bytes(["Secret text."]), "password"),
    "empty.md": (b"", "empty"),
    "junk.txt": (junk_bytes(5000, seed=3), "binary"),
    "huge.txt": (b"big text " * 300_000, "over the limit"),
    "bomb.docx": (zip_bomb_docx(8 * 2**20), "zip bomb"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_fails_with_a_reason_and_nothing_else_is_lost(tmp_path: Path,
                                                                  onnx_embedder: Embedder,
                                                                  name: str) -> None:  # fmt: skip
    world = make_world(tmp_path, onnx_embedder, max_file_bytes=2**20,
                       limits=Limits(max_unpacked_bytes=2**20))  # fmt: skip
    world.write("good.md", HANDBOOK)
    data, reason = BAD_FILES[name]
    world.write(name, data)
    world.write("later.txt", "Written after the bad file.")
    done = world.pipeline.reconcile()
    assert done.failed == 1
    doc = world.doc(name)
    assert doc.status == "failed"
    assert doc.chunks == 0
    assert reason in (doc.error or ""), doc.error
    assert world.status() == {"good.md": "indexed", name: "failed", "later.txt": "indexed"}
    assert_index_equals_folder(world)


def test_a_good_file_turned_bad_loses_its_old_chunks(world: World) -> None:
    world.write("r.pdf", pdf_bytes(["Quarterly numbers."]))
    world.pipeline.reconcile()
    world.write("r.pdf", b"%PDF-1.4 garbage")
    assert world.pipeline.sync("r.pdf") == "failed"
    assert world.catalog.owners() == {}
    assert_index_equals_folder(world)


def test_unsupported_and_hidden_files(world: World) -> None:
    world.write("photo.png", b"\x89PNG....")
    world.write(".hidden.md", "secret")
    world.write("~$lock.docx", b"lock")
    world.write("download.md.part", "half")
    world.pipeline.reconcile()
    doc = world.doc("photo.png")
    assert doc.status == "skipped"
    assert ".png" in (doc.error or "")
    assert set(world.status()) == {"photo.png"}


def test_a_folder_renamed_or_deleted_is_followed(world: World) -> None:
    world.write("team/a.md", HANDBOOK)
    world.write("team/deep/b.txt", "Deep notes.")
    world.pipeline.reconcile()
    (world.root / "team").rename(world.root / "group")
    world.pipeline.sync("group")
    world.pipeline.sync("team")
    assert set(world.status()) == {"group/a.md", "group/deep/b.txt"}
    for path in ("group/deep/b.txt", "group/a.md"):
        (world.root / path).unlink()
    (world.root / "group/deep").rmdir()
    (world.root / "group").rmdir()
    world.pipeline.sync("group")
    assert world.status() == {}
    assert_index_equals_folder(world)


def test_a_restart_reads_nothing_again_but_new_chunk_settings_rechunk_all(
    tmp_path: Path, onnx_embedder: Embedder
) -> None:
    world = make_world(tmp_path, onnx_embedder, size=64)
    world.write("long.md", long_text(30))
    world.pipeline.reconcile()
    first = world.doc("long.md").chunks
    world.db.close()
    same = make_world(tmp_path, onnx_embedder, size=64)
    assert same.pipeline.reconcile().files_total == 0
    assert same.embedder.embedded == 0
    same.db.close()
    again = make_world(tmp_path, onnx_embedder, size=128)
    again.pipeline.reconcile()
    assert 0 < again.doc("long.md").chunks < first
    assert_index_equals_folder(again)


def test_a_rename_while_down_is_found_by_the_start_up_pass(tmp_path: Path,
                                                           onnx_embedder: Embedder) -> None:
    world = make_world(tmp_path, onnx_embedder)
    world.write("a.md", HANDBOOK)
    world.pipeline.reconcile()
    world.db.close()
    (world.root / "a.md").rename(world.root / "b.md")
    again = make_world(tmp_path, onnx_embedder)
    again.pipeline.reconcile()
    assert again.status() == {"b.md": "indexed"}
    assert again.embedder.embedded == 0
    assert_index_equals_folder(again)


def test_one_file_can_be_ingested_alone(world: World) -> None:
    world.write("a.md", HANDBOOK)
    world.write("b.md", "Not asked for.")
    done = world.pipeline.reconcile(under="a.md")
    assert done.files_done == 1
    assert world.status() == {"a.md": "indexed"}


def test_links_are_not_followed(world: World, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the admin password is hunter2")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "x.md").write_text("outside the folder")
    (world.root / "link.txt").symlink_to(secret)
    (world.root / "linked-folder").symlink_to(tmp_path / "elsewhere")
    world.write("real.md", HANDBOOK)
    world.pipeline.reconcile()
    assert world.pipeline.sync("link.txt") == "ignored"
    assert world.pipeline.sync("linked-folder/x.md") == "ignored"
    assert world.status() == {"real.md": "indexed"}


def test_an_empty_folder_does_not_wipe_the_index(world: World) -> None:
    world.write("a.md", HANDBOOK)
    world.pipeline.reconcile()
    (world.root / "a.md").rename(world.root.parent / "a.md")  # as if the share were unmounted
    world.pipeline.reconcile()
    assert world.status() == {"a.md": "indexed"}


def test_an_unforeseen_failure_lists_the_file_as_failed(world: World,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    world.write("a.md", HANDBOOK)
    world.write("b.md", "Fine.")

    def broken(texts: object) -> object:
        raise RuntimeError("the embedder broke")

    monkeypatch.setattr(world.embedder, "embed", broken)
    done = world.pipeline.reconcile()
    assert done.failed == 2
    doc = world.doc("a.md")
    assert doc.status == "failed"
    assert "the embedder broke" in (doc.error or "")
    monkeypatch.undo()
    world.pipeline.reconcile()  # tried again at the next pass
    assert world.status() == {"a.md": "indexed", "b.md": "indexed"}


def test_repair_drops_stray_vectors_and_refills_missing_ones(world: World) -> None:
    world.write("a.md", HANDBOOK)
    world.write("b.md", long_text(5))
    world.pipeline.reconcile()
    import numpy as np

    world.index.upsert(["stray"], np.ones((1, world.embedder.dim), dtype=np.float32))
    lost = [i for i, p in world.catalog.owners().items() if p == "b.md"][:1]
    world.index.delete(lost)
    world.pipeline.reconcile()
    assert "stray" not in world.index.ids()
    assert_index_equals_folder(world)


def test_documents_are_redacted_before_indexing_when_the_policy_says(
    tmp_path: Path, onnx_embedder: Embedder, redactor: Redactor
) -> None:
    privacy = Privacy(redactor, Policy(prompts="off", documents="redact", output="off"),
                      PII_ENTITIES)  # fmt: skip
    world = make_world(tmp_path, onnx_embedder)
    world.write("contacts.md", "# Team Maria Garcia\n\nAsk Maria Garcia at maria@example.com.")
    world.pipeline.reconcile()
    plain = world.catalog.chunks(sorted(world.catalog.owners()))
    assert any("maria@example.com" in c.text for c in plain)
    world.db.close()
    redacting = make_world(tmp_path, onnx_embedder, redact=privacy.document_text)
    redacting.pipeline.reconcile()  # a new policy: every document is read again
    chunks = redacting.catalog.chunks(sorted(redacting.catalog.owners()))
    text = " ".join(f"{c.heading} {c.text}" for c in chunks)
    assert "Maria Garcia" not in text
    assert "maria@example.com" not in text
    assert "<EMAIL_ADDRESS>" in text
