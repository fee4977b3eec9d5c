"""The OpenAPI document at /schema/openapi.json: every route, its bodies, and its errors."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from litestar import Litestar, Request
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.routes import HTTPRoute

from appliance import __version__
from appliance.llm.types import EngineInfo
from appliance.web.auth import CSRF_HEADER, SECURE_SESSION_COOKIE, SESSION_COOKIE, UNSAFE
from appliance.web.schemas import (
    ChatCompletionChunk,
    DoneData,
    ErrorResponse,
    QueuedData,
    RenderData,
    StartData,
    TokenData,
)

SCHEMA_PATH = "/schema"
_REF = "#/components/schemas/"

# What each status means; every one of them comes with the one error shape, ErrorResponse.
ERRORS: dict[int, str] = {
    400: "The body, a query parameter or a field is invalid; `error.param` names it.",
    401: "Not signed in: send the session cookie, or `Authorization: Bearer apl_…`.",
    403: "Not allowed: an admin route, a change without the session's X-CSRF-Token, a public "
    "change not sent as JSON, or what the route says.",
    404: "No such item (or not yours): the id, name or path in the address is unknown; for a "
    "chat completion, `model` names no model served (`model_not_found`).",
    409: "The item's state does not allow it now (say, a conversation still answering).",
    413: "Over a limit: the body (limits.max_body_kb), the message (limits.max_message_chars), "
    "a redaction's text (limits.redact_max_chars) or a search's collections "
    "(limits.search_max_collections).",
    429: "Too many requests of this user (or failed sign-ins): retry after `Retry-After` s.",
    503: "The model is busy or still loading (at sign-in: the directory cannot be reached): "
    "retry after `Retry-After` seconds.",
}
_RETRY_AFTER = {
    "description": "Seconds to wait before trying again.",
    "required": True,
    "schema": {"type": "integer", "minimum": 0},
}

# Errors beyond those a route's shape gives (401 unless public; 403 for an admin route or a
# change; 400 for a body or any parameter; 413 for a body; 404 for a path parameter).
EXTRA_ERRORS: dict[str, tuple[int, ...]] = {
    "POST /api/session": (401, 429, 503),  # wrong name or password; the brake; directory down
    "GET /auth/oidc/login": (404, 503),  # OIDC not set up; the provider cannot be reached
    "GET /auth/oidc/callback": (401, 404, 503),  # a bad state, code or ID token
    "POST /api/users": (409,),  # the name is taken
    "PATCH /api/users/{name}": (409,),  # one's own account cannot be disabled
    "DELETE /api/conversations": (409,),  # one is still answering
    "DELETE /api/conversations/{conversation_id}": (409,),
    "POST /api/conversations/{conversation_id}/messages": (409, 429, 503),
    "POST /api/conversations/{conversation_id}/regenerate": (409, 429, 503),
    "POST /v1/chat/completions": (400, 404, 413, 429, 503),  # 404: `model` is not served
    "PUT /api/models/served": (404, 409),  # no such file; it cannot be served, or not now
    "POST /api/search": (429,),  # the per-user limits, as chat's (counted apart)
    "POST /api/redact": (429,),
    "GET /api/documents/file/{path}": (403,),  # originals are for admins under pii.documents
    "POST /api/conversations/{conversation_id}/handoff": (409,),  # one still with the experts
    "GET /api/handoffs": (404,),  # the account answers no hand-offs
    "POST /api/handoffs/{handoff_id}/claim": (409,),  # another expert has it
    "POST /api/handoffs/{handoff_id}/answer": (409,),
}

# Answers sent as server-sent events; `/v1/chat/completions` only with `"stream": true`.
EVENT_STREAMS: dict[str, str] = {
    "POST /api/conversations/{conversation_id}/messages": "Server-sent events: `start` "
    "(conversation_id, user_message); `queued` ({ahead}: requests that start before this one) "
    "while it waits for the engine, each time that number changes, never after the first token; "
    "`token` ({text}) each; `render` ({part, html}: the answer so far as HTML is the `html` of "
    "the last `render` of each part, in order; one for a part replaces it and drops those after "
    "it, so only the last blocks, which may still change, are sent again); then `done` "
    "({message, finish_reason, citations}) or `error` (ErrorResponse).",
    "POST /api/conversations/{conversation_id}/regenerate": "As for POST …/messages: `start`, "
    "`queued`…, `token`…, `render`, then `done` or `error`.",
    "GET /api/events": "Server-sent events while the page is open: `handoff` "
    "({conversation_id, handoff_id, status}) when an expert claims, answers or closes one of the "
    "user's questions; a comment line every 20 s keeps it open.",
    "POST /v1/chat/completions": "With `stream: true`: OpenAI's `data: <ChatCompletionChunk>` "
    'lines (the last with `citations`), `data: {"error": …}` on a failure part way, then '
    "`data: [DONE]`.",
}

# The events of an answer on the chat page's API, and their data.
ANSWER_EVENTS: dict[str, type[msgspec.Struct]] = {
    "start": StartData,
    "queued": QueuedData,
    "token": TokenData,
    "render": RenderData,
    "done": DoneData,
    "error": ErrorResponse,
}

SECURITY_SCHEMES = {
    "apiKey": SecurityScheme(
        type="http",
        scheme="bearer",
        description="An API key (`apl_…`) from the keys page or `appliance keys create USER`.",
    ),
    "session": SecurityScheme(
        type="apiKey",
        name=SESSION_COOKIE,
        security_scheme_in="cookie",
        description=f"The page's session (POST /api/session; named {SECURE_SESSION_COOKIE} "
        f"over TLS); changes also need {CSRF_HEADER}.",
    ),
}


class _Document(JsonRenderPlugin):
    """The JSON document, finished with what Litestar's specs cannot say (see `finish`)."""

    finished: dict[str, Any] | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if openapi_schema is not self.finished:  # Litestar keeps the document it built
            finish(openapi_schema, request.app)
            self.finished = openapi_schema
        return self.render_json(request, openapi_schema)


