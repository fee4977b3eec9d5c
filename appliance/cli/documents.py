"""The document and privacy commands: ingest, documents, redact."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.cli.output import table
from appliance.config import Settings
from appliance.errors import ApplianceError


def ingest(settings: Settings, target: Path | None) -> int:
    from appliance.pii.logs import redact_logs
    from appliance.store.db import Database
    from appliance.store.lock import IndexLock
    from appliance.wiring import build_pipeline

    logging.basicConfig(level="WARNING", format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    redact_logs(_lazy_redactor(settings))  # file names can name people
    root = settings.watch_path
    under = _inside_watched(root, target)
    lock = IndexLock(settings.data_path / "index.lock")
    db = Database(settings.data_path / "appliance.db")
    try:
        pipeline = build_pipeline(settings, db)
        started = time.monotonic()
        with _ProgressBar() as bar:
            done = pipeline.reconcile(bar.update, under=under)
        took = time.monotonic() - started
        print(f"{done.files_done} files read, {done.chunks} chunks stored "
              f"({done.embedded} embedded, the rest reused) in {took:.1f} s; "
              f"{done.failed} failed (`appliance documents` says why)")  # fmt: skip
        return 1 if done.failed else 0
    finally:
        db.close()
        lock.release()


def _lazy_redactor(settings: Settings) -> Callable[[str], str]:
    """Loads Presidio (seconds) only when there is a line to log, which is rare here."""
    from appliance.pii.policy import Privacy
    from appliance.wiring import build_privacy

    loaded: list[Privacy] = []

    def redact(text: str) -> str:
        if not loaded:
            loaded.append(build_privacy(settings))
        return loaded[0].stored(text)

    return redact


def _inside_watched(root: Path, target: Path | None) -> str:
    """`target` relative to the watched folder ("" for all of it); outside it is an error."""
    if target is None:
        return ""
    full = target.expanduser().resolve()
    try:
        rel = full.relative_to(root).as_posix()
    except ValueError:
        raise ApplianceError(
            f"{target} is outside the watched folder {root}; copy the files into it, or point "
            f"documents.watch_dir (APPLIANCE_DOCUMENTS__WATCH_DIR) at {full}"
        ) from None
    if not full.exists():
        raise ApplianceError(f"{target} does not exist")
    return "" if rel == "." else rel


class _ProgressBar:
    """files, chunks, chunks/s and ETA on stderr; the ETA follows bytes read."""

    def __enter__(self) -> _ProgressBar:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._started = time.monotonic()
        self._bar = Progress(
            TextColumn("{task.fields[files]} files"), BarColumn(),
            TextColumn("{task.fields[chunks]} chunks · {task.fields[rate]} chunks/s · ETA"),
            TimeRemainingColumn(), TextColumn("{task.fields[path]}"),
            console=_stderr_console(), transient=False,
        )  # fmt: skip
        self._bar.start()
        self._task = self._bar.add_task("ingest", total=None, files="0/0", chunks=0, rate="-",
                                        path="")  # fmt: skip
        return self

    def update(self, p: Any) -> None:
        rate = p.chunks / max(time.monotonic() - self._started, 1e-6)
        self._bar.update(self._task, total=max(p.bytes_total, 1), completed=p.bytes_done,
                         files=f"{p.files_done}/{p.files_total}", chunks=p.chunks,
                         rate=f"{rate:.1f}", path=p.path[-40:])  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def redact(settings: Settings, name: str) -> int:
    from appliance.wiring import build_redactor

    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplianceError(f"cannot read {name}: {exc}; give a UTF-8 text file or -") from None
    redactor = build_redactor(settings)
    entities = redactor.analyze(text)
    print(redactor.redact(text, entities), end="" if text.endswith("\n") else "\n")
    for e in entities:
        print(f"{e.type}\t{e.start}\t{e.end}\t{e.score:.2f}", file=sys.stderr)
    return 0


def documents(settings: Settings) -> int:
    from appliance.store.catalog import Catalog
    from appliance.store.db import Database

    db = Database(settings.data_path / "appliance.db")
    try:
        docs = Catalog(db).documents()
    finally:
        db.close()
    print(f"watched folder: {settings.watch_path}")
    rows = [("STATUS", "CHUNKS", "PAGES", "INDEXED", "PATH", "ERROR")]
    for d in docs:
        when = time.strftime("%Y-%m-%dT%H:%M", time.localtime(d.indexed_at or 0))
        when = when if d.indexed_at else "-"
        rows.append((d.status, str(d.chunks), str(d.pages or "-"), when, d.path, d.error or ""))
    table(rows)
    return 0
