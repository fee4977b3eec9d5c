"""`GET /metrics` (Prometheus text format, for admins or the scraper's token) and the HTTP
layer's own measures: each request counted by route template and status, and timed."""

from __future__ import annotations

import time
from typing import Any

from litestar import Response, get
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from appliance.ops.metrics import CONTENT_TYPE, Metrics
from appliance.web.deps import ServicesDep

UNMATCHED = "unmatched"  # no route: the path a client made up is never a label


@get(
    "/metrics", opt={"admin": True, "scrape": True}, include_in_schema=False, sync_to_thread=True
)  # the catalog's counts are a SQLite read: not on the loop
def metrics(services: ServicesDep) -> Response[bytes]:
    """The app's metrics; admins, or `Authorization: Bearer <web.metrics_token>`."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)


def measured(app: ASGIApp, metrics: Metrics) -> ASGIApp:
    """`app` with every HTTP request counted and timed (from its arrival to the end of its
    response) under its route template, once routing has found it."""

    async def measuring(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            route = scope.get("path_template") or UNMATCHED
            method = str(scope.get("method", ""))
            metrics.request(method, str(route), status, time.perf_counter() - start)

    return measuring
