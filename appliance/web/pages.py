"""The chat and documents pages, and the health probes."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import File

from appliance.llm.types import EngineInfo
from appliance.web.auth import ADMIN, PUBLIC
from appliance.web.deps import ServicesDep


def index_handler(webui: Path) -> HTTPRouteHandler:
    @get("/", include_in_schema=False)
    async def index() -> File:
        return _page(webui / "index.html")

    return index


def documents_handler(webui: Path) -> HTTPRouteHandler:
    @get("/documents", include_in_schema=False, opt=ADMIN)
    async def documents() -> File:
        return _page(webui / "documents.html")

    return documents


def users_handler(webui: Path) -> HTTPRouteHandler:
    @get("/users", include_in_schema=False, opt=ADMIN)
    async def users() -> File:
        return _page(webui / "users.html")

    return users


def keys_handler(webui: Path) -> HTTPRouteHandler:
    @get("/keys", include_in_schema=False)
    async def keys() -> File:
        return _page(webui / "keys.html")

    return keys


def feedback_handler(webui: Path) -> HTTPRouteHandler:
    @get("/feedback", include_in_schema=False, opt=ADMIN)
    async def feedback() -> File:
        return _page(webui / "feedback.html")

    return feedback


def audit_handler(webui: Path) -> HTTPRouteHandler:
    @get("/audit", include_in_schema=False, opt=ADMIN)
    async def audit() -> File:
        return _page(webui / "audit.html")

    return audit


def sign_in_handlers(webui: Path) -> list[HTTPRouteHandler]:
    """The sign-in page, and the first-admin page that a fresh box's set-up link opens."""

    @get("/signin", include_in_schema=False, opt=PUBLIC)
    async def sign_in() -> File:
        return _page(webui / "signin.html")

    @get("/setup", include_in_schema=False, opt=PUBLIC)
    async def setup() -> File:
        return _page(webui / "signin.html")

    return [sign_in, setup]


def _page(path: Path) -> File:
    return File(path, content_disposition_type="inline", media_type="text/html; charset=utf-8")


@get("/healthz", opt=PUBLIC)
async def healthz() -> dict[str, str]:
    """The process is up and serving HTTP."""
    return {"status": "ok"}


@get("/readyz")
async def readyz(services: ServicesDep) -> Response[EngineInfo]:
    """The model is loaded and requests can be served (503 until then, or if loading failed)."""
    info = services.engine.info()
    return Response(info, status_code=200 if info.ready else 503)
