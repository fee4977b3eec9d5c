"""The backup commands: backup (beside a running server) and restore (into an empty data_dir)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from appliance import __version__
from appliance.config import Settings
from appliance.store.audit import AuditLog
from appliance.store.backup import Embedding, Manifest, backup, backup_rotated
from appliance.store.db import Database
from appliance.store.restore import restore


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    make = sub.add_parser(
        "backup",
        help="back up appliance.db and the watched folder into DIR (while the server runs)",
        description="Writes a consistent copy of appliance.db (SQLite's online backup: safe "
        "while `appliance serve` writes it), the watched folder's files and a manifest "
        "(versions, embedding model, sha256 of every file) into DIR, which must be missing or "
        "empty. The vectors are not copied: `appliance restore` makes them again.",
    )
    make.add_argument("dir", type=Path, help="where the backup goes")
    make.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="DIR holds backups: write this one into DIR/appliance-<UTC time> and delete "
        "all but the newest N there",
    )
    make.add_argument(
        "--no-documents",
        action="store_true",
        help="leave the watched folder's files out (a share backed up on its own)",
    )
    back = sub.add_parser(
        "restore",
        help="restore a backup from DIR into an empty data_dir, checking every file",
        description="Checks the backup in DIR (every file's sha256, the schema and embedding "
        "model against this appliance's), copies it into data_dir, which must be empty, and "
        "the documents into the watched folder, then embeds the chunks again. Then start "
        "`appliance serve` on data_dir.",
    )
    back.add_argument("dir", type=Path, help="a folder `appliance backup` wrote")
    back.add_argument(
        "--no-documents",
        action="store_true",
        help="leave the watched folder as it is (its files were kept elsewhere)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    os.umask(0o077)  # a backup and a restored data dir hold personal data: private to the user
    if args.command == "backup":
        return _backup(settings, args.dir, args.keep, args.no_documents)
    return _restore(settings, args.dir, args.no_documents)


def _backup(settings: Settings, target: Path, keep: int | None, no_documents: bool) -> int:
    from appliance.wiring import build_embedder

    if keep is not None and keep < 1:
        raise SystemExit("appliance: --keep takes 1 or more; nothing written")
    embedder = build_embedder(settings)  # its name is what restore will have to match
    model = Embedding(embedder.name, embedder.dim)
    db_path = settings.data_path / "appliance.db"
    watch = None if no_documents else settings.watch_path
    started = time.monotonic()
    dropped: list[Path] = []
    if keep is None:
        manifest = backup(db_path, watch, target, model, __version__)
    else:
        target, manifest, dropped = backup_rotated(db_path, watch, target, model, __version__, keep)
    took = time.monotonic() - started
    print(f"backup in {target}: {_summary(manifest)} in {took:.1f} s")
    for old in dropped:
        print(f"deleted the older backup {old} (--keep {keep})")
    _audit(db_path, "backup.create", str(target), _summary(manifest))
    return 0


def _restore(settings: Settings, source: Path, no_documents: bool) -> int:
    from appliance.store.chroma import ChromaIndex
    from appliance.wiring import build_embedder

    started = time.monotonic()
    done = restore(
        source,
        settings.data_path,
        None if no_documents else settings.watch_path,
        lambda: build_embedder(settings),
        ChromaIndex,
        _progress,
    )
    took = time.monotonic() - started
    if done.chunks:
        print(file=sys.stderr)  # ends the progress line
    print(
        f"restored {source} into {settings.data_path} in {took:.1f} s: schema version "
        f"{done.schema}, {done.documents} documents' files, {done.chunks} chunk vectors "
        f"({done.texts} texts embedded); start the server (`appliance serve`)"
    )
    detail = f"{done.chunks} chunk vectors made"
    _audit(settings.data_path / "appliance.db", "backup.restore", str(source), detail)
    return 0


def _progress(done: int, total: int) -> None:
    print(f"\rembedding the chunks again: {done}/{total}", end="", file=sys.stderr, flush=True)


def _summary(manifest: Manifest) -> str:
    size = sum(f.size for f in manifest.files)
    docs = len(manifest.files) - 1
    return (
        f"{len(manifest.files)} files ({docs} documents), {size / 2**20:.1f} MiB, "
        f"schema version {manifest.schema}"
    )


def _audit(db_path: Path, action: str, target: str, detail: str) -> None:
    db = Database(db_path)
    try:
        AuditLog(db).record("cli", action, target, detail)
    finally:
        db.close()
