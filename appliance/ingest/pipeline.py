"""IngestPipeline: keeps the index (catalog + vectors) equal to the watched folder, file by file."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import msgspec
import numpy as np

from appliance.embed.embedder import Embedder, Vectors
from appliance.errors import ExtractError
from appliance.ingest.access import AccessRules, is_access_file
from appliance.ingest.chunk import Chunk, Chunker
from appliance.ingest.extract import SUPPORTED
from appliance.ingest.folder import Refused, TooLarge, WatchedFolder, ignored, inside, log_name
from appliance.ingest.sandbox import Sandbox, Stopped
from appliance.ingest.types import Block, Limits
from appliance.ops.metrics import Metrics
from appliance.store.audience import ADMINS_ONLY, EVERYONE, groups_in
from appliance.store.catalog import Catalog, ChunkRow, Document, FileState, Status
from appliance.store.vectors import VectorIndex

log = logging.getLogger(__name__)
# Bump when chunking or extraction changes, so every document is chunked anew (2: no chunk of
# a heading alone; 3: text hidden from readers is left out)
CHUNKER_VERSION = "3"
_EMBED_BATCH = 64  # chunks embedded between two chances for a chat to take the CPU
_WRITE_BATCH = 512  # chunks stored per vector-index call in a full pass (Chroma: ~7 ms a call)


class Progress(msgspec.Struct):
    """Where a reconcile pass is; `bytes_*` drive the ETA (chunk counts are known only late)."""

    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    chunks: int = 0
    embedded: int = 0
    failed: int = 0
    path: str = ""


class _Write(NamedTuple):
    """A file's new chunks, embedded, waiting to be stored."""

    state: FileState
    pages: int | None
    rows: list[ChunkRow]
    vectors: Vectors


