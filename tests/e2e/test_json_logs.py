"""`log.format = "json"` on a real server: one object per line, each request's id in and out
(`X-Request-Id`), records tagged with the request's route and user, and still redacted."""

from __future__ import annotations

import json
import re
import signal
import time

import httpx

from tests.e2e.conftest import Server

# The same drive and the same check as the plain log's test: nothing personal in any line.
from tests.e2e.test_logs import (  # noqa: F401
    _written,
    test_no_log_line_holds_document_or_personal_text,
)

SERVER_ENV = {"APPLIANCE_LOG__LEVEL": "info", "APPLIANCE_LOG__FORMAT": "json"}
EMAIL = "olav.tryggvason@example.com"


def records(server: Server) -> list[dict[str, object]]:
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    out = []
    for line in lines:
        if line.startswith("appliance: "):  # the set-up hint, printed for a person to read
            continue
        out.append(json.loads(line))  # every other line is one JSON object
    return out


def test_each_request_has_an_id_and_its_access_record(server: Server) -> None:
    mine = server.http.get("/api/documents", headers={"X-Request-Id": "trace-7f3a.01"})
    assert mine.headers["x-request-id"] == "trace-7f3a.01"
    odd = server.http.get("/api/documents", headers={"X-Request-Id": "two words"})
    made = odd.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    missing = httpx.get(f"{server.base_url}/healthz", timeout=10).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", missing)
    assert missing != made
    asked = server.http.get(f"/api/documents/text/x.md?q={EMAIL}")  # a query holding an e-mail
    assert asked.status_code == 404
    _written(server)  # the writer thread has written every record before
    found = records(server)
    assert found
    assert all({"time", "level", "logger", "message"} <= set(r) for r in found)
    access = [r for r in found if r["logger"] == "appliance.access"]
    ours = [r for r in access if r.get("request_id") == "trace-7f3a.01"]
    assert len(ours) == 1, access
    (record,) = ours
    assert record["route"] == "/api/documents"
    assert isinstance(record["user_id"], int)
    assert isinstance(record["duration_ms"], float | int)
    assert '"GET /api/documents HTTP/1.1" 200' in str(record["message"])
    assert any(r.get("request_id") == made for r in access)
    assert not any(EMAIL in json.dumps(r) for r in found)


def test_sighup_without_tls_is_logged_and_the_server_keeps_serving(server: Server) -> None:
    # `systemctl reload appliance` (systemd/appliance.service's ExecReload) on plain HTTP
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while not any("SIGHUP: nothing to reload" in str(r["message"]) for r in records(server)):
        assert time.monotonic() < deadline, "no SIGHUP record in the log"
        time.sleep(0.1)
    assert server.process.poll() is None
    assert server.http.get("/healthz").status_code == 200
