"""Questions handed to people, through the HTTP API on the real stack: a declined question goes
to the experts, one claims and answers it into the employee's conversation (unseen until read),
saves it as an FAQ, and the same question then gets a cited answer; others see nothing of it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import msgspec
import pytest

from appliance.chat.notify import Notifier
from appliance.config import HandoffSettings, Settings
from tests.conftest import make_admin, make_settings
from tests.rag.test_retrieve import LEAVE
from tests.web.conftest import Client, running_app, sse_events
from tests.web.test_rag_api import wait_indexed

DOGS = "What is the company's policy on bringing dogs to the office?"
ANSWER = "Dogs are welcome on Fridays in the ground-floor studio, on a lead."


@pytest.fixture(scope="module")
def app(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Client, Settings, dict[str, str]]]:
    base = make_settings(tmp_path_factory.mktemp("handoff") / "data")
    settings = msgspec.structs.replace(base, handoff=HandoffSettings(fallback=["omar"]))
    (settings.watch_path / "hr").mkdir(parents=True)
    (settings.watch_path / "hr" / "leave.md").write_text(LEAVE)
    keys = {name: make_admin(settings.data_path, name, "employee")
            for name in ("emma", "omar", "zoe")}  # fmt: skip
    with running_app(settings) as client:
        wait_indexed(client, 1)
        yield client, settings, {n: f"Bearer {k}" for n, k in keys.items()}


def ask(client: Client, who: str, content: str) -> tuple[str, dict]:  # type: ignore[type-arg]
    conv = client.post("/api/conversations", json={}, headers={"Authorization": who}).json()
    body = {"content": content, "max_tokens": 16, "temperature": 0}
    with client.stream("POST", f"/api/conversations/{conv['id']}/messages", json=body,
                       headers={"Authorization": who}) as r:  # fmt: skip
        assert r.status_code == 200, r.read()
        kind, done = sse_events(r.iter_lines())[-1]
    assert kind == "done"
    return conv["id"], done


def test_a_declined_question_goes_to_an_expert_and_back_as_a_cited_faq(
    app: tuple[Client, Settings, dict[str, str]],
) -> None:
    client, settings, as_ = app
    emma, omar, zoe = (as_[n] for n in ("emma", "omar", "zoe"))
    conversation, done = ask(client, emma, DOGS)
    assert done["message"]["grounding"] == "abstained"
    assert "ask an expert" in done["message"]["content"].lower()
    url = f"/api/conversations/{conversation}/handoff"
    handoff = client.post(url, json={"note": "urgent"}, headers={"Authorization": emma}).json()
    assert (handoff["status"], handoff["question"], handoff["asker"]) == ("open", DOGS, "emma")
    assert "dogs" in handoff["searched"]
    again = client.post(url, json={}, headers={"Authorization": emma})
    assert again.status_code == 409  # one at a time while it waits
    assert client.post(url, json={}, headers={"Authorization": zoe}).status_code == 404

    assert client.get("/api/me", headers={"Authorization": omar}).json()["expert"] is True
    assert client.get("/api/me", headers={"Authorization": zoe}).json()["expert"] is False
    assert client.get("/api/handoffs", headers={"Authorization": zoe}).status_code == 404
    queue = client.get("/api/handoffs", headers={"Authorization": omar}).json()
    assert [h["id"] for h in queue] == [handoff["id"]]
    shown = client.get(f"/api/handoffs/{handoff['id']}", headers={"Authorization": omar}).json()
    assert [t["role"] for t in shown["conversation"]] == ["user", "assistant"]
    hid = handoff["id"]
    claimed = client.post(f"/api/handoffs/{hid}/claim", headers={"Authorization": omar}).json()
    assert (claimed["status"], claimed["expert"]) == ("claimed", "omar")
    answered = client.post(f"/api/handoffs/{hid}/answer", json={"text": ANSWER},
                           headers={"Authorization": omar}).json()  # fmt: skip
    assert answered.get("status") == "answered", answered

    listed = client.get("/api/conversations", headers={"Authorization": emma}).json()
    assert {c["id"]: c["unseen"] for c in listed}[conversation] == 1  # the badge
    messages = client.get(f"/api/conversations/{conversation}",
                          headers={"Authorization": emma}).json()["messages"]  # fmt: skip
    assert (messages[-1]["role"], messages[-1]["author"]) == ("expert", "omar")
    assert messages[-1]["content"] == ANSWER
    shown = client.get(f"/api/conversations/{conversation}", headers={"Authorization": emma})
    assert [h["status"] for h in shown.json()["handoffs"]] == ["answered"]
    listed = client.get("/api/conversations", headers={"Authorization": emma}).json()
    assert {c["id"]: c["unseen"] for c in listed}[conversation] == 0  # read now

    saved = client.post(f"/api/handoffs/{hid}/faq", json={},
                        headers={"Authorization": omar}).json()  # fmt: skip
    assert saved["faq_path"].startswith("faq/")
    faq = settings.watch_path / saved["faq_path"]
    assert ANSWER in faq.read_text()
    assert DOGS in faq.read_text()
    wait_indexed(client, 2)
    _, cited = ask(client, emma, DOGS)
    assert cited["message"]["grounding"] == "documents"
    assert saved["faq_path"] in [c["source"] for c in cited["citations"]]

    actions = [r["action"] for r in client.get("/api/audit").json()]
    for action in ("handoff.ask", "handoff.claim", "handoff.answer", "handoff.faq"):
        assert action in actions
    exported = client.get("/api/conversations/export", headers={"Authorization": emma}).json()
    assert [h["answer"] for h in exported["handoffs"]] == [ANSWER]


def test_erasing_the_conversation_erases_its_hand_off(
    app: tuple[Client, Settings, dict[str, str]],
) -> None:
    client, _, as_ = app
    conversation, _ = ask(client, as_["emma"], "Can I bring my cat to the office?")
    hid = client.post(f"/api/conversations/{conversation}/handoff", json={},
                      headers={"Authorization": as_["emma"]}).json()["id"]  # fmt: skip
    assert client.get(f"/api/handoffs/{hid}", headers={"Authorization": as_["omar"]}).is_success
    assert client.delete(f"/api/conversations/{conversation}",
                         headers={"Authorization": as_["emma"]}).is_success  # fmt: skip
    gone = client.get(f"/api/handoffs/{hid}", headers={"Authorization": as_["omar"]})
    assert gone.status_code == 404


def test_an_event_published_on_any_thread_reaches_the_user_s_stream() -> None:
    notifier = Notifier()

    async def listen() -> list[dict[str, object]]:
        with notifier.subscribe(7) as queue:
            threading.Thread(target=notifier.publish, args=(8, {"for": "another"})).start()
            threading.Thread(target=notifier.publish, args=(7, {"status": "answered"})).start()
            return [await asyncio.wait_for(queue.get(), 10)]

    assert asyncio.run(listen()) == [{"status": "answered"}]
    notifier.publish(7, {"nobody": "listens"})  # no subscriber: nothing to do, no error


def test_asking_for_a_person_offers_the_hand_off_without_the_model(
    app: tuple[Client, Settings, dict[str, str]],
) -> None:
    client, _, as_ = app
    before = client.get("/readyz").json()["completed"]
    _, done = ask(client, as_["zoe"], "I want to talk to a real person please")
    assert done["message"]["grounding"] == "person"
    assert "Ask an expert" in done["message"]["content"]
    assert client.get("/readyz").json()["completed"] == before  # the model was not asked
