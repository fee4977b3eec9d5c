"""Backups of a data dir: appliance.db copied by SQLite's online backup (consistent while a
server writes), the watched folder's files, and a manifest. The vectors are not copied: a
restore (appliance/store/restore.py) makes them again from the chunks' text in the catalog."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec

from appliance.errors import ApplianceError
from appliance.store.db import SCHEMA_VERSION, schema_version

FORMAT = 1  # of the backup folder; bump when a restore by older code would go wrong
MANIFEST = "manifest.json"
DATABASE = "appliance.db"
DOCUMENTS = "documents"  # the watched folder's files, in the backup
PREFIX = "appliance-"  # of the backups `--keep` makes and prunes, followed by their UTC time
_READ = 1 << 20


class BackupError(ApplianceError):
    """A backup cannot be made, or a folder cannot be restored (what, where, what to do)."""


class FileEntry(msgspec.Struct, frozen=True):
    path: str  # relative to the backup folder, "/"-separated
    size: int
    sha256: str


class Embedding(msgspec.Struct, frozen=True):
    name: str  # the embedder's name (model, backend, numerics): what the vectors were made by
    dim: int


class Manifest(msgspec.Struct, frozen=True):
    format: int
    appliance: str  # the version that made it
    schema: int  # appliance.db's PRAGMA user_version
    embedding: Embedding
    created_at: float  # Unix time
    created: str  # the same, ISO 8601 UTC, for people
    documents: bool  # whether the watched folder's files are in it
    files: list[FileEntry]


def backup(
    db_path: Path, watch_dir: Path | None, target: Path, embedder: Embedding, version: str
) -> Manifest:
    """Writes a backup into `target` (missing or empty): the database, then the watched
    folder's files (None: left out), then the manifest, last, so that a folder without one
    is known to be incomplete. Safe while a server runs on the same data dir."""
    _refuse_inside(target, watch_dir)
    require_empty(target, "the backup folder", "Name a new folder, or use --keep")
    made = not target.exists()
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        schema = snapshot(db_path, target / DATABASE)
        if schema > SCHEMA_VERSION:  # nor could this code restore it, or record its audit
            raise BackupError(
                f"the database {db_path} has schema version {schema}, newer than the "
                f"{SCHEMA_VERSION} this appliance knows: back it up with the appliance that "
                "serves it (upgrade this one)"
            )
        _same_embedder(target / DATABASE, embedder)
        files = [file_entry(target, DATABASE)]
        if watch_dir is not None:
            files += _copy_tree(watch_dir, target / DOCUMENTS, DOCUMENTS)
        now = time.time()
        manifest = Manifest(
            FORMAT, version, schema, embedder, now, _iso(now), watch_dir is not None, files
        )
        _write_atomic(target / MANIFEST, msgspec.json.format(msgspec.json.encode(manifest)))
    except BaseException:
        clear_folder(target, remove=made)
        raise
    return manifest


def backup_rotated(
    db_path: Path, watch_dir: Path | None, root: Path, embedder: Embedding, version: str, keep: int
) -> tuple[Path, Manifest, list[Path]]:
    """A new backup in `root`/appliance-<UTC time>, built under a hidden name and renamed when
    complete; then the complete backups there beyond the newest `keep` (by their manifest's
    time) are deleted: only folders named so that hold a manifest, nothing else in `root`."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = PREFIX + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    final = next(
        root / n for n in (name, *(f"{name}-{i}" for i in range(2, 100))) if not (root / n).exists()
    )
    partial = root / f".{final.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # left by a crash
    manifest = backup(db_path, watch_dir, partial, embedder, version)
    partial.rename(final)
    made = _backups_in(root)
    dropped = sorted(made, key=made.__getitem__)[:-keep]
    for old in dropped:
        shutil.rmtree(old)
    return final, manifest, dropped


def _backups_in(root: Path) -> dict[Path, float]:
    """The complete backups in `root` with their time; one whose manifest is unreadable is
    left alone (neither counted nor deleted)."""
    found = {}
    for path in root.glob(PREFIX + "*"):
        with contextlib.suppress(BackupError):
            found[path] = load_manifest(path).created_at
    return found


