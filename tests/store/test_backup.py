"""Backups and restores of a data dir, on the real embedder, Chroma and SQLite: what comes back,
a snapshot taken while another connection writes, and every refusal with what it says."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import msgspec
import numpy as np
import pytest

from appliance.embed.embedder import Embedder
from appliance.embed.fake import HashingEmbedder
from appliance.errors import StoreError
from appliance.store.audit import AuditLog
from appliance.store.backup import (
    BackupError,
    Embedding,
    Manifest,
    backup,
    backup_rotated,
    snapshot,
)
from appliance.store.catalog import Catalog, ChunkRow, FileState
from appliance.store.chroma import ChromaIndex
from appliance.store.db import SCHEMA_VERSION, Database
from appliance.store.restore import read_manifest, restore

TEXTS = {
    "hr/leave.md": ["Annual leave is 28 days a year.", "Unused leave expires in March."],
    "it/laptops.md": ["Laptops are replaced every four years.", "Annual leave is 28 days a year."],
}


class DataDir:
    """A data dir as a server leaves it: documents in the watched folder, their catalog rows
    and keyword index in appliance.db, the index signature naming the embedder."""

    def __init__(self, root: Path, embedder: Embedder) -> None:
        self.path, self.watch = root / "data", root / "data" / "documents"
        self.db_path = self.path / "appliance.db"
        self.embedding = Embedding(embedder.name, embedder.dim)
        db = Database(self.db_path)
        catalog = Catalog(db)
        catalog.set_meta("signature", f"{embedder.name}|chunker|v3|pii=off")
        for path, texts in TEXTS.items():
            file = self.watch / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text("\n\n".join(texts))
            st = file.stat()
            rows = [
                ChunkRow(f"{path}#{n}", n, t, None, None, f"h:{t}", 8) for n, t in enumerate(texts)
            ]
            catalog.replace_chunks(FileState(path, st.st_size, st.st_mtime_ns, "s"), None, rows)
        AuditLog(db).record("cli", "user.add", "someone")
        db.close()

    def backup(self, target: Path) -> Manifest:
        return backup(self.db_path, self.watch, target, self.embedding, "0.1.0")


@pytest.fixture
def data(tmp_path: Path, onnx_embedder: Embedder) -> DataDir:
    return DataDir(tmp_path, onnx_embedder)


def restore_into(folder: Path, target: Path, embedder: Embedder) -> None:
    restore(folder, target, target / "documents", lambda: embedder, ChromaIndex)


def chunk_ids(db_path: Path) -> set[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM chunks")}


def test_a_restore_brings_back_the_database_the_documents_and_every_vector(
    data: DataDir, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    manifest = data.backup(tmp_path / "backup")
    assert manifest.schema == SCHEMA_VERSION
    assert manifest.embedding == Embedding(onnx_embedder.name, 384)
    assert [f.path for f in manifest.files] == [
        "appliance.db",
        "documents/hr/leave.md",
        "documents/it/laptops.md",
    ]
    assert os.stat(tmp_path / "backup").st_mode & 0o077 == 0  # personal data: private
    target = tmp_path / "restored"
    progress: list[tuple[int, int]] = []
    done = restore(
        tmp_path / "backup",
        target,
        target / "documents",
        lambda: onnx_embedder,
        ChromaIndex,
        lambda n, total: progress.append((n, total)),
    )
    assert (done.documents, done.chunks, done.texts) == (2, 4, 3)  # one text in two files
    assert progress[-1] == (4, 4)
    for path in TEXTS:  # same bytes and modification time: the server does not read them again
        old, new = data.watch / path, target / "documents" / path
        assert new.read_bytes() == old.read_bytes()
        assert new.stat().st_mtime_ns == old.stat().st_mtime_ns
    index = ChromaIndex(target / "chroma", onnx_embedder.name)
    assert index.ids() == chunk_ids(target / "appliance.db")
    laptops = onnx_embedder.embed(["Laptops are replaced every four years."])[0]
    assert index.query(laptops, 1)[0][0] == "it/laptops.md#0"
    stored = index.vectors(["hr/leave.md#0", "it/laptops.md#1"])
    assert np.array_equal(stored["hr/leave.md#0"], stored["it/laptops.md#1"])
    db = Database(target / "appliance.db")
    assert AuditLog(db).verify(full=True).intact
    db.close()


def test_a_snapshot_taken_while_another_connection_writes_is_consistent(
    data: DataDir, tmp_path: Path
) -> None:
    """The audit chain is written record by record, each chained to the one before: a copy
    that caught a write halfway, or mixed two moments, would not verify."""
    db = Database(data.db_path)
    stop = threading.Event()

    def write() -> None:
        log = AuditLog(db)
        while not stop.is_set():
            log.record("writer", "chat", "x", "y" * 2000)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        copies = []
        for n in range(5):
            copies.append(tmp_path / f"copy-{n}.db")
            snapshot(data.db_path, copies[-1])
    finally:
        stop.set()
        writer.join()
    written = db.query("SELECT COUNT(*) FROM audit")[0][0]
    db.close()
    counts = []
    for copy in copies:
        restored = Database(copy)
        verdict = AuditLog(restored).verify(full=True)
        assert verdict.intact, verdict.problem
        counts.append(verdict.records)
        restored.close()
    assert counts == sorted(counts)
    assert counts[-1] <= written


def test_a_backup_goes_into_a_new_or_empty_folder_only(data: DataDir, tmp_path: Path) -> None:
    target = tmp_path / "backup"
    target.mkdir()
    (target / "other.txt").write_text("kept")
    with pytest.raises(
        BackupError,
        match=r"backup folder .* is not empty \(1 entries, e.g\. "
        r"other\.txt\); nothing was written",
    ):
        data.backup(target)
    assert sorted(p.name for p in target.iterdir()) == ["other.txt"]
    with pytest.raises(BackupError, match="inside the watched folder"):
        data.backup(data.watch / "backup")


def test_a_backup_with_other_settings_than_the_server_is_refused(
    data: DataDir, tmp_path: Path
) -> None:
    other = Embedding("onnx:other-model-int8-v1", 384)
    with pytest.raises(BackupError) as refused:
        backup(data.db_path, data.watch, tmp_path / "backup", other, "0.1.0")
    assert "made with the embedding model onnx:model" in str(refused.value)
    assert "index_meta 'signature'" in str(refused.value)
    assert "the same --config file" in str(refused.value)
    assert not (tmp_path / "backup").exists()  # nothing half-written left behind


def test_a_database_newer_than_this_code_is_not_backed_up(data: DataDir, tmp_path: Path) -> None:
    with closing(sqlite3.connect(data.db_path)) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(BackupError, match=f"has schema version {SCHEMA_VERSION + 1}, newer than"):
        data.backup(tmp_path / "backup")
    assert not (tmp_path / "backup").exists()


def test_rotation_keeps_the_newest_backups_and_nothing_else_is_touched(
    data: DataDir, tmp_path: Path
) -> None:
    root = tmp_path / "backups"
    root.mkdir()
    (root / "notes.txt").write_text("mine")
    (root / "appliance-by-hand").mkdir()  # no manifest: not a backup this made
    made = [
        backup_rotated(data.db_path, None, root, data.embedding, "0.1.0", keep=2) for _ in range(3)
    ]
    assert [dropped for _, _, dropped in made] == [[], [], [made[0][0]]]
    left = sorted(p.name for p in root.iterdir())
    assert left == sorted(["notes.txt", "appliance-by-hand", made[1][0].name, made[2][0].name])
    assert not made[2][1].documents
    assert [f.path for f in made[2][1].files] == ["appliance.db"]


# -- restore's refusals: each says what, which file or field, and what to do ------------------


@pytest.fixture
def made(data: DataDir, tmp_path: Path) -> Path:
    data.backup(tmp_path / "backup")
    return tmp_path / "backup"


def refused(folder: Path, target: Path, embedder: Embedder) -> str:
    with pytest.raises(BackupError) as caught:
        restore_into(folder, target, embedder)
    return str(caught.value)


def edit_manifest(folder: Path, **fields: object) -> None:
    path = folder / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))


def test_a_non_empty_data_dir_is_refused_untouched(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    target = tmp_path / "live"
    target.mkdir()
    (target / "appliance.db").write_bytes(b"the live database")
    message = refused(made, target, onnx_embedder)
    assert f"data_dir {target} is not empty (1 entries, e.g. appliance.db)" in message
    assert "Move what is there away, or set data_dir (APPLIANCE_DATA_DIR)" in message
    assert [p.name for p in target.iterdir()] == ["appliance.db"]
    assert (target / "appliance.db").read_bytes() == b"the live database"


@pytest.mark.parametrize("name", ["appliance.db", "documents/hr/leave.md"])
def test_a_changed_file_is_refused(
    made: Path, tmp_path: Path, onnx_embedder: Embedder, name: str
) -> None:
    with (made / name).open("r+b") as file:
        file.seek(100 if name == "appliance.db" else 0)
        byte = file.read(1)
        file.seek(-1, os.SEEK_CUR)
        file.write(bytes([byte[0] ^ 1]))
    message = refused(made, tmp_path / "new", onnx_embedder)
    assert f"{made / name}: " in message
    assert "but manifest.json says" in message
    assert "damaged or altered); use another backup" in message
    assert not (tmp_path / "new").exists()


def test_a_file_added_to_a_backup_is_refused(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    (made / "documents" / "hr" / "extra.md").write_text("Leave is unlimited.")
    message = refused(made, tmp_path / "new", onnx_embedder)
    assert "documents/hr/extra.md is not listed in manifest.json" in message


def test_a_folder_without_a_manifest_is_refused(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    (made / "manifest.json").unlink()
    message = refused(made, tmp_path / "new", onnx_embedder)
    assert "manifest.json is missing" in message
    assert "or an incomplete one" in message


def test_a_newer_schema_in_the_manifest_is_refused(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    edit_manifest(made, schema=SCHEMA_VERSION + 1, appliance="9.0.0")
    message = refused(made, tmp_path / "new", onnx_embedder)
    assert f"field schema is {SCHEMA_VERSION + 1}" in message
    assert f"newer than the schema version {SCHEMA_VERSION} this appliance knows" in message
    assert "made by appliance 9.0.0); upgrade the appliance" in message
    assert not (tmp_path / "new").exists()


def test_a_newer_database_under_a_consistent_manifest_is_refused_and_nothing_stays(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    """The manifest lies about the schema but lists the file's true sha256: the database's
    own version is checked when it is opened, and what the restore wrote is removed."""
    with closing(sqlite3.connect(made / "appliance.db")) as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    manifest = msgspec.json.decode((made / "manifest.json").read_bytes(), type=Manifest)
    listed = [
        msgspec.structs.replace(
            f, size=(made / f.path).stat().st_size, sha256=_sha256(made / f.path)
        )
        for f in manifest.files
    ]
    edit_manifest(made, files=msgspec.to_builtins(listed))
    assert read_manifest(made).schema == SCHEMA_VERSION  # the checksums pass
    target = tmp_path / "new"
    with pytest.raises(StoreError, match=f"has schema version {SCHEMA_VERSION + 1}, newer"):
        restore_into(made, target, onnx_embedder)
    assert not target.exists()


def test_another_embedding_model_is_refused_and_nothing_stays(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    target = tmp_path / "new"
    message = refused(made, target, HashingEmbedder())
    assert f"field embedding.name is {onnx_embedder.name}" in message
    assert "set up for fake:hashing-64" in message
    assert "set embed.backend, embed.model and embed.quantize as they were" in message
    assert not target.exists()


def test_a_non_empty_watched_folder_outside_data_dir_is_refused(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "current.md").write_text("today's version")
    with pytest.raises(BackupError, match="restore with --no-documents"):
        restore(made, tmp_path / "new", share, lambda: onnx_embedder, ChromaIndex)
    assert [p.name for p in share.iterdir()] == ["current.md"]
    done = restore(made, tmp_path / "new", None, lambda: onnx_embedder, ChromaIndex)
    assert (done.documents, done.chunks) == (0, 4)
    assert [p.name for p in share.iterdir()] == ["current.md"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_restore_leaves_the_backup_as_it_was(
    made: Path, tmp_path: Path, onnx_embedder: Embedder
) -> None:
    before = {p: p.read_bytes() for p in made.rglob("*") if p.is_file()}
    restore_into(made, tmp_path / "new", onnx_embedder)
    assert {p: p.read_bytes() for p in made.rglob("*") if p.is_file()} == before
