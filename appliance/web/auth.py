"""Who is asking: a session cookie (the page) or an API key (scripts, the OpenAI API). Every
route needs one of them unless it is marked public; admin routes need an admin."""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from appliance.accounts.service import Accounts
from appliance.errors import Forbidden, Unauthorized
from appliance.store.audience import Reader
from appliance.store.audit import AuditLog
from appliance.store.users import User
from appliance.web.deps import ServicesDep

SESSION_COOKIE = "appliance_session"
# over TLS: a `__Host-` cookie is Secure, for this host only, path /, so neither a page on a
# sibling host nor a man in the middle of plain http can plant a session of their choosing
SECURE_SESSION_COOKIE = "__Host-appliance_session"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})  # methods that need the CSRF token
PUBLIC = {"public": True}  # handler opt: reachable without signing in
ADMIN = {"admin": True}  # handler opt: admins only


class Identity(msgspec.Struct, frozen=True):
    user: User
    csrf: str | None  # set for a session: unsafe requests must echo it in X-CSRF-Token
    session: str | None


def _json_only(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """Public changes (sign-in, first admin) take JSON only: a page on another site can post a
    form or text/plain, but not JSON without the browser asking first (login CSRF)."""
    if connection.scope.get("method") in UNSAFE:
        kind = connection.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise Forbidden("send JSON (Content-Type: application/json)")


def identify(header: str, token: str | None, accounts: Accounts) -> Identity | None:
    """Who sends this Authorization header or session cookie (SQLite: call on a thread)."""
    if header.lower().startswith("bearer "):
        user = accounts.user_for_key(header[7:].strip())
        return Identity(user, None, None) if user else None
    found = accounts.session(token) if token else None
    return Identity(found[0], found[1], token) if found and token else None


def session_cookie(connection: ASGIConnection[Any, Any, Any, Any], always_secure: bool) -> str:
    """The session cookie's name for this request; only that one is read (an http page's
    plain cookie is no session over https)."""
    secure = always_secure or connection.url.scheme == "https"
    return SECURE_SESSION_COOKIE if secure else SESSION_COOKIE


def guard_for(accounts: Accounts, audit: AuditLog, secure_cookies: bool = False,
              metrics_token: str = "") -> Any:  # fmt: skip
    """`metrics_token`: the bearer token that opens routes marked `scrape` (a scraper has
    no session); anyone else needs what the route needs (an admin for /metrics)."""
    key_use = KeyUse(audit)
    # The lookups wait on the one SQLite connection (ingestion, long FTS queries): never on the
    # event loop, and on threads of their own, so sign-ins (argon2) cannot hold them up.
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="auth")

    def looked_up(header: str, token: str | None) -> Identity | None:
        identity = identify(header, token, accounts)
        if identity is not None and identity.session is None:
            key_use.seen(identity.user.name, header[7:].strip()[:12])
        return identity

    async def guard(
        connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
    ) -> None:
        if handler.opt.get("public"):
            _json_only(connection)
            return
        header = connection.headers.get("authorization", "")
        if handler.opt.get("scrape") and metrics_token and _is_token(header, metrics_token):
            return
        token = connection.cookies.get(session_cookie(connection, secure_cookies))
        identity = None
        if header.lower().startswith("bearer ") or token:  # no credentials: nothing to look up
            loop = asyncio.get_running_loop()
            identity = await loop.run_in_executor(pool, looked_up, header, token)
        if identity is None:
            raise Unauthorized("sign in first, or send an API key: Authorization: Bearer apl_… "
                               "(`appliance keys create USER` makes one)")  # fmt: skip
        if identity.csrf is not None and connection.scope.get("method") in UNSAFE:
            sent = connection.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), identity.csrf.encode()):
                raise Forbidden("missing or wrong CSRF token (X-CSRF-Token); reload the page")
        if handler.opt.get("admin") and identity.user.role != "admin":
            raise Forbidden("this needs an admin account")
        connection.state.identity = identity

    return guard


class KeyUse:
    """Audits the use of each API key: once when first seen, then at most every 10 minutes
    (each chat request is audited on its own anyway)."""

    def __init__(self, audit: AuditLog, every_s: float = 600) -> None:
        self._audit, self._every = audit, every_s
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def seen(self, user: str, prefix: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(prefix, -self._every) < self._every:
                return
            self._last[prefix] = now
        self._audit.record(user, "key.use", user, f"key {prefix}…")


def _is_token(header: str, token: str) -> bool:
    sent = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return hmac.compare_digest(sent.encode(), token.encode())


def current_user(request: Request[Any, Any, Any]) -> User:
    """The `user` dependency: set by the guard, which every non-public route passes."""
    identity: Identity = request.state.identity
    return identity.user


def current_reader(request: Request[Any, Any, Any], services: ServicesDep) -> Reader:
    """The `reader` dependency: the documents the signed-in user may see (a database read:
    run in a thread)."""
    identity: Identity = request.state.identity
    return services.accounts.reader(identity.user)
