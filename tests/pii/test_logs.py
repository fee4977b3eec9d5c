"""Log lines, captured: no raw text of a detected entity, in the message or a traceback."""

from __future__ import annotations

import io
import logging

from appliance.pii.logs import PLAIN, RedactingFilter
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
