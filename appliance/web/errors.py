"""One error shape for every API route: OpenAI's `{"error": {message, type, param, code}}`."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from appliance.errors import (
    ApplianceError,
    EngineBusy,
    EngineNotReady,
    InvalidRequest,
    NotFound,
)
from appliance.web.disconnect import ClientGone
from appliance.web.schemas import ErrorBody, ErrorResponse

log = logging.getLogger(__name__)


def error_response(
    status: int, message: str, *, kind: str, param: str | None = None, code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ErrorResponse]:  # fmt: skip
    body = ErrorResponse(ErrorBody(message=message, type=kind, param=param, code=code))
    return Response(body, status_code=status, headers=headers)


def appliance_error(retry_after: int) -> object:
    def handle(_: Request[Any, Any, Any], exc: ApplianceError) -> Response[ErrorResponse]:
        if isinstance(exc, InvalidRequest):
            return error_response(400, str(exc), kind="invalid_request_error", param=exc.param)
        if isinstance(exc, NotFound):
            return error_response(404, str(exc), kind="invalid_request_error", code="not_found")
        if isinstance(exc, EngineBusy | EngineNotReady):
            code = "engine_busy" if isinstance(exc, EngineBusy) else "model_not_ready"
            return error_response(503, str(exc), kind="server_error", code=code,
                                  headers={"Retry-After": str(retry_after)})  # fmt: skip
        if isinstance(exc, ClientGone):
            log.info("%s", exc)
            return error_response(499, str(exc), kind="invalid_request_error", code="client_gone")
        log.error("request failed: %s", exc)
        return error_response(500, str(exc), kind="server_error")

    return handle


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorResponse]:
    if isinstance(exc, ValidationException):
        message, param = _validation_message(exc)
        return error_response(400, message, kind="invalid_request_error", param=param)
    kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
    return error_response(exc.status_code, exc.detail, kind=kind, headers=exc.headers)


def internal_error(_: Request[Any, Any, Any], exc: Exception) -> Response[ErrorResponse]:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal error; the server log has details", kind="server_error")


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    """`invalid request body: temperature: Expected float <= 2.0`, and the field's path."""
    errors = [e for e in (exc.extra if isinstance(exc.extra, list) else []) if isinstance(e, dict)]
    if not errors:
        return str(exc.detail), None
    details = "; ".join(
        f"{e['key']}: {e.get('message', '')}" if e.get("key") else str(e.get("message", ""))
        for e in errors
    )
    return f"invalid request body: {details}", errors[0].get("key") or None