def openapi_config() -> OpenAPIConfig:
    """The JSON document only: Litestar's UI plugins load scripts from CDNs."""
    config = OpenAPIConfig(
        title="appliance",
        version=__version__,
        path=SCHEMA_PATH,
        description="A private AI assistant on one box: the chat page's API, the admin pages' "
        "API and an OpenAI-compatible API. Every error is an ErrorResponse.",
        render_plugins=[_Document()],
        use_handler_docstrings=True,
        components=Components(security_schemes=dict(SECURITY_SCHEMES)),
    )
    config.default_plugin = None  # else `/schema` serves the document too
    return config


def describe_routes(app: Litestar) -> None:
    """Gives each route of `app` in the schema its error responses and its security."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.resolve_include_in_schema():
                _describe(handler, route)


def _describe(handler: HTTPRouteHandler, route: HTTPRoute) -> None:
    (method,) = handler.http_methods - {"HEAD", "OPTIONS"}
    operation = f"{method} {route.path_format or '/'}"
    codes = set(error_codes(handler, method, route)) | set(EXTRA_ERRORS.get(operation, ()))
    responses = {
        code: ResponseSpec(ErrorResponse, description=ERRORS[code], generate_examples=False)
        for code in sorted(codes)
    }
    if operation in EVENT_STREAMS and operation != "POST /v1/chat/completions":
        responses[200] = ResponseSpec(
            str,
            description=EVENT_STREAMS[operation],
            media_type="text/event-stream",
            generate_examples=False,
        )
    if operation == "GET /readyz":
        responses[503] = ResponseSpec(
            EngineInfo,
            description="Not ready: the model is still loading, or failed to (`load_error`).",
            generate_examples=False,
        )
    handler.responses = {**(handler.responses or {}), **responses}
    if not handler.opt.get("public"):
        handler.security = [{"apiKey": []}, {"session": []}]


def error_codes(handler: HTTPRouteHandler, method: str, route: HTTPRoute) -> tuple[int, ...]:
    """The errors any route of this shape can give."""
    given = {*handler.resolve_dependencies(), *route.path_parameters, "data", "request", "self"}
    body = "data" in handler.parsed_fn_signature.parameters
    query = any(name not in given for name in handler.parsed_fn_signature.parameters)
    codes = [] if handler.opt.get("public") else [401]
    if handler.opt.get("admin") or method in UNSAFE:
        codes.append(403)
    if body or query or route.path_parameters:  # Litestar validates each (an int id, say)
        codes.append(400)
    if route.path_parameters:
        codes.append(404)
    if body:
        codes.append(413)
    return tuple(codes)


def finish(document: dict[str, Any], app: Litestar) -> None:
    """What Litestar's specs cannot say: Retry-After on every 429 and 503 error, the OpenAI
    route's event stream beside its JSON, no credentials for public routes, and each body's
    schema as msgspec gives it (Litestar drops constraints such as `ge=0` and those of items)."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _finish_operation(f"{method.upper()} {path}", operation)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    structs = [*_structs(app), *ANSWER_EVENTS.values(), ChatCompletionChunk]  # streamed too
    _, exact = msgspec.json.schema_components(structs, ref_template=_REF + "{name}")
    schemas.update(exact)


