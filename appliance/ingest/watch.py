"""FolderWatcher: a reconcile pass at start, then each change once the file has settled."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import watchfiles

from appliance.ingest.pipeline import IngestPipeline

log = logging.getLogger(__name__)
_TICK_MS = 200  # how often settled files are looked for while nothing else happens


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
        self.idle = threading.Event()  # set while nothing waits (tests and the CLI wait on it)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        root = self._pipeline.root
        try:
            self._pipeline.reconcile()
        except Exception:
            log.exception("the start-up pass over %s failed; changes are still watched", root)
        if not self._watch:
            self.idle.set()
            return
        for changes in watchfiles.watch(root, stop_event=self._stop, yield_on_timeout=True,
                                        rust_timeout=_TICK_MS, debounce=_TICK_MS, step=50,
                                        ignore_permission_denied=True,
                                        watch_filter=None):  # fmt: skip
            for _, changed in changes:
                self._note(self._relative(root, Path(changed)))
            self._flush()
            if not self._waiting:
                self.idle.set()

    def _relative(self, root: Path, path: Path) -> str:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            return ""

    def _note(self, path: str) -> None:
        if path and path != ".":
            self.idle.clear()
            self._waiting[path] = (_signature(self._pipeline.root / path), time.monotonic())
            self._pipeline.queue(path)

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
            del self._waiting[path]
            self._sync(path)

    def _sync(self, path: str) -> None:
        log.info("%s: %s", path, self._pipeline.sync_safely(path))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if not path.is_dir() else (0, 0)