class IngestPipeline:
    """One thread drives it (the watcher, or `appliance ingest`); readers use the catalog."""

    def __init__(
        self,
        root: Path,
        catalog: Catalog,
        index: VectorIndex,
        embedder: Embedder,
        chunker: Chunker,
        *,
        max_file_bytes: int,
        limits: Limits,
        yield_cpu: Callable[[], None] = lambda: None,
        redact: Callable[[str], str] | None = None,
        sandbox: Sandbox | None = None,
        metrics: Metrics | None = None,
        access: AccessRules | None = None,
    ) -> None:
        self.root = root
        self._access = access or AccessRules(root)
        self._metrics = metrics or Metrics()
        self.folder = WatchedFolder(root)
        self._catalog = catalog
        self._index = index
        self._embedder = embedder
        self._chunker = chunker
        self._max_bytes = max_file_bytes
        self._limits = limits
        self._yield_cpu = yield_cpu
        self._redact = redact  # the documents' PII policy, applied before chunking
        self._sandbox = sandbox or Sandbox()  # the parsers run there, never in this process
        self.progress = Progress()
        self._writes: list[_Write] = []
        self._batched = False  # during a full pass, several files share one index call
        self._cancelled = False
        self._signature = (
            f"{embedder.name}|{chunker.signature}|v{CHUNKER_VERSION}"
            f"|pii={'redact' if redact else 'off'}"
        )

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def index(self) -> VectorIndex:
        return self._index

    # -- whole-folder passes -------------------------------------------------------------------

    def reconcile(
        self, on_progress: Callable[[Progress], None] = lambda p: None, under: str = ""
    ) -> Progress:
        """Repairs what a crash left, then makes the index equal the folder (or the part of it
        at `under`, a relative path)."""
        self.repair()
        self._access.forget()  # `.access` files are read anew at each pass
        on_disk = dict(self.folder.walk(under))
        known = {d.path: d for d in self._catalog.documents() if inside(d.path, under)}
        todo = [p for p, s in on_disk.items() if _changed(known.get(p), s.st_size, s.st_mtime_ns)]
        self.progress = Progress(
            files_total=len(todo), bytes_total=sum(on_disk[p].st_size for p in todo)
        )
        for path in todo:
            self.queue(path)
        self._read_all(todo, on_disk, on_progress)
        self._remove_gone(known.keys() - on_disk.keys(), under)
        self.relabel(under, on_disk)  # an `.access` file (or a group) changed while stopped
        self.compact()
        self.progress.path = ""
        on_progress(self.progress)
        return self.progress

    def cancel(self) -> None:
        """Ends a running pass after the file at hand (for shutdown); what is left stays
        pending and is read at the next start."""
        self._cancelled = True

    def close(self) -> None:
        """Ends the extraction worker, even in the middle of a file (left pending)."""
        self._sandbox.close()

    def _read_all(
        self,
        todo: list[str],
        on_disk: dict[str, os.stat_result],
        on_progress: Callable[[Progress], None],
    ) -> None:
        self._batched = True
        try:
            for path in todo:  # before removals: a renamed file still finds its old row
                if self._cancelled:
                    break
                self.progress.path = path
                on_progress(self.progress)
                self.sync_safely(path)
                self.progress.files_done += 1
                self.progress.bytes_done += on_disk[path].st_size
        finally:
            self._batched = False
            self._flush_writes()

    def _remove_gone(self, gone: set[str], under: str) -> None:
        if gone and not under and not any(self.root.iterdir()):
            log.warning(
                "the watched folder %s is empty while %d documents are indexed: "
                "leaving them (a share not mounted yet?); delete files one by one, "
                "or empty data_dir, to remove them",
                self.root,
                len(gone),
            )
            return
        for path in sorted(gone):
            if self.folder.kind(path) != "file" and not self._cancelled:
                self.remove(path)

    def repair(self) -> None:
        """Settings changed or a crash between the two stores: make them agree again."""
        before = self._catalog.meta("signature")
        if before != self._signature:
            if before is not None:
                log.info("embedding model or chunking changed: every document is read again")
                self._catalog.requeue()
            self._catalog.set_meta("signature", self._signature)
        owners = self._catalog.owners()
        stored = self._index.ids()
        if orphans := sorted(stored - owners.keys()):
            log.info(
                "removing %d vectors no document owns (left by an interrupted run)", len(orphans)
            )
            self._index.delete(orphans)
        for path in sorted({owners[i] for i in owners.keys() - stored}):
            self._catalog.requeue(path)
        if self._catalog.meta("vectors.labelled") != "1":  # vectors stored before audiences
            for audience, ids in self._catalog.labels().items():
                self._index.label(ids, audience)
            self._catalog.set_meta("vectors.labelled", "1")

    def relabel(self, under: str = "", on_disk: dict[str, os.stat_result] | None = None) -> int:
        """Gives each document at or under `under` the audience its `.access` file (or POSIX
        group) gives it now, in the catalog and on its vectors: nothing is embedded again.
        Returns how many documents changed audience."""
        changed = 0
        for doc in self._catalog.documents():
            if inside(doc.path, under) and self._relabel(
                doc.path, (on_disk or {}).get(doc.path)
            ):
                changed += 1
        return changed

    def _relabel(self, path: str, st: os.stat_result | None = None) -> bool:
        try:
            audience = self._access.audience(path, st)
        except OSError:
            return False  # gone: its own event or the next pass removes it
        ids = self._catalog.set_audience(path, audience)
        if ids is None:
            return False
        self._index.label(ids, audience)
        log.info("%s: now seen by %s", log_name(path), _audience_name(audience))
        return True

    def _state(self, path: str, size: int = 0, mtime_ns: int = 0) -> FileState:
        """The catalog's record of a file before it is read: its audience already (so a
        pending or failed file is listed only to those who may see it)."""
        try:
            audience = self._access.audience(path)
        except OSError:
            audience = ADMINS_ONLY
        return FileState(path, size, mtime_ns, audience=audience)

    # -- one path ------------------------------------------------------------------------------

    def sync(self, path: str) -> str:
        """Brings one relative path up to date: a file, a folder (recursively) or a gone path."""
        if is_access_file(path) and self._access.mode == "file":
            folder = str(PurePosixPath(path).parent)
            folder = "" if folder == "." else folder
            self._access.forget(folder)
            return f"access changed: {self.relabel(folder)} documents relabelled"
        if ignored(path):
            return "ignored"
        kind = self.folder.kind(path)
        if kind == "folder":
            for sub, _ in self.folder.walk(path):
                self.sync_safely(sub)
            return "folder"
        if kind != "file":  # gone, or a link (never followed): nothing of it stays indexed
            self.remove(path)
            return "removed" if kind == "missing" else "ignored"
        try:
            outcome = self._sync_file(path)
        except OSError as exc:
            outcome = self._fail(self._state(path), f"cannot be read: {exc.strerror or exc}")
        self._metrics.ingested.labels(outcome).inc()
        return outcome

    def queue(self, path: str) -> None:
        """Shows a file as pending (on the documents page) until `sync` gets to it."""
        if ignored(path) or Path(path).suffix.lower() not in SUPPORTED:
            return
        if self.folder.kind(path) == "file":
            try:
                self._catalog.mark_pending(self._state(path, *_stat(self.root / path)))
            except OSError:
                return  # gone already: its sync will remove it

    def sync_safely(self, path: str) -> str:
        """`sync`, for loops that must go on. A bad file is reported by `sync` itself; what it
        did not foresee (a full disk, a bug) is logged and the file listed as failed."""
        try:
            return self.sync(path)
        except Stopped:
            return "stopped"  # shutting down: the file stays pending, read at the next start
        except Exception as exc:
            log.exception("indexing %s failed", log_name(path))
            with contextlib.suppress(Exception):  # the catalog itself may be what fails
                self._fail(
                    self._state(path),
                    f"could not be indexed ({exc}); the server "
                    "log has the details; it is tried again at the next start",
                )
            return "error"

    def remove(self, path: str) -> str:
        dropped = self._catalog.remove(path)
        self._metrics.ingested.labels("removed").inc()
        self._index.delete(dropped)
        return "removed"

    def compact(self) -> None:
        """Erasure: what the chunks removed or replaced since the last time left on disk is
        overwritten. Called once a pass, or a burst of changes, is over (not per file: it
        rewrites the keyword index); a crash before it leaves it due at the next call."""
        if self._cancelled:
            return
        try:
            self._catalog.compact(between=self._yield_cpu)
        except Exception:
            log.exception(
                "erasing what removed chunks left in the database failed; it is tried again "
                "after the next change or at the next start"
            )

    def _sync_file(self, path: str) -> str:
        size, mtime = _stat(self.root / path)
        state = self._state(path, size, mtime)
        doc = self._catalog.get(path)
        if not _changed(doc, size, mtime):
            self._relabel(path)  # its POSIX group may be what changed
            return "unchanged"
        suffix = Path(path).suffix.lower()
        if suffix not in SUPPORTED:
            return self._settle(
                state,
                "skipped",
                f"unsupported file type {suffix or '(none)'}; "
                f"supported: {', '.join(sorted(SUPPORTED))}",
            )
        try:  # opened anew without following links: what `kind` saw may have been swapped
            data, st = self.folder.read(path, self._max_bytes)
        except Refused as exc:
            return self._settle(state, "skipped", str(exc))
        except TooLarge as exc:
            return self._fail(
                state,
                f"the file is {exc.size / 2**20:.1f} MB, over the limit of "
                f"{self._max_bytes / 2**20:.0f} MB; raise documents.max_file_mb "
                "or split the file",
            )
        state = FileState(path, st.st_size, st.st_mtime_ns, hashlib.sha256(data).hexdigest(),
                          state.audience)  # fmt: skip
        if doc is not None and doc.sha256 == state.sha256:  # a requeue clears the sha
            self._catalog.touch(state)
            self._relabel(path)
            return "unchanged"
        if self._moved(state):
            return "moved"
        self._catalog.mark_pending(state)
        try:
            return self._index_content(state, data)
        except ExtractError as exc:
            return self._fail(state, str(exc))

    def _moved(self, state: FileState) -> bool:
        """Same bytes as an indexed file that is gone: a rename, so nothing is re-embedded."""
        assert state.sha256 is not None  # noqa: S101
        for twin in self._catalog.with_sha(state.sha256):
            if twin.path != state.path and self.folder.kind(twin.path) != "file":
                self._index.delete(self._catalog.move(twin.path, state))
                self._relabel(state.path)  # another folder may have another audience
                return True
        return False

    def _index_content(self, state: FileState, data: bytes) -> str:
        extracted = self._sandbox.extract(state.path, data, self._limits)
        chunks = self._chunker.chunks(self._redacted(extracted.blocks))
        if not chunks:
            raise ExtractError("no text found in the file")
        rows = [
            ChunkRow(
                id=uuid.uuid4().hex,
                ord=n,
                text=c.text,
                page=c.page,
                heading=c.heading,
                hash=c.hash,
                tokens=c.tokens,
            )
            for n, c in enumerate(chunks)
        ]
        self._writes.append(_Write(state, extracted.pages, rows, self._vectors(chunks)))
        self.progress.chunks += len(rows)
        if not self._batched or sum(len(w.rows) for w in self._writes) >= _WRITE_BATCH:
            self._flush_writes()
        return "indexed"

    def _flush_writes(self) -> None:
        """Vectors first, then each file's catalog rows in a transaction, then the replaced
        vectors: a crash at any point leaves only vectors no chunk row owns, which `repair`
        deletes; the files whose rows were not written are still pending and read again."""
        writes, self._writes = self._writes, []
        if not writes:
            return
        self._index.upsert(
            [r.id for w in writes for r in w.rows],
            np.concatenate([w.vectors for w in writes]),
            [w.state.audience for w in writes for _ in w.rows],
        )
        dropped: list[str] = []
        for write in writes:
            dropped += self._catalog.replace_chunks(write.state, write.pages, write.rows)
        self._index.delete(dropped)

    def _redacted(self, blocks: list[Block]) -> list[Block]:
        redact = self._redact
        if redact is None:
            return blocks
        headings = {b.heading: redact(b.heading) for b in blocks if b.heading}
        return [
            Block(redact(b.text), b.page, headings[b.heading] if b.heading else None)
            for b in blocks
        ]

    def _vectors(self, chunks: list[Chunk]) -> Vectors:
        """Vectors for each chunk: reused where the same text is already indexed."""
        hashes = [c.hash for c in chunks]
        known = self._catalog.ids_by_hash(sorted(set(hashes)))
        stored = self._index.vectors(list(known.values()))
        by_hash = {h: stored[i] for h, i in known.items() if i in stored}
        missing = list({c.hash: c.text for c in chunks if c.hash not in by_hash}.items())
        for start in range(0, len(missing), _EMBED_BATCH):
            part = missing[start : start + _EMBED_BATCH]
            self._yield_cpu()
            began = time.perf_counter()
            rows = self._embedder.embed([t for _, t in part])
            self._metrics.embedded(len(part), time.perf_counter() - began)
            for (h, _), row in zip(part, rows, strict=True):
                by_hash[h] = row
            self.progress.embedded += len(part)
        return _stack([by_hash[h] for h in hashes], self._embedder.dim)

    def _fail(self, state: FileState, reason: str) -> str:
        log.warning("%s: %s", log_name(state.path), reason)
        self.progress.failed += 1
        return self._settle(state, "failed", reason)

    def _settle(self, state: FileState, status: Status, reason: str) -> str:
        self._index.delete(self._catalog.settle(state, status, reason))
        return status


def _audience_name(audience: str) -> str:
    if audience == EVERYONE:
        return "everyone"
    return "admins only" if audience == ADMINS_ONLY else f"{len(groups_in(audience))} group(s)"


def _changed(doc: Document | None, size: int, mtime_ns: int) -> bool:
    return doc is None or doc.status == "pending" or (doc.size, doc.mtime_ns) != (size, mtime_ns)


def _stat(full: Path) -> tuple[int, int]:
    st = full.lstat()
    return st.st_size, st.st_mtime_ns


def _stack(rows: list[Vectors], dim: int) -> Vectors:
    if not rows:
        return np.zeros((0, dim), dtype=np.float32)
    out: Vectors = np.stack(rows).astype(np.float32)
    return out
