"""Restores of a backup (appliance/store/backup.py) into an empty data dir: every file checked
against the manifest, the database copied (and migrated if older), the documents put back, and
the vectors made again from the chunks' text."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import msgspec

from appliance.embed.embedder import Embedder
from appliance.store.backup import (
    DATABASE,
    DOCUMENTS,
    FORMAT,
    MANIFEST,
    BackupError,
    Manifest,
    clear_folder,
    file_entry,
    load_manifest,
    require_empty,
    walk_files,
)
from appliance.store.db import SCHEMA_VERSION, Database
from appliance.store.lock import IndexLock
from appliance.store.vectors import VectorIndex

_EMBED_BATCH = 64  # distinct chunk texts embedded per call at restore
# The next distinct chunk texts after a hash, with the ids of the chunks that hold each
_TEXTS = (
    "SELECT hash, MIN(text), json_group_array(id) FROM chunks WHERE hash > ? "
    "GROUP BY hash ORDER BY hash LIMIT ?"
)


class Restored(msgspec.Struct, frozen=True):
    schema: int  # after migrating the copy, if the backup was older
    documents: int  # files put back into the watched folder
    chunks: int  # vectors made
    texts: int  # distinct chunk texts embedded for them


def read_manifest(folder: Path) -> Manifest:
    """The manifest of a backup, once every file it lists matched its size and sha256 and
    nothing else was added; refuses a format or schema newer than this code knows."""
    manifest = load_manifest(folder)
    if manifest.format > FORMAT:
        raise BackupError(
            f"{folder / MANIFEST}: field format is {manifest.format}, newer than the {FORMAT} "
            f"this appliance reads (made by appliance {manifest.appliance}); upgrade the "
            "appliance to that version or later, then restore"
        )
    if manifest.schema > SCHEMA_VERSION:
        raise BackupError(
            f"{folder / MANIFEST}: field schema is {manifest.schema}: the backup's database "
            f"is newer than the schema version {SCHEMA_VERSION} this appliance knows (made by "
            f"appliance {manifest.appliance}); upgrade the appliance to that version or later, "
            "then restore"
        )
    _verify_files(folder, manifest)
    return manifest


def restore(
    folder: Path,
    data_dir: Path,
    watch_dir: Path | None,
    make_embedder: Callable[[], Embedder],
    make_index: Callable[[Path, str], VectorIndex],
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> Restored:
    """Restores the backup in `folder` into the empty `data_dir` (and its documents into the
    empty `watch_dir`; None: they are left out), then embeds the chunks' text into a new
    vector index. On any failure what it wrote is removed again: both stay empty."""
    manifest = read_manifest(folder)
    require_empty(
        data_dir,
        "data_dir",
        "Move what is there away, or set data_dir (APPLIANCE_DATA_DIR) to a new folder",
    )
    docs = watch_dir if manifest.documents else None
    if docs is not None and not docs.is_relative_to(data_dir):
        require_empty(
            docs,
            "the watched folder (documents.watch_dir)",
            "Empty it, or restore with --no-documents to keep the files there",
        )
    made = [p for p in (data_dir, docs) if p is not None and not p.exists()]
    try:
        return _restore(folder, manifest, data_dir, docs, make_embedder, make_index, on_progress)
    except BaseException:
        for path in (data_dir, docs):
            if path is not None:
                clear_folder(path, remove=path in made)
        raise


def _restore(
    folder: Path,
    manifest: Manifest,
    data_dir: Path,
    watch_dir: Path | None,
    make_embedder: Callable[[], Embedder],
    make_index: Callable[[Path, str], VectorIndex],
    on_progress: Callable[[int, int], None],
) -> Restored:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    lock = IndexLock(data_dir / "index.lock")  # no server starts on it halfway
    try:
        embedder = make_embedder()
        if embedder.name != manifest.embedding.name:
            raise BackupError(
                f"{folder / MANIFEST}: field embedding.name is {manifest.embedding.name}, but "
                f"this appliance is set up for {embedder.name}: set embed.backend, embed.model "
                "and embed.quantize as they were when the backup was made, then restore "
                "(changing them afterwards re-embeds every document)"
            )
        shutil.copyfile(folder / DATABASE, data_dir / DATABASE)
        documents = _copy_documents(folder, manifest, watch_dir) if watch_dir else 0
        db = Database(data_dir / DATABASE)  # refuses a newer schema; migrates an older one
        try:
            chunks, texts = _embed_all(
                db, embedder, make_index(data_dir / "chroma", embedder.name), on_progress
            )
            return Restored(int(db.query("PRAGMA user_version")[0][0]), documents, chunks, texts)
        finally:
            db.close()
    finally:
        lock.release()


def _embed_all(
    db: Database, embedder: Embedder, index: VectorIndex, on_progress: Callable[[int, int], None]
) -> tuple[int, int]:
    """A vector for every chunk of the catalog, each distinct text embedded once (read a batch
    of texts at a time, in hash order); then the index must hold exactly the chunks' ids."""
    total, done, texts, after = db.query("SELECT COUNT(*) FROM chunks")[0][0], 0, 0, ""
    try:
        while batch := db.query(_TEXTS, (after, _EMBED_BATCH)):
            vectors = embedder.embed([row[1] for row in batch])
            ids = [msgspec.json.decode(row[2], type=list[str]) for row in batch]
            index.upsert(
                [i for same in ids for i in same],
                vectors[[n for n, same in enumerate(ids) for _ in same]],
            )
            after, texts, done = batch[-1][0], texts + len(batch), done + sum(map(len, ids))
            on_progress(done, total)
        stored = index.ids()
    finally:
        index.close()
    expected = {r[0] for r in db.query("SELECT id FROM chunks")}
    if stored != expected:
        raise BackupError(
            f"the new vector index holds {len(stored)} vectors for {len(expected)} chunks "
            f"({len(expected - stored)} missing, {len(stored - expected)} extra); restore again"
        )
    return total, texts


def _copy_documents(folder: Path, manifest: Manifest, watch_dir: Path) -> int:
    """The watched folder's files, with their modification times (the catalog's record of
    them), so the server does not read them again; returns how many."""
    count = 0
    prefix = DOCUMENTS + "/"
    for entry in manifest.files:
        if entry.path.startswith(prefix):
            target = watch_dir / entry.path.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(folder / entry.path, target)
            count += 1
    watch_dir.mkdir(parents=True, exist_ok=True)
    return count


def _verify_files(folder: Path, manifest: Manifest) -> None:
    listed = {e.path for e in manifest.files}
    if DATABASE not in listed:
        raise BackupError(f"{folder / MANIFEST}: field files lists no {DATABASE}")
    for entry in manifest.files:
        found = file_entry(folder, entry.path) if (folder / entry.path).is_file() else None
        if found is None:
            raise BackupError(
                f"{folder / entry.path} is missing (listed in {MANIFEST}); use another backup"
            )
        if found != entry:
            raise BackupError(
                f"{folder / entry.path}: {found.size} bytes, sha256 {found.sha256}, but "
                f"{MANIFEST} says {entry.size} bytes, sha256 {entry.sha256}: the file changed "
                "after the backup was made (damaged or altered); use another backup"
            )
    extra = sorted(set(walk_files(folder)) - listed - {MANIFEST})
    if extra:
        raise BackupError(
            f"{folder / extra[0]} is not listed in {MANIFEST} ({len(extra)} "
            "such files): the backup was altered; use another backup"
        )
