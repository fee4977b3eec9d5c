"""One error shape for every API route: OpenAI's `{"error": {message, type, param, code}}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect

from appliance.errors import (
    ApplianceError,
    Conflict,
    DirectoryUnavailable,
    EngineBusy,
    Forbidden,
    InvalidRequest,
    ModelError,
    ModelNotFound,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
)
from appliance.pii.logs import PLAIN
from appliance.web.disconnect import ClientGone
from appliance.web.schemas import ErrorBody, ErrorResponse

log = logging.getLogger(__name__)


def _response(
    status: int, body: ErrorBody, headers: dict[str, str] | None = None
) -> Response[ErrorResponse]:
    return Response(ErrorResponse(body), status_code=status, headers=headers)


# What each error means over HTTP: status, OpenAI error type, and a stable code.
_MAPPING: tuple[tuple[type[ApplianceError], int, str, str | None], ...] = (
    (InvalidRequest, 400, "invalid_request_error", None),
    (Unauthorized, 401, "invalid_request_error", "invalid_api_key"),
    (Forbidden, 403, "permission_error", "forbidden"),
    (ModelNotFound, 404, "invalid_request_error", "model_not_found"),  # OpenAI's code
    (NotFound, 404, "invalid_request_error", "not_found"),
    (Conflict, 409, "invalid_request_error", "conflict"),
    (TooLarge, 413, "invalid_request_error", "too_large"),
    (RateLimited, 429, "rate_limit_error", "rate_limited"),
    (ClientGone, 499, "invalid_request_error", "client_gone"),
    (EngineBusy, 503, "server_error", "engine_busy"),
    (DirectoryUnavailable, 503, "server_error", "directory_unavailable"),
    (ModelError, 500, "server_error", "model_unavailable"),
)


def describe(exc: Exception) -> tuple[int, ErrorBody]:
    """Status and body for any error; also used for `error` events inside a stream."""
    for kind, status, type_, code in _MAPPING:
        if isinstance(exc, kind):
            param = exc.param if isinstance(exc, InvalidRequest | ModelNotFound) else None
            return status, ErrorBody(message=str(exc), type=type_, param=param, code=code)
    if isinstance(exc, ApplianceError):
        return 500, ErrorBody(message=str(exc), type="server_error")
    log.exception("unhandled error", exc_info=exc)
    return 500, ErrorBody(message="internal error; the server log has details", type="server_error")


def appliance_error(retry_after: int) -> object:
    def handle(request: Request[Any, Any, Any], exc: ApplianceError) -> Response[Any]:
        if isinstance(exc, Unauthorized) and _wants_page(request):
            return Redirect("/signin")
        status, body = describe(exc)
        if status >= 500:
            log.error("%s: %s", status, exc)
        else:  # a fixed text, not the message: a flood of 401s must cost no redaction
            log.info("%d %s", status, body.code or body.type, extra={PLAIN: True})
        headers = None
        if isinstance(exc, EngineBusy):
            headers = {"Retry-After": str(exc.retry_after or retry_after)}
        if isinstance(exc, DirectoryUnavailable):
            headers = {"Retry-After": str(retry_after)}
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return _response(status, body, headers)

    return handle


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorResponse]:
    if exc.status_code == 413:
        size = request.app.request_max_body_size
        limit = size // 1024 if isinstance(size, int) else 0
        message = (f"the request body is over the limit of {limit} KiB (limits.max_body_kb); "
                   "send less, or raise the setting")  # fmt: skip
        return _response(413, ErrorBody(message, "invalid_request_error", code="too_large"))
    if isinstance(exc, ValidationException):
        message, param = _validation_message(exc)
        return _response(400, ErrorBody(message, "invalid_request_error", param=param))
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return _response(exc.status_code, ErrorBody(exc.detail, kind), exc.headers)


def internal_error(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorResponse]:
    return _response(*describe(exc))


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """`invalid request body: temperature: Expected float <= 2.0`, and the field's path."""
    errors = [e for e in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(e, dict)]
    if not errors:
        return str(exc.detail), None
    details = "; ".join(
        f"{e['key']}: {e.get('message', '')}" if e.get("key") else str(e.get("message", ""))
        for e in errors
    )
    source = errors[0].get("source")  # "body", or a ParamType (a str Enum)
    where = {"path": "address", "query": "query"}.get(str(getattr(source, "value", source)), "body")
    return f"invalid request {where}: {details}", errors[0].get("key") or None
