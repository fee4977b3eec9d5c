"""The chat page, its static assets, and the health probes."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import File

from appliance.llm.types import EngineInfo
from appliance.web.deps import ServicesDep


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
async def readyz(services: ServicesDep) -> Response[EngineInfo]:
    """The model is loaded and requests can be served (503 until then, or if loading failed)."""
    info = services.engine.info()
    return Response(info, status_code=200 if info.ready else 503)
