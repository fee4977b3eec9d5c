"""Each HTTP request's id (`X-Request-Id`, taken from the client or made), the context its
log records carry, and its access record, written once the response has ended."""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from appliance.ops.logs import REQUEST_ID, request_scope

HEADER = b"x-request-id"
# A proxy's or client's id is kept when it is a plain token of sane length; anything else
# (spaces, quotes, a kilobyte) would be a way into every log line: a new id instead.
_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
access = logging.getLogger("appliance.access")


def with_request_ids(app: ASGIApp) -> ASGIApp:
    async def identified(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        sent = next((v for k, v in scope["headers"] if k.lower() == HEADER), b"")
        request_id = sent.decode() if _SANE_ID.fullmatch(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})[REQUEST_ID] = request_id
        target = _target(scope)  # before routing, which rewrites the path of mounted apps
        start, status = time.perf_counter(), 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (HEADER, request_id.encode())]  # fmt: skip
            await send(message)

        token = request_scope.set(scope)
        try:
            await app(scope, receive, sending)
        finally:
            _log_access(scope, target, status, time.perf_counter() - start)
            request_scope.reset(token)

    return identified


def _target(scope: Scope) -> str:
    target = urllib.parse.quote(scope.get("root_path", "") + scope["path"])
    if query := scope.get("query_string", b""):
        target += "?" + query.decode("latin-1")
    return target


def _log_access(scope: Scope, target: str, status: int, seconds: float) -> None:
    """uvicorn's access line, with the duration; the filter in pii/logs.py keeps the path
    and redacts the query's values, as it does for uvicorn's own."""
    access.info('%s - "%s %s HTTP/%s" %d', "-", scope.get("method", ""), target,
                scope.get("http_version", "1.1"), status,
                extra={"duration_ms": round(seconds * 1000, 1)})  # fmt: skip
