"""Every line a real server logs at `info` (its access log included) while it is driven the way
the page and the API are: chat, search, the links citations open (as the page builds them),
document files, a user's data routes, a redaction. None holds a document's text, a document
path's personal part, or the personal data used (raw or %-escaped)."""

from __future__ import annotations

import time
from urllib.parse import quote, quote_plus

from tests.e2e.conftest import Server
from tests.ingest.samples import pdf_bytes
from tests.web.conftest import sse_events
from tests.web.test_page import CHAT, run_page

SERVER_ENV = {"APPLIANCE_LOG__LEVEL": "info"}
PHRASE = "the quokka migration ledger closes on Thursdays at noon"
PDF_PHRASE = "Marmalade audits happen in the basement vault"
PERSON, EMAIL, PHONE = "Ingrid Solberg", "ingrid.solberg@example.com", "+47 912 34 567"
REVIEW = (
    f"# Review of {PERSON}\n\n## Ledger\n\n{PERSON} notes that {PHRASE}. Reach her at "
    f"{EMAIL} or {PHONE}.\n"
)
# Both file names hold the person: the paths the page and the API use, and the watcher's own
# lines, which name a document by type and collection only (Presidio misses the name in
# "hr/Ingrid Solberg review.md").
FILES = {
    f"hr/{PERSON} review.md": REVIEW.encode(),
    f"hr/{PERSON} handbook.pdf": pdf_bytes(["Welcome.", f"{PDF_PHRASE}."]),
}
ACCOUNT = "ingrid.solberg"
SECRETS = (
    PHRASE,
    "quokka migration",
    PDF_PHRASE,
    "Marmalade",
    PERSON,
    "Solberg",
    EMAIL,
    PHONE,
    "912 34 567",
    ACCOUNT,
)


def forms(text: str) -> set[str]:
    """The text as a log line could hold it: raw, %-escaped in a path or in a query."""
    return {text, quote(text), quote(text, safe=""), quote_plus(text)}


def chat(server: Server, question: str) -> list[dict[str, object]]:
    conv = server.http.post("/api/conversations", json={}).json()
    body = {"content": question, "max_tokens": 8, "temperature": 0}
    with server.http.stream(
        "POST", f"/api/conversations/{conv['id']}/messages", json=body
    ) as response:
        kind, done = sse_events(response.iter_lines())[-1]
    assert kind == "done", done
    assert server.http.get(f"/api/conversations/{conv['id']}").status_code == 200
    citations: list[dict[str, object]] = done["citations"]  # type: ignore[assignment]
    return citations


def indexed(server: Server, count: int) -> None:
    deadline = time.monotonic() + 120
    while server.http.get("/api/documents").json()["counts"]["indexed"] < count:
        assert time.monotonic() < deadline, server.http.get("/api/documents").text
        time.sleep(0.2)


def test_no_log_line_holds_document_or_personal_text(server: Server) -> None:
    folder = server.log.parent / "documents"
    for path, data in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    indexed(server, len(FILES))
    citations = chat(server, f"When does the quokka migration ledger close, says {PERSON}?")
    citations += chat(server, "Where do marmalade audits happen?")
    assert {c["source"] for c in citations} >= set(FILES)
    for citation in citations:  # what the page links to, then what that page fetches
        link = run_page(CHAT, "", f"sourceUrl({_json(citation)})")["result"]
        assert server.http.get(link).status_code == 200, link
        path = "/".join(quote(part) for part in str(citation["source"]).split("/"))
        assert server.http.get(f"/api/documents/text/{path}").status_code == 200
        assert server.http.get(f"/api/documents/file/{path}").status_code == 200
    assert server.http.post("/api/search", json={"query": f"{PHRASE} {PERSON}"}).status_code == 200
    assert server.http.post("/api/redact", json={"text": REVIEW}).status_code == 200
    made = {"name": ACCOUNT, "password": "a long enough password", "role": "employee"}
    assert server.http.post("/api/users", json=made).status_code == 201
    assert server.http.patch(f"/api/users/{ACCOUNT}", json={"disabled": True}).status_code == 200
    assert server.http.delete(f"/api/users/{ACCOUNT}/data").status_code == 200
    assert server.http.get("/api/audit", params={"actor": ACCOUNT, "action": PERSON}).is_success
    assert server.http.get(f"/api/conversations/{quote(PERSON)}").status_code == 404
    log = _written(server)
    assert '"GET /api/documents/file/' in log  # the access log is there
    leaked = sorted({text for text in SECRETS for form in forms(text) if form in log})
    assert not leaked, [line for line in log.splitlines() if any(t in line for t in leaked)]


def _json(value: object) -> str:
    import json

    return json.dumps(value)


def _written(server: Server) -> str:
    """The log once the last request's line is in it (lines are written by a thread)."""
    server.http.get("/healthz", params={"written": "1"})
    deadline = time.monotonic() + 30
    while "GET /healthz?written=" not in (log := server.log.read_text()):
        assert time.monotonic() < deadline, log[-2000:]
        time.sleep(0.1)
    return log
