"""The HTML pages and the health probes."""

from __future__ import annotations

from pathlib import Path

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.response import File

from appliance.llm.types import EngineInfo
from appliance.web.auth import ADMIN, PUBLIC
from appliance.web.deps import ServicesDep

# The HTML pages: route, file in webui/, and who may open it (opt: public, admin, or anyone
# signed in). Each page's data comes from the API; the file itself is static.
PAGES: tuple[tuple[str, str, dict[str, bool]], ...] = (
    ("/", "index.html", {}),
    ("/keys", "keys.html", {}),
    ("/view", "view.html", {}),  # a cited document's indexed text
    ("/experts", "experts.html", {}),  # questions handed to people (experts: /api/handoffs)
    ("/documents", "documents.html", {}),  # admins: every document; others: theirs
    ("/users", "users.html", ADMIN),
    ("/feedback", "feedback.html", ADMIN),
    ("/audit", "audit.html", ADMIN),
    ("/models", "models.html", ADMIN),
    ("/signin", "signin.html", PUBLIC),
    ("/setup", "signin.html", PUBLIC),  # the first-admin form a fresh box's set-up link opens
)


def page_handlers(webui: Path) -> list[HTTPRouteHandler]:
    return [_page_handler(route, webui / name, opt) for route, name, opt in PAGES]


def _page_handler(route: str, path: Path, opt: dict[str, bool]) -> HTTPRouteHandler:
    async def page() -> File:
        return _page(path)

    return get(route, include_in_schema=False, opt=opt, name=f"page:{route}")(page)


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
