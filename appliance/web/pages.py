"""The chat page, its static assets, and the health probes."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import File

from appliance.web.deps import ServicesDep
from appliance.web.schemas import Readiness


def index_handler(webui: Path) -> HTTPRouteHandler:
    @get("/", include_in_schema=False)
    async def index() -> File:
        return File(webui / "index.html", content_disposition_type="inline",
                    media_type="text/html; charset=utf-8")  # fmt: skip

    return index


@get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(services: ServicesDep) -> Response[Readiness]:
    """The model is loaded and requests can be served (503 until then)."""
    info = services.engine.info()
    body = Readiness(
        ready=info.ready, model=info.model, load_error=info.load_error, queued=info.queued,
        busy=info.busy, gpu_offload_supported=info.gpu_offload_supported,
        gpu_layers=info.gpu_layers, completed=info.completed, cancelled=info.cancelled,
    )  # fmt: skip
    return Response(body, status_code=200 if info.ready else 503)
