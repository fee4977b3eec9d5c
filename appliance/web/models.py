"""The Models page's API (admins): the models on offer, and which one to serve.

Both read model headers and SQLite: on threads, not on the event loop."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Response, get, put
from litestar.openapi import ResponseSpec
from msgspec import Meta

from appliance.ops.models import ModelsView
from appliance.web.auth import ADMIN
from appliance.web.deps import JSONBody, ServicesDep, UserDep


class ServeModel(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=255)]  # a file name GET /api/models lists


@get("/api/models", opt=ADMIN, sync_to_thread=True)
def list_models(services: ServicesDep) -> ModelsView:
    """Every GGUF model on offer (llm.models_dir, the bundled one, the one llm.model names)
    with its header's metadata or why it cannot be served; the model served, the one
    loading, and the last failed switch."""
    return services.models.view()


_SERVED_ALREADY = {200: ResponseSpec(ModelsView, description="It is served already.")}


@put(
    "/api/models/served", opt=ADMIN, status_code=202, responses=_SERVED_ALREADY, sync_to_thread=True
)
def serve_model(
    data: JSONBody[ServeModel], services: ServicesDep, user: UserDep
) -> Response[ModelsView]:
    """Serve the model of file `name`: 202 while it loads (new requests go to it once it has
    loaded; those in flight finish on the old one), 200 when it is served already. The choice
    is kept across restarts. 409 when it cannot be served (the served model stays)."""
    view, loading = services.models.serve(data.name, user.name)
    return Response(view, status_code=202 if loading else 200)
