"""The process' log: plain lines for journald, or one JSON object per line (`log.format`),
each record carrying the request it was written for (id, route, user) where there is one."""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from appliance.config import LogSettings

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Set by the HTTP layer for the length of a request: what its log records are tagged with.
# The scope is read when a record is made (the route is known once routing is done, the user
# once signed in); threads started for the request (asyncio.to_thread) carry it along.
request_scope: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "request_scope", default=None
)
REQUEST_ID = "request_id"  # the key of the request's id in the ASGI scope's state
_FIELDS = ("request_id", "route", "user_id", "duration_ms")


def set_up(settings: LogSettings) -> None:
    """The root logger's handler and format, and records tagged with their request."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if settings.format == "json"
                         else logging.Formatter(PLAIN_FORMAT))  # fmt: skip
    logging.basicConfig(level=settings.level.upper(), handlers=[handler], force=True)
    logging.setLogRecordFactory(_tagging(logging.getLogRecordFactory()))


def _tagging(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        scope = request_scope.get()
        if scope is not None:
            state = scope.get("state") or {}
            record.request_id = state.get(REQUEST_ID)
            record.route = scope.get("path_template")
            identity = state.get("identity")
            record.user_id = getattr(getattr(identity, "user", None), "id", None)
        return record

    return tagged


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and the
    request's id, route, user id and duration (ms) where the record has them."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }  # fmt: skip
        for field in _FIELDS:
            if (value := getattr(record, field, None)) is not None:
                entry[field] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)
