"""A logging filter that redacts personal data from every log line before it is written, on a
thread of its own: the event loop only queues records."""

from __future__ import annotations

import atexit
import copy
import logging
import logging.handlers
import queue
import threading
from collections.abc import Callable

from appliance.pii.access import request_target

# `extra={PLAIN: True}` on a record that holds no user data: it is written as it is.
PLAIN = "no_personal_data"
# Access records: (client, method, path with query, HTTP version, status) as their args.
ACCESS_LOGGERS = frozenset({"uvicorn.access", "appliance.access"})
QUEUED = 10_000  # records waiting for the writer; beyond, new ones are dropped and counted
_redacting = threading.local()  # set while this thread runs the redactor (whatever filter)


class RedactingFilter(logging.Filter):
    """Records of every logger (ours, uvicorn's, libraries') pass; `redact_logs` runs it on the
    writer thread, never on the event loop (Presidio takes ~10 ms a line)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, PLAIN, False):  # the operator's own settings, e.g. the address served
            return True
        if getattr(_redacting, "on", False):
            return record.levelno >= logging.WARNING  # the redactor's chatter, not user text
        _redacting.on = True
        try:
            self._scrub(record)
        finally:
            _redacting.on = False
        return True

    def _scrub(self, record: logging.LogRecord) -> None:
        if record.name in ACCESS_LOGGERS and isinstance(record.args, tuple) and record.args:
            # uvicorn's args: the client's address (dropped), the method, the path with its
            # query (the parameters a client put there redacted by pattern), version, status
            args = list(record.args)
            if len(args) > 2 and isinstance(args[2], str):
                args[2] = request_target(args[2])
            record.args = ("-", *args[1:])
            return
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return  # a malformed record: logging reports it itself
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))


class _Queued(logging.handlers.QueueHandler):
    """What the root logger has instead of its handlers: puts records on a bounded queue."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None]) -> None:
        super().__init__(records)
        self.writer: _Writer | None = None
        self.dropped = 0

    def handle(self, record: logging.LogRecord) -> bool:
        if getattr(_redacting, "on", False) and self.writer is not None:
            self.writer.handle(record)  # the redactor's own record: written now, not re-queued
            return True
        return bool(super().handle(record))

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # unformatted, so the filter sees msg and args apart (the access log's fields)
        return copy.copy(record)

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1  # a flood must not grow memory nor block the loop


class _Writer(logging.handlers.QueueListener):
    """The writer thread: redacts each record once, then hands it to the original handlers."""

    def __init__(self, records: queue.Queue[logging.LogRecord | None], source: _Queued,
                 scrub: RedactingFilter, handlers: list[logging.Handler]) -> None:  # fmt: skip
        super().__init__(records, *handlers, respect_handler_level=True)
        self._source, self._scrub, self._records = source, scrub, records

    def enqueue_sentinel(self) -> None:
        self._records.put(None)  # QueueListener's sentinel, waiting for room if the queue is full

    def start(self) -> None:
        super().start()
        if self._thread is not None:  # named, for thread dumps
            self._thread.name = "log-writer"

    def handle(self, record: logging.LogRecord) -> None:
        if self._source.dropped:
            dropped, self._source.dropped = self._source.dropped, 0
            super().handle(logging.makeLogRecord({
                "name": __name__, "levelno": logging.WARNING, "levelname": "WARNING",
                "msg": f"{dropped} log records dropped: the log writer fell behind",
                PLAIN: True}))  # fmt: skip
        if self._scrub.filter(record):
            setattr(record, PLAIN, True)  # redacted now: the handlers' own filter lets it be
            super().handle(record)


def redact_logs(redact: Callable[[str], str]) -> Callable[[], None]:
    """The root logger's handlers move behind a queue and a writer thread that redacts every
    record first (call after logging is set up). Returns `stop` (it also runs at exit): the
    handlers go back to the root logger, filtered in the caller's thread, and what is queued
    is written."""
    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)  # lines per recognizer
    root = logging.getLogger()
    handlers = [h for h in root.handlers if not isinstance(h, _Queued)]
    records: queue.Queue[logging.LogRecord | None] = queue.Queue(QUEUED)
    scrub = RedactingFilter(redact)
    source = _Queued(records)
    writer = source.writer = _Writer(records, source, scrub, handlers)
    for handler in handlers:
        root.removeHandler(handler)
    root.addHandler(source)
    writer.start()
    done = threading.Event()

    def stop() -> None:
        if done.is_set():
            return
        done.set()
        for handler in handlers:  # late records (other threads, exit) are still redacted
            handler.addFilter(scrub)
        # one assignment: no record finds both (written twice) or neither (lost)
        root.handlers = [h for h in root.handlers if h is not source] + handlers
        writer.stop()  # writes every record queued before this point
        atexit.unregister(stop)

    atexit.register(stop)  # before logging's own exit hook, which flushes the handlers
    return stop
