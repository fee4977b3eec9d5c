"""Who sees what, on a real server with a real OpenLDAP: HR's folder (`hr/.access`: hr) answers
an HR employee with its citation and is, for an engineer, not there at all: declined as if it
did not exist, through the page API, the OpenAI API (the official client), the search, the
text and file addresses guessed by path, the collections and the documents list. Taken out of
the group in the directory, the HR employee loses it at the next refresh."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.directory.slapd import Slapd, group_dn, running_slapd, server_settings, user_dn
from tests.e2e.conftest import Server, running_server
from tests.web.conftest import sse_events

SALARIES = """# Salary bands

The salary band of grade HR-PL3 runs from 52,000 to 61,000 EUR a year.
"""
TRAVEL = "# Travel\n\nBook trains for trips under 500 km. Flights need a manager's approval.\n"
QUESTION = "What is the salary band of grade HR-PL3?"
DANA = "dana-pass-123"
ALICE = "alice-pass-1"


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        server.add_user("dana", DANA)
        with server.admin() as c:
            assert c.modify(group_dn("hr"), {"member": [("MODIFY_ADD", [user_dn("dana")])]})
        yield server


@pytest.fixture(scope="module")
def server(directory: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = Path(tmp_path_factory.mktemp("server"))
    documents = data / "documents"
    (documents / "hr").mkdir(parents=True)
    (documents / "hr" / ".access").write_text("hr\n")
    (documents / "hr" / "salaries.md").write_text(SALARIES)
    (documents / "travel.md").write_text(TRAVEL)
    env = {
        **server_settings(directory, data),
        "APPLIANCE_AUTH__LDAP__REFRESH_MINUTES": "0.02",  # a refresh every 1.2 s
    }
    with running_server(data, env) as srv:
        deadline = time.monotonic() + 120
        while srv.http.get("/api/documents").json()["counts"]["indexed"] < 2:
            assert time.monotonic() < deadline, srv.http.get("/api/documents").text
            time.sleep(0.2)
        yield srv


class Person:
    """A directory user signed in on the page (session and CSRF), with an API key of theirs."""

    def __init__(self, server: Server, name: str, password: str) -> None:
        self.http = httpx.Client(base_url=server.base_url, timeout=120)
        signed = self.http.post("/api/session", json={"name": name, "password": password})
        assert signed.status_code == 200, signed.text
        self.http.headers["X-CSRF-Token"] = signed.json()["csrf"]
        made = self.http.post("/api/keys", json={"name": "test"})
        assert made.status_code == 201, made.text
        self.openai = openai.OpenAI(base_url=f"{server.base_url}/v1",
                                    api_key=made.json()["secret"], max_retries=0)  # fmt: skip

    def close(self) -> None:
        self.openai.close()
        self.http.close()

    def ask(self, question: str) -> dict[str, object]:
        conv = self.http.post("/api/conversations", json={}).json()
        body = {"content": question, "max_tokens": 24, "temperature": 0}
        with self.http.stream("POST", f"/api/conversations/{conv['id']}/messages",
                              json=body) as reply:  # fmt: skip
            assert reply.status_code == 200, reply.read()
            kind, done = sse_events(reply.iter_lines())[-1]
        assert kind == "done", done
        message: dict[str, object] = done["message"]  # type: ignore[assignment]
        return {**message, "citations": done.get("citations", [])}


@pytest.fixture(scope="module")
def alice(server: Server) -> Iterator[Person]:
    person = Person(server, "alice", ALICE)  # engineering
    yield person
    person.close()


@pytest.fixture(scope="module")
def dana(server: Server) -> Iterator[Person]:
    person = Person(server, "dana", DANA)  # hr
    yield person
    person.close()


def test_hr_gets_the_cited_answer(dana: Person) -> None:
    answer = dana.ask(QUESTION)
    assert answer["grounding"] == "documents", answer
    assert [c["source"] for c in answer["citations"]] == ["hr/salaries.md"]  # type: ignore[attr-defined]
    completion = dana.openai.chat.completions.create(
        model="default", messages=[{"role": "user", "content": QUESTION}], max_tokens=16
    )
    cited = completion.choices[0].message.citations  # type: ignore[attr-defined]
    assert [c["source"] for c in cited] == ["hr/salaries.md"]
    assert dana.http.get("/api/documents/text/hr/salaries.md").status_code == 200


def test_an_engineer_finds_no_trace_of_hr_s_file(alice: Person, server: Server) -> None:
    answer = alice.ask(QUESTION)
    assert answer["grounding"] == "abstained", answer
    assert answer["citations"] == []
    assert "salar" not in str(answer["content"]).lower().replace(QUESTION.lower(), "")
    assert "hr/" not in str(answer["content"])
    completion = alice.openai.chat.completions.create(
        model="default", messages=[{"role": "user", "content": QUESTION}], max_tokens=16
    )
    assert completion.choices[0].message.citations == []  # type: ignore[attr-defined]
    assert "hr/" not in (completion.choices[0].message.content or "")
    hits = alice.http.post("/api/search", json={"query": "salary band HR-PL3", "k": 50}).json()
    assert [h["source"] for h in hits if h["source"].startswith("hr/")] == []
    for guessed in ("/api/documents/text/hr/salaries.md", "/api/documents/file/hr/salaries.md"):
        refused = alice.http.get(guessed)
        missing = alice.http.get(guessed.replace("salaries", "no-such-file"))
        assert refused.status_code == missing.status_code == 404
        assert refused.json()["error"]["message"] == missing.json()["error"]["message"].replace(
            "no-such-file", "salaries")  # fmt: skip
    assert "hr" not in alice.http.get("/api/collections").json()
    listed = alice.http.get("/api/documents").json()
    assert [d["path"] for d in listed["documents"]] == ["travel.md"]
    assert listed["documents"][0]["audience"] is None  # who else may see it: admins only
    everything = server.http.get("/api/documents").json()["documents"]
    assert {d["path"]: d["audience"] for d in everything} == {
        "hr/salaries.md": ["hr"], "travel.md": "everyone"}  # fmt: skip


def test_taken_out_of_the_group_hr_loses_the_file_at_the_next_refresh(
    dana: Person, directory: Slapd
) -> None:
    assert dana.http.get("/api/documents/text/hr/salaries.md").status_code == 200
    directory.remove_member("hr", user_dn("dana"))
    deadline = time.monotonic() + 30
    while dana.http.get("/api/documents/text/hr/salaries.md").status_code != 404:
        assert time.monotonic() < deadline, "still sees HR's file after the refresh"
        time.sleep(0.3)
    assert dana.ask(QUESTION)["grounding"] == "abstained"
