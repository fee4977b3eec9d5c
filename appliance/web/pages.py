"""The chat and documents pages, and the health probes."""

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
        return _page(webui / "index.html")

    return index


def documents_handler(webui: Path) -> HTTPRouteHandler:
    @get("/documents", include_in_schema=False)
    async def documents() -> File:
        return _page(webui / "documents.html")

    return documents


def _page(path: Path) -> File:
    return File(path, content_disposition_type="inline", media_type="text/html; charset=utf-8")


@get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(services: ServicesDep) -> Response[EngineInfo]:
    """The model is loaded and requests can be served (503 until then, or if loading failed)."""
    info = services.engine.info()
    return Response(info, status_code=200 if info.ready else 503)
