"""IndexLock: one process at a time writes the index (catalog and vectors) of a data dir."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from appliance.errors import IndexBusy


class IndexLock:
    """An advisory lock file; the OS releases it when the process dies, even by kill -9."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise IndexBusy(
                f"the document index in {path.parent} is in use by {holder} (a running "
                "`appliance serve`, which indexes the watched folder itself, or an "
                "`appliance ingest`); wait for it to finish or stop it, then try again"
            ) from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"process {os.getpid()}")
        self._file.flush()

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