def _finish_operation(operation_id: str, operation: dict[str, Any]) -> None:
    responses = operation["responses"]
    for code in ("429", "503"):
        content = responses.get(code, {}).get("content", {}).get("application/json", {})
        if content.get("schema") == {"$ref": _REF + "ErrorResponse"}:
            responses[code]["headers"] = {"Retry-After": _RETRY_AFTER}
    operation.setdefault("security", [])
    if operation_id == "POST /v1/chat/completions":
        ok = responses["200"]
        ok["description"] = "The answer; " + EVENT_STREAMS[operation_id]
        ok["content"] = {"application/json": {"schema": {"$ref": _REF + "ChatCompletion"}}}
    if operation_id in EVENT_STREAMS:
        responses["200"]["content"]["text/event-stream"] = {"schema": _events(operation_id)}


def _events(operation_id: str) -> dict[str, Any]:
    """One event of the stream (as OpenAPI 3.1 reads `schema` for text/event-stream): its
    name, and its `data` as JSON of the schema given."""
    if operation_id != "POST /v1/chat/completions":
        return {
            "oneOf": [
                _event({"$ref": _REF + kind.__name__}, name) for name, kind in ANSWER_EVENTS.items()
            ]
        }
    chunk = {"anyOf": [{"$ref": _REF + "ChatCompletionChunk"}, {"$ref": _REF + "ErrorResponse"}]}
    done = {"type": "object", "required": ["data"], "properties": {"data": {"const": "[DONE]"}}}
    return {"oneOf": [_event(chunk), done]}


def _event(data: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "data": {
            "type": "string",
            "not": {"const": "[DONE]"},
            "contentMediaType": "application/json",
            "contentSchema": data,
        }
    }
    if name:
        properties["event"] = {"const": name}
    return {"type": "object", "required": sorted(properties), "properties": properties}


def _structs(app: Litestar) -> list[type[msgspec.Struct]]:
    """The Structs of every body and answer of `app`'s routes (those nested in them follow)."""
    found: dict[str, type[msgspec.Struct]] = {}

    def visit(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
            found.setdefault(annotation.__name__, annotation)
        for arg in get_args(annotation):
            visit(arg)

    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            signature = handler.parsed_fn_signature
            visit(signature.return_type.annotation)
            if "data" in signature.parameters:
                visit(signature.parameters["data"].annotation)
    return list(found.values())
