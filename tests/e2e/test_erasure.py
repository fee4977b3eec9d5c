"""Erasure under a real server: what a deleted conversation, a user's erased data and a deleted
document held is found in no file under data_dir (the test harness's own server.log aside)."""

from __future__ import annotations

from appliance.pii.redactor import Redactor
from tests.e2e.conftest import Server
from tests.e2e.test_documents import documents, statuses, wait_for
from tests.store.test_erasure import document, found, nonce


def on_disk(server: Server, word: str) -> list[str]:
    """The files under data_dir holding `word`; server.log is the harness's, not the server's
    (where the server logs is the operator's choice, and it logs no message text)."""
    return [n for n in found(server.log.parent, word) if n != server.log.name]


QUESTION, COMMENT = "Repeat this code word exactly: {}", "it forgot {}"


def kept(redactor: Redactor) -> str:
    """A nonce the server stores as written: what is stored is redacted, and spaCy takes a
    random word for a name now and then (it would be stored as <PERSON>, and prove nothing)."""
    for _ in range(100):
        word = nonce()
        if not any(redactor.analyze(t.format(word)) for t in (QUESTION, COMMENT)):
            return word
    raise AssertionError("every nonce was taken for personal data")


def chat(server: Server, word: str) -> str:
    """A conversation whose question (and maybe answer) and feedback hold `word`."""
    conv = server.http.post("/api/conversations", json={}).json()
    body = {"content": QUESTION.format(word), "max_tokens": 24, "temperature": 0}
    with server.http.stream("POST", f"/api/conversations/{conv['id']}/messages",
                            json=body) as reply:  # fmt: skip
        assert reply.status_code == 200
        assert list(reply.iter_lines())
    answer = server.http.get(f"/api/conversations/{conv['id']}").json()["messages"][-1]
    assert answer["role"] == "assistant"
    rated = server.http.post(f"/api/conversations/{conv['id']}/messages/{answer['id']}/feedback",
                             json={"rating": "down", "comment": COMMENT.format(word)})  # fmt: skip
    assert rated.status_code == 200
    return str(conv["id"])


def test_a_deleted_conversation_is_in_no_file(server: Server, redactor: Redactor) -> None:
    word = kept(redactor)
    conversation = chat(server, word)
    assert on_disk(server, word)
    assert server.http.delete(f"/api/conversations/{conversation}").status_code == 204
    assert on_disk(server, word) == []


def test_a_users_erased_data_is_in_no_file(server: Server, redactor: Redactor) -> None:
    word = kept(redactor)
    chat(server, word)
    assert on_disk(server, word)
    erased = server.http.delete("/api/users/admin/data")
    assert erased.status_code == 200
    assert erased.json()["deleted"] >= 1
    assert on_disk(server, word) == []


def test_a_deleted_document_is_in_no_file(server: Server) -> None:
    word, folder = nonce(), server.log.parent / "documents"
    (folder / "travel.md").write_text(document(word))
    wait_for("indexed", lambda: statuses(server).get("travel.md") == "indexed")
    assert any(n.startswith("appliance.db") for n in on_disk(server, word))
    (folder / "travel.md").unlink()
    # not listed, and the watcher idle: the burst of changes is over, its compaction done
    wait_for("removed", lambda: "travel.md" not in statuses(server)
             and documents(server)["indexing"] is False)  # fmt: skip
    assert on_disk(server, word) == []
