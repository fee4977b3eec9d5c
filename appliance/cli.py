"""The `appliance` command line: serve, models, ingest, documents, redact, config."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgspec

from appliance import __version__
from appliance.config import Settings, SettingsError, describe, load_settings, reference
from appliance.errors import ApplianceError, ModelError

log = logging.getLogger("appliance")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance",
        description="A private AI assistant: chat with a local GGUF model; nothing leaves the box.",
    )
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    parser.add_argument(
        "--config", type=Path, default=None,
        help="TOML settings file (default: /etc/appliance/appliance.toml if it exists). "
        "Environment variables APPLIANCE_<SECTION>__<KEY> override it.",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="serve the chat page and the OpenAI-compatible API")
    serve.add_argument("--host", help="address to listen on (overrides web.host)")
    serve.add_argument("--port", type=int, help="port to listen on (overrides web.port)")
    sub.add_parser("models", help="list the GGUF models on offer, read from their metadata")
    ingest = sub.add_parser(
        "ingest", help="index the watched folder (or a part of it) once, with progress",
        description="Brings the document index up to date with the watched folder "
        "(documents.watch_dir) and exits: 0 when every file read was indexed, 1 when some "
        "failed (`appliance documents` says why). Not needed while `serve` runs: it watches "
        "the folder.",
    )  # fmt: skip
    ingest.add_argument("path", nargs="?", type=Path,
                        help="the watched folder or a folder or file inside it "
                        "(default: the whole watched folder)")  # fmt: skip
    sub.add_parser("documents", help="list the document catalog: status, chunks, errors")
    redact = sub.add_parser(
        "redact", help="print a text file with its personal data replaced by its type",
        description="Reads FILE (or standard input for -), prints it redacted as the "
        "appliance stores it, then the entities found (type, start, end, score) on stderr.",
    )  # fmt: skip
    redact.add_argument("file", help="a UTF-8 text file, or - for standard input")
    config = sub.add_parser("config", help="show the effective settings or their reference")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    config_sub.add_parser("show", help="print the effective settings as TOML")
    config_sub.add_parser("reference", help="print the settings reference (Markdown)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config, os.environ)
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "models":
            return _models(settings)
        if args.command == "ingest":
            return _ingest(settings, args.path)
        if args.command == "documents":
            return _documents(settings)
        if args.command == "redact":
            return _redact(settings, args.file)
        print(reference() if args.action == "reference" else _toml(settings), end="")
        return 0
    except SettingsError as exc:
        print(f"appliance: bad settings: {exc}", file=sys.stderr)
        return 2
    except ApplianceError as exc:
        print(f"appliance: {exc}", file=sys.stderr)
        return 1


def _toml(settings: Settings) -> str:
    """The effective settings as TOML that `--config` accepts back."""
    scalars, sections = [], []
    for key, value in describe(settings).items():
        if isinstance(value, dict):
            sections.append(
                f"\n[{key}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in value.items())
            )
        else:
            scalars.append(f"{key} = {_toml_value(value)}\n")
    return "".join(scalars) + "".join(sections)


def _toml_value(value: object) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return msgspec.json.encode(value).decode()  # JSON strings and numbers are valid TOML


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn  # only `serve` pays for the server imports

    from appliance.pii.logs import redact_logs
    from appliance.web.app import create_app
    from appliance.wiring import build_services

    logging.basicConfig(
        level=settings.web.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # lines per recognizer
    host, port = host or settings.web.host, settings.web.port if port is None else port
    sock = _listen(host, port)  # before loading anything: a taken port fails fast and clearly
    services = build_services(settings)
    redact_logs(services.chat.privacy.stored)  # no log line carries personal data
    config = uvicorn.Config(
        create_app(settings, services), loop="uvloop", http="httptools", log_config=None,
        log_level=settings.web.log_level, timeout_graceful_shutdown=5,
    )  # fmt: skip
    log.info("appliance %s: chat page on http://%s:%d/", __version__, host,
             sock.getsockname()[1])  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ApplianceError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "choose another --port or web.port, or stop what is using it"
        ) from None
    return sock


def _ingest(settings: Settings, target: Path | None) -> int:
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


def _redact(settings: Settings, name: str) -> int:
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


def _documents(settings: Settings) -> int:
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
    _table(rows)
    return 0


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _models(settings: Settings) -> int:
    from appliance.llm.models import discover

    rows = [("MODEL", "ARCH", "QUANT", "PARAMS", "CONTEXT", "SIZE", "PATH")]
    problems: list[ModelError] = []
    for item in discover(settings.llm):
        if isinstance(item, ModelError):
            problems.append(item)
            continue
        rows.append((item.id, item.architecture, item.quantization,
                     _human(item.parameters, 1000, ""), str(item.context_length),
                     _human(item.size_bytes, 1024, "iB"), item.path))  # fmt: skip
    _table(rows)
    for problem in problems:
        print(f"unusable: {problem}", file=sys.stderr)
    return 0


def _human(n: int, base: int, unit: str) -> str:
    value = float(n)
    for prefix in ("", "K", "M", "G", "T"):
        if value < base or prefix == "T":
            return f"{value:.0f}{prefix}{unit}" if not prefix else f"{value:.1f}{prefix}{unit}"
        value /= base
    return str(n)
