"""The `appliance` command line: serve, models, ingest, documents, redact, users, keys, audit,
backup, restore, config."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from appliance import __version__
from appliance.cli import accounts, audit, backup, doctor
from appliance.cli.output import table
from appliance.config import Settings, SettingsError, describe, load_settings, reference
from appliance.errors import ApplianceError

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
    accounts.add_parsers(sub)
    audit.add_parsers(sub)
    doctor.add_parsers(sub)
    backup.add_parsers(sub)
    config = sub.add_parser("config", help="show the effective settings or their reference")
    config_sub = config.add_subparsers(dest="action", required=True, metavar="ACTION")
    config_sub.add_parser("show", help="print the effective settings as TOML")
    config_sub.add_parser("reference", help="print the settings reference (Markdown)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "doctor":  # bad settings are one of its findings
        return doctor.run(args.config, args.json)
    try:
        settings = load_settings(args.config, os.environ)
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "models":
            return _models(settings)
        if args.command == "ingest":
            from appliance.cli.documents import ingest

            return ingest(settings, args.path)
        if args.command == "documents":
            from appliance.cli.documents import documents

            return documents(settings)
        if args.command in ("users", "keys"):
            return accounts.run(settings, args)
        if args.command == "audit":
            return audit.run(settings, args)
        if args.command in ("backup", "restore"):
            return backup.run(settings, args)
        if args.command == "redact":
            from appliance.cli.documents import redact

            return redact(settings, args.file)
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

    from appliance.ops import logs
    from appliance.pii.logs import PLAIN, redact_logs
    from appliance.web import tls
    from appliance.web.app import create_app
    from appliance.wiring import build_services

    logs.set_up(settings.log)
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # lines per recognizer
    host, port = host or settings.web.host, settings.web.port if port is None else port
    sock = _listen(host, port)  # before loading anything: a taken port fails fast and clearly
    certificate = tls.serving(settings.web)  # and so does a bad certificate
    services = build_services(settings)
    redact_logs(services.conversations.privacy.stored)  # no log line carries personal data
    config = uvicorn.Config(
        create_app(settings, services), loop="uvloop", http="httptools", log_config=None,
        log_level=settings.log.level, timeout_graceful_shutdown=5,
        access_log=False,  # the app writes its own, with the duration (web/requests.py)
        # uvicorn would believe X-Forwarded-* from any local peer; the app believes them
        # from web.trusted_proxies only (appliance/web/forwarded.py)
        proxy_headers=False,
        ssl_context_factory=certificate.factory if certificate else None,
    )  # fmt: skip
    scheme = "https" if certificate else "http"
    log.info("appliance %s: chat page on %s://%s:%d/", __version__, scheme, host,
             sock.getsockname()[1], extra={PLAIN: True})  # fmt: skip
    if token := services.accounts.setup_token():
        link = f"{scheme}://{host}:{sock.getsockname()[1]}/setup#{token}"
        print(f"appliance: no account exists yet. Open {link} to create the first admin; "
              "the link works once, until this server stops.", file=sys.stderr)  # fmt: skip
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


def _models(settings: Settings) -> int:
    from appliance.llm.models import offered

    rows = [("MODEL", "ARCH", "QUANT", "PARAMS", "CONTEXT", "SIZE", "TOOLS", "PATH")]
    problems: list[str] = []
    for entry in offered(settings.llm):  # what the Models page lists, read the same way
        if entry.error is not None:
            problems.append(entry.error)
        if (item := entry.info) is None:
            continue
        params, size = _human(item.parameters, 1000, ""), _human(item.size_bytes, 1024, "iB")
        tools = "yes" if item.supports_tools else "no"
        row = (item.id, item.architecture, item.quantization, params, str(item.context_length))
        rows.append((*row, size, tools, item.path))
    table(rows)
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
