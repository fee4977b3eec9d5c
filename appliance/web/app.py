"""The Litestar application factory: routes, dependencies, lifespan, errors, static files."""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import ResponseHeader
from litestar.di import Provide
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router

from appliance.config import Settings
from appliance.errors import ApplianceError
from appliance.services import Services
from appliance.threads import lower_priority
from appliance.web import handoff, pages, session
from appliance.web.audit import audit_records, audit_verify
from appliance.web.auth import PUBLIC, current_reader, current_user, guard_for
from appliance.web.conversations import ConversationController
from appliance.web.documents import document_file, document_text, list_collections, list_documents
from appliance.web.errors import appliance_error, http_error, internal_error
from appliance.web.feedback import list_feedback, rate_answer
from appliance.web.forwarded import TrustedProxies, strict_transport
from appliance.web.metrics import measured, metrics
from appliance.web.models import list_models, serve_model
from appliance.web.openai_api import OpenAIController
from appliance.web.openapi import describe_routes, openapi_config
from appliance.web.privacy import privacy, redact
from appliance.web.requests import with_request_ids
from appliance.web.search import search
from appliance.web.users import (
    add_user,
    change_groups,
    change_user,
    create_key,
    erase_user_data,
    list_users,
    my_keys,
    revoke_key,
)

# The page runs no inline script and loads nothing from elsewhere; the policy holds it to that.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def webui_dir() -> Path:
    """The page's files: inside the installed package, else the checkout's webui/."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "webui", package.parent / "webui"):
        if (candidate / "index.html").is_file():
            return candidate
    raise FileNotFoundError(f"webui/index.html not found next to {package}")


_SWITCH_INTERVAL_S = 0.0005
_SERVING_NICE = 5  # CFS weight 335 against 1024: a third of a core while generation wants it


def create_app(settings: Settings, services: Services) -> Litestar:
    webui = webui_dir()
    middleware = [TrustedProxies(settings.web.trusted_proxies).middleware]
    if settings.web.over_tls:
        middleware.append(strict_transport)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        for start in services.on_startup:
            start()
        # What start-up made (models, recognizers, tokenizers: a million objects) lives as
        # long as the process: out of the collector's sight, a full collection while serving
        # takes milliseconds, not the quarter of a second it takes now, holding every thread.
        gc.collect()
        gc.freeze()
        # The engine's threads (started above, and llama.cpp's, which it starts) keep the
        # priority the process has; this thread, which serves HTTP, and every thread it
        # starts from now on (the workers of SQLite, Presidio, searches) go below them.
        lower_priority(_SERVING_NICE)
        # The engine lets the GIL go while llama.cpp decodes, and waits for it back after
        # each step while this thread or a worker runs Python: for up to the switch interval
        # (5 ms by default, a third of a token). A short one bounds that wait.
        sys.setswitchinterval(_SWITCH_INTERVAL_S)
        try:
            yield
        finally:
            for stop in services.on_shutdown:
                stop()

    app = Litestar(
        route_handlers=[
            *pages.page_handlers(webui),
            pages.healthz,
            pages.readyz,
            metrics,
            create_static_files_router("/static", directories=[webui / "static"], opt=PUBLIC),
            session.sign_in,
            session.sign_in_options,
            session.oidc_login,
            session.oidc_callback,
            session.first_admin,
            session.sign_out,
            session.me,
            ConversationController,
            list_documents,
            list_collections,
            document_text,
            document_file,
            search,
            audit_records,
            list_users,
            add_user,
            change_user,
            change_groups,
            my_keys,
            create_key,
            revoke_key,
            rate_answer,
            list_feedback,
            erase_user_data,
            audit_verify,
            list_models,
            serve_model,
            redact,
            privacy,
            handoff.hand_over,
            handoff.queue,
            handoff.show,
            handoff.claim,
            handoff.answer,
            handoff.close,
            handoff.save_faq,
            handoff.events,
            OpenAIController,
        ],
        dependencies={
            "services": Provide(lambda: services, use_cache=True, sync_to_thread=False),
            "llm_settings": Provide(lambda: settings.llm, use_cache=True, sync_to_thread=False),
            "user": Provide(current_user, sync_to_thread=False),
            "reader": Provide(current_reader, sync_to_thread=True),
        },
        guards=[guard_for(services.accounts, services.audit, settings.web.over_tls,
                          settings.web.metrics_token)],
        middleware=middleware,
        exception_handlers={
            ApplianceError: appliance_error(settings.web.retry_after),  # type: ignore[dict-item]
            HTTPException: http_error,
            Exception: internal_error,
        },
        lifespan=[lifespan],
        response_headers=[ResponseHeader(name=k, value=v) for k, v in SECURITY_HEADERS.items()],
        openapi_config=openapi_config(),  # /schema/openapi.json, for signed-in users
        request_max_body_size=settings.limits.max_body_kb * 1024,
        logging_config=None,  # the process's logging is set up once, in cli.py
    )
    describe_routes(app)  # each route's errors and security, for the schema
    # outside Litestar's own handling, so that a path no route matches is counted too
    app.asgi_handler = with_request_ids(measured(app.asgi_handler, services.metrics))
    return app
