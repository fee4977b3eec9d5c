"""A logging filter that redacts personal data from every log line before it is written."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

# `extra={PLAIN: True}` on a record that holds no user data: it is written as it is.
PLAIN = "no_personal_data"


class RedactingFilter(logging.Filter):
    """Install on the handlers: records of every logger (ours, uvicorn's, libraries') pass."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact
        self._busy = threading.local()  # the redactor's own log records, made while redacting

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, PLAIN, False):  # the operator's own settings, e.g. the address served
            return True
        if getattr(self._busy, "on", False):
            return record.levelno >= logging.WARNING  # the redactor's chatter, not user text
        self._busy.on = True
        try:
            self._scrub(record)
        finally:
            self._busy.on = False
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and record.args:
            record.args = ("-", *record.args[1:])  # the client's address; the rest is ours
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return  # a malformed record: logging reports it itself
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))


def redact_logs(redact: Callable[[str], str]) -> None:
    """Every handler of the root logger gets the filter (call after logging is set up)."""
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # lines per recognizer
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(redact))
