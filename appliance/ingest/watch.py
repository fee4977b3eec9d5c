"""FolderWatcher: watches the folder, runs a reconcile pass at start, then syncs each changed
file once it has settled."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import watchfiles

from appliance.ingest.folder import log_name
from appliance.ingest.pipeline import IngestPipeline

log = logging.getLogger(__name__)
_TICK_MS = 200  # how often settled files are looked for while nothing else happens
_RETRY_S = 5.0  # pause before watching again after the watch itself failed


class FolderWatcher:
    """Owns the ingest thread: the only one that writes the index while the server runs."""

    def __init__(self, pipeline: IngestPipeline, settle_s: float, watch: bool = True) -> None:
        self._pipeline = pipeline
        self._settle_s = settle_s
        self._watch = watch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        # relative path -> (last seen (size, mtime) or None if gone, when that was first seen)
        self._waiting: dict[str, tuple[tuple[int, int] | None, float]] = {}
        self.idle = threading.Event()  # set while nothing waits to be read

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._pipeline.cancel()
        self._pipeline.close()  # a long extraction is not waited for
        self._thread.join(timeout=30)
        self._pipeline.close()  # the worker of a file that started in between

    def _run(self) -> None:
        if not self._watch:
            self._reconcile()
            self._pipeline.close()  # nothing more to extract: the worker's memory goes back
            self.idle.set()
            return
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception:
                # e.g. the inotify watch limit, or the folder vanished: try again shortly
                log.exception(
                    "watching %s failed; trying again in %.0f s", self._pipeline.root, _RETRY_S
                )
                self._stop.wait(_RETRY_S)

    def _follow(self) -> None:
        """The watch starts first, so changes made during the start-up pass are not missed."""
        changes = self._changes()
        first = next(changes, None)  # None: stopped before the watch even began
        if first is None:
            return
        self._take(first)
        self._reconcile()
        for batch in changes:
            self._take(batch)
            self._flush()
            if not self._waiting:
                if not self.idle.is_set():  # a burst of changes is over
                    self._pipeline.compact()
                self.idle.set()

    def _changes(self) -> Iterator[set[tuple[watchfiles.Change, str]]]:
        return watchfiles.watch(
            self._pipeline.root,
            stop_event=self._stop,
            yield_on_timeout=True,
            rust_timeout=_TICK_MS,
            debounce=_TICK_MS,
            step=50,
            ignore_permission_denied=True,
            watch_filter=None,
        )

    def _reconcile(self) -> None:
        try:
            self._pipeline.reconcile()
        except Exception:
            log.exception(
                "the pass over %s failed; changes are still followed", self._pipeline.root
            )

    def _take(self, batch: set[tuple[watchfiles.Change, str]]) -> None:
        root = self._pipeline.root
        for _, changed in batch:
            try:
                path = Path(changed).relative_to(root).as_posix()
            except ValueError:
                continue
            if path != ".":
                self._note(path)

    def _note(self, path: str) -> None:
        self.idle.clear()
        self._waiting[path] = (_signature(self._pipeline.root / path), time.monotonic())
        try:
            self._pipeline.queue(path)
        except Exception:
            log.exception(
                "cannot list %s as pending", log_name(path)
            )  # it is still read when settled

    def _flush(self) -> None:
        """Syncs the paths whose size and mtime stayed put for `settle_s`; files before gone
        paths, so a rename is seen as one (the new name still finds the old row)."""
        now = time.monotonic()
        ready = []
        for path, (seen, since) in list(self._waiting.items()):
            current = _signature(self._pipeline.root / path)
            if current != seen:
                self._waiting[path] = (current, now)  # still being written: wait again
            elif now - since >= self._settle_s:
                ready.append(path)
        for path in sorted(ready, key=lambda p: self._waiting[p][0] is None):
            if self._stop.is_set():
                return
            del self._waiting[path]
            self._settled(path)

    def _settled(self, path: str) -> None:
        if self._pipeline.folder.kind(path) == "folder":
            # a folder moved or copied in: each file in it settles on its own
            for sub, _ in self._pipeline.folder.walk(path):
                self._note(sub)
            return
        log.info("%s: %s", log_name(path), self._pipeline.sync_safely(path))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (0, 0) if path.is_dir() else (st.st_size, st.st_mtime_ns)
