"""Personal data under a real server: pseudonymized for the model, restored for the user,
stored with placeholders, and absent from every log line."""

from __future__ import annotations

import time

from tests.e2e.conftest import Server
from tests.web.conftest import sse_events

SERVER_ENV = {"APPLIANCE_PII__PROMPTS": "pseudonymize", "APPLIANCE_LOG__LEVEL": "info"}
RAW = ("Maria Garcia", "maria.garcia@example.com", "4111 1111 1111 1111")
MESSAGE = "I am Maria Garcia; write to maria.garcia@example.com about card 4111 1111 1111 1111."


def test_the_model_sees_placeholders_the_user_sees_the_values(server: Server) -> None:
    conv = server.http.post("/api/conversations", json={}, timeout=10).json()
    body = {"content": MESSAGE, "max_tokens": 16, "temperature": 0}
    with server.http.stream("POST", f"/api/conversations/{conv['id']}/messages",
                      json=body, timeout=60) as response:  # fmt: skip
        events = sse_events(response.iter_lines())
    start = events[0][1]["user_message"]
    assert start["content"] == MESSAGE  # shown to its owner as typed
    marked = {start["content"][s["start"] : s["end"]]: s["type"] for s in start["pii"]}
    assert marked["Maria Garcia"] == "PERSON"
    assert marked["maria.garcia@example.com"] == "EMAIL_ADDRESS"
    shown = server.http.get(f"/api/conversations/{conv['id']}", timeout=10).json()
    assert shown["messages"][0]["content"] == MESSAGE
    assert shown["title"].startswith("I am Maria Garcia")


def test_what_is_stored_holds_placeholders_only(server: Server) -> None:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(server.log.parent / "appliance.db")) as db:
        stored = " ".join(r[0] for r in db.execute("SELECT content FROM messages"))
        titles = " ".join(r[0] for r in db.execute("SELECT title FROM conversations"))
    assert "<PERSON_1>" in stored
    assert not any(value in stored + titles for value in RAW)


def test_no_log_line_carries_personal_data(server: Server) -> None:
    folder = server.log.parent / "documents"
    (folder / "Letter to Maria Garcia.pdf").write_bytes(b"%PDF-1.4 broken")  # a warning
    deadline = time.monotonic() + 30
    while '"status":"failed"' not in server.http.get("/api/documents",
                                               timeout=5).text:  # fmt: skip
        assert time.monotonic() < deadline, "the broken file was never reported"
        time.sleep(0.1)
    server.http.post("/api/redact", json={"text": MESSAGE}, timeout=10)
    log = server.log.read_text()
    # the file's warning is there, naming the file by type and place, not by its name
    assert "a .pdf file at the top of the folder: not a readable PDF" in log
    assert "Letter to" not in log
    assert not any(value in log for value in RAW)
    assert "$argon2" not in log  # nor a password hash
    assert server.key not in log  # nor an API key


def test_redact_api(server: Server) -> None:
    reply = server.http.post("/api/redact", json={"text": MESSAGE}, timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert not any(value in body["text"] for value in RAW)
    spans = {MESSAGE[e["start"] : e["end"]]: e["type"] for e in body["entities"]}
    assert spans["4111 1111 1111 1111"] == "CREDIT_CARD"
    assert all(0 < e["score"] <= 1 for e in body["entities"])
    bad = server.http.post("/api/redact", json={"txt": "x"}, timeout=10)
    assert bad.status_code == 400
    assert "txt" in bad.json()["error"]["message"]
    policy = server.http.get("/api/privacy", timeout=10).json()
    assert policy == {"prompts": "pseudonymize", "documents": "off", "output": "off",
                      "stored": "redact"}  # fmt: skip