def snapshot(db_path: Path, target: Path) -> int:
    """Copies the database as of one instant, whoever writes it meanwhile (one step of the
    backup API: a read transaction, which in WAL mode holds up no writer); returns its schema
    version. The copy is a single file (no -wal) and passes SQLite's integrity check."""
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}: check data_dir (APPLIANCE_DATA_DIR)")
    source = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(target, isolation_level=None)
    try:
        source.backup(copy)  # pages=-1: all pages in one step, so one consistent snapshot
        copy.execute("PRAGMA journal_mode=DELETE")
        check = copy.execute("PRAGMA integrity_check").fetchall()
        schema = schema_version(copy)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {db_path}: {exc}") from None
    finally:
        copy.close()
        source.close()
    os.chmod(target, 0o600)
    if check != [("ok",)]:
        raise BackupError(f"the copy of {db_path} fails SQLite's integrity check: {check[:3]}")
    return schema


def _same_embedder(copy: Path, embedder: Embedding) -> None:
    """The catalog's chunks were embedded by the model its index signature names: a backup
    made with other settings than the server's would name the wrong one in its manifest."""
    conn = sqlite3.connect(copy)
    try:
        row = conn.execute("SELECT value FROM index_meta WHERE key = 'signature'").fetchone()
    except sqlite3.OperationalError:  # a schema before the catalog: nothing indexed
        row = None
    finally:
        conn.close()
    if row is not None and not str(row[0]).startswith(embedder.name + "|"):
        raise BackupError(
            f"the document index was made with the embedding model {str(row[0]).split('|')[0]} "
            f"(appliance.db, index_meta 'signature'), but these settings name {embedder.name}: "
            "run `appliance backup` with the server's settings (the same --config file and "
            "APPLIANCE_* variables)"
        )


def load_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    try:
        return msgspec.json.decode(path.read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise BackupError(
            f"{path} is missing: {folder} is not a backup made by `appliance backup`, or an "
            "incomplete one (the manifest is written last); use another backup"
        ) from None
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}; use another backup") from None


# -- files ----------------------------------------------------------------------------------


def _copy_tree(source: Path, target: Path, prefix: str) -> list[FileEntry]:
    """Every regular file under `source` (links are not followed, as the index does not),
    copied with its modification time, hashed as it is read."""
    entries = []
    for rel in walk_files(source):
        copy = target / rel
        copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        digest, size = _copy_hashed(source / rel, copy)
        entries.append(FileEntry(f"{prefix}/{rel}", size, digest))
    return entries


def _copy_hashed(source: Path, target: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as src, open(target, "xb") as dst:
        os.fchmod(dst.fileno(), 0o600)
        while block := src.read(_READ):
            digest.update(block)
            dst.write(block)
            size += len(block)
        st = os.fstat(src.fileno())
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    return digest.hexdigest(), size


def walk_files(root: Path) -> Iterator[str]:
    """Relative "/"-paths of the regular files under `root`, sorted; links not followed."""
    if not root.is_dir():
        return
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if stat.S_ISREG(path.lstat().st_mode):
                yield path.relative_to(root).as_posix()


def file_entry(folder: Path, rel: str) -> FileEntry:
    digest, size = hashlib.sha256(), 0
    with (folder / rel).open("rb") as file:
        while block := file.read(_READ):
            digest.update(block)
            size += len(block)
    return FileEntry(rel, size, digest.hexdigest())


def require_empty(path: Path, what: str, todo: str) -> None:
    if path.exists() and not path.is_dir():
        raise BackupError(f"{what} {path} is a file, not a folder. {todo}")
    if path.is_dir() and (entries := sorted(p.name for p in path.iterdir())):
        raise BackupError(
            f"{what} {path} is not empty ({len(entries)} entries, e.g. "
            f"{entries[0]}); nothing was written. {todo}"
        )


def _refuse_inside(target: Path, watch_dir: Path | None) -> None:
    if watch_dir is not None and target.resolve().is_relative_to(watch_dir):
        raise BackupError(
            f"the backup folder {target} is inside the watched folder "
            f"{watch_dir}: it would be indexed; put it elsewhere"
        )


def clear_folder(path: Path, remove: bool) -> None:
    """Removes what a failed restore wrote into a folder that was empty before."""
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    if remove:
        path.rmdir()


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    tmp.rename(path)


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
