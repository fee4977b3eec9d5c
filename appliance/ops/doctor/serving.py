"""Doctor checks of what `serve` starts from: the settings in use and the port to listen on."""

from __future__ import annotations

import errno
import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Mapping
from pathlib import Path

from appliance.config import (
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    Settings,
    SettingsError,
    WebSettings,
    load_settings,
)
from appliance.ops.doctor import Check, fail, ok, warn


def settings_in_use(
    config: Path | None, environ: Mapping[str, str]
) -> tuple[Check, Settings | None]:
    """Where the settings come from (the variables by name: their values may be secrets)."""
    if config is None and DEFAULT_CONFIG_PATH.is_file():
        config = DEFAULT_CONFIG_PATH
    source = str(config) if config is not None else "defaults"
    if names := sorted(name for name in environ if name.startswith(ENV_PREFIX)):
        source += f" + environment ({', '.join(names)})"
    if config is None:
        source += f" (no settings file: {DEFAULT_CONFIG_PATH} does not exist)"
    try:
        settings = load_settings(config, environ)
    except SettingsError as exc:
        action = (
            "fix that setting (docs/settings.md lists them all); the checks that need the "
            "settings were left out"
        )
        return fail("settings", f"{exc}; settings from {source}", action), None
    return ok("settings", source), settings


def port(web: WebSettings) -> Check:
    """Whether `serve` could listen on web.host:web.port (bound and let go at once)."""
    where = f"{web.host}:{web.port}"
    if web.port == 0:
        return ok("port", f"{where}: port 0, the system picks a free one at start")
    family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as `serve` binds it
        try:
            sock.bind((web.host.strip("[]"), web.port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                action = (
                    "is the appliance already serving? If not, stop what holds the port or "
                    "set web.port to a free one"
                )
                return warn("port", f"{where} is in use; {_who_answers(web)}", action)
            action = (
                "set web.host to an address of this box and web.port to a free port (one "
                "below 1024 needs root)"
            )
            return fail("port", f"cannot listen on {where}: {exc.strerror or exc}", action)
    return ok("port", f"{where} is free")


def _who_answers(web: WebSettings) -> str:
    """What answers GET /healthz on the port, asked over loopback only."""
    host = web.host.strip("[]")
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 - comparing, not binding
        host = "::1" if host == "::" else "127.0.0.1"
    try:
        if not ipaddress.ip_address(host).is_loopback:
            return "/healthz not asked (web.host is not a loopback address)"
    except ValueError:
        if host != "localhost":
            return "/healthz not asked (web.host is not a loopback address)"
    scheme = "https" if web.tls_cert else "http"
    try:
        status, body = _get_healthz(host, web.port, bool(web.tls_cert))
    except (OSError, http.client.HTTPException) as exc:
        return f"no HTTP answer from {scheme}://{host}:{web.port}/healthz ({exc})"
    if status == 200 and body.get("status") == "ok":
        return f"{scheme}://{host}:{web.port}/healthz answers ok: an appliance serves there"
    return f"{scheme}://{host}:{web.port}/healthz answers HTTP {status}: not the appliance?"


def _get_healthz(host: str, port: int, tls: bool) -> tuple[int, dict[str, object]]:
    conn: http.client.HTTPConnection
    if tls:
        # who answers, not whether to trust it: nothing is sent but the request line
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=3, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=3)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        raw = response.read(4096)
    finally:
        conn.close()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    return response.status, body if isinstance(body, dict) else {}
