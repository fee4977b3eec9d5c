"""Log lines, captured: no raw text of a detected entity, in the message or a traceback."""

from __future__ import annotations

import asyncio
import io
import logging
import threading

import pytest

from appliance.pii import logs
from appliance.pii.logs import PLAIN, RedactingFilter, redact_logs
from appliance.pii.redactor import Redactor


def test_log_lines_carry_no_personal_data(redactor: Redactor) -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter(lambda t: redactor.redact(t, redactor.analyze(t))))
    log = logging.getLogger("appliance.test.pii")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("indexing %s failed", "Letter to Maria Garcia.pdf")
        log.warning("serving on http://%s:%d/", "127.0.0.1", 8080, extra={PLAIN: True})
        try:
            raise ValueError("cannot parse maria.garcia@example.com")
        except ValueError:
            log.exception("request of %s failed", "+44 20 7946 0958")
    finally:
        log.removeHandler(handler)
    text = out.getvalue()
    assert "indexing Letter to <PERSON" in text
    assert "ValueError" in text  # the traceback is still there
    assert "serving on http://127.0.0.1:8080/" in text  # a setting, not personal data
    for raw in ("Maria Garcia", "maria.garcia@example.com", "7946 0958"):
        assert raw not in text


def test_the_redactor_runs_off_the_event_loop_and_stop_writes_everything() -> None:
    out, ran_on = io.StringIO(), []
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)

    def redact(text: str) -> str:
        ran_on.append(_on_a_loop())
        logging.getLogger("appliance.test.chatter").error("recognizer chatter")  # not re-queued
        return text.replace("Maria Garcia", "<PERSON>")

    async def requests() -> None:
        for n in range(50):
            logging.getLogger("appliance.test.loop").warning("request %d for Maria Garcia", n)

    stop = redact_logs(redact)
    try:
        asyncio.run(requests())
    finally:
        stop()  # writes what is queued, and puts the handler back where it was
        root.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert sum("for <PERSON>" in line for line in lines) == 50
    assert "Maria Garcia" not in out.getvalue()
    assert sum(line == "recognizer chatter" for line in lines) == 50
    assert ran_on == [False] * 50  # never on the thread that runs the event loop


def _on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_a_flood_of_records_is_dropped_and_counted_not_queued_without_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, entered, release = io.StringIO(), threading.Event(), threading.Event()
    handler = logging.StreamHandler(out)
    root = logging.getLogger()
    root.addHandler(handler)
    monkeypatch.setattr(logs, "QUEUED", 10)

    def slow(text: str) -> str:
        entered.set()
        release.wait(30)
        return text

    stop = redact_logs(slow)
    flood = logging.getLogger("appliance.test.flood")
    try:
        flood.warning("first")
        assert entered.wait(30)  # the writer is busy with it: the queue fills up
        for n in range(15):
            flood.warning("line %d", n)
        release.set()
    finally:
        stop()
        root.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["first", "5 log records dropped: the log writer fell behind"]
    assert lines[2:] == [f"line {n}" for n in range(10)]
