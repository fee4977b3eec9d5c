"""Nothing that can take milliseconds runs on the event loop: the redactor behind the log lines
of error responses, the guard's session and API key lookups (SQLite), a chat answer's storing
and redaction, the accounts' and feedback routes."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest
from litestar.testing import TestClient

from appliance.chat.events import Asker
from appliance.config import PiiSettings, Settings
from appliance.llm.types import SamplingParams, TokenEvent
from appliance.pii.logs import redact_logs
from appliance.pii.presidio import PresidioRedactor
from appliance.store.db import Database
from appliance.store.users import UserStore
from appliance.web.app import create_app
from appliance.wiring import build_services
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.web.conftest import Client, running_app, sse_events


def on_a_loop() -> bool:
    """Whether the caller runs on a thread with a running event loop (the server's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_error_responses_never_run_the_redactor_on_the_loop(client: Client) -> None:
    out, ran_on = io.StringIO(), []
    handler, errors = logging.StreamHandler(out), logging.getLogger("appliance.web.errors")
    logging.getLogger().addHandler(handler)
    level, errors.level = errors.level, logging.INFO  # 4xx lines are INFO

    def redact(text: str) -> str:
        ran_on.append(on_a_loop())
        return text

    stop = redact_logs(redact)
    try:
        for _ in range(20):
            assert client.get("/api/me", headers={"Authorization": ""}).status_code == 401
            assert client.get("/api/conversations/" + "0" * 32).status_code == 404
    finally:
        stop()
        errors.level = level
        logging.getLogger().removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert lines.count("401 invalid_api_key") == 20  # a fixed text: nothing to redact
    assert lines.count("404 not_found") == 20
    assert True not in ran_on


def test_the_guard_looks_up_keys_and_sessions_off_the_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, bool, str]] = []

    def recorded(name: str) -> Callable[..., Any]:
        real = getattr(UserStore, name)

        def call(self: UserStore, *args: Any) -> Any:
            calls.append((name, on_a_loop(), threading.current_thread().name.split("_")[0]))
            return real(self, *args)

        return call

    for name in ("user_for_key", "session"):
        monkeypatch.setattr(UserStore, name, recorded(name))
    assert client.get("/api/me").status_code == 200  # the API key
    signed_in = client.post("/api/session", headers={"Authorization": ""},
                            json={"name": "admin", "password": ADMIN_PASSWORD})  # fmt: skip
    assert signed_in.status_code == 200
    del client.headers["Authorization"]
    assert client.get("/api/me").json()["name"] == "admin"  # the session cookie
    client.cookies.clear()
    assert client.get("/api/me").status_code == 401  # no credentials: nothing looked up
    # on threads of the guard's own, where sign-ins (argon2) and redactions cannot queue
    assert calls == [("user_for_key", False, "auth"), ("session", False, "auth")]


def on_the_loop(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The redactor's analyses and the SQLite statements made from now on the event loop's
    thread (Database.transaction and query are where every store's statements go)."""
    seen: list[str] = []

    def recorded(owner: type, name: str) -> Callable[..., Any]:
        real = getattr(owner, name)

        def call(self: object, *args: Any, **kwargs: Any) -> Any:
            if on_a_loop():
                seen.append(f"{owner.__name__}.{name}")
            return real(self, *args, **kwargs)

        return call

    for owner, name in ((PresidioRedactor, "analyze"), (Database, "transaction"),
                        (Database, "query")):  # fmt: skip
        monkeypatch.setattr(owner, name, recorded(owner, name))
    return seen


@pytest.fixture
def redacting(tmp_path: Path) -> Iterator[Client]:
    """Pseudonyms for the model, redaction of its output: every use of the redactor in a chat."""
    pii = PiiSettings(prompts="pseudonymize", output="redact")
    with running_app(msgspec.structs.replace(make_settings(tmp_path / "data"), pii=pii)) as c:
        yield c


def test_chat_answers_store_and_redact_off_the_loop(
    redacting: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redacting
    conv = client.post("/api/conversations", json={}).json()["id"]
    seen = on_the_loop(monkeypatch)
    body = {"content": "Say hello to Maria Garcia. Then stop.", "max_tokens": 16, "temperature": 0}
    for path, sent in (("messages", body), ("regenerate", {"max_tokens": 16})):
        with client.stream("POST", f"/api/conversations/{conv}/{path}", json=sent) as r:
            assert r.status_code == 200
            assert sse_events(r.iter_lines())[-1][0] == "done"
    chat = {"messages": [{"role": "user", "content": body["content"]}], "max_tokens": 16}
    assert client.post("/v1/chat/completions", json=chat).status_code == 200
    with client.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as r:
        assert "[DONE]" in r.read().decode()
    assert seen == []
    shown = client.get(f"/api/conversations/{conv}").json()["messages"]
    assert [m["role"] for m in shown] == ["user", "assistant"]  # stored once, in order
    assert shown[1]["finish_reason"] in ("stop", "length")


def test_account_and_feedback_routes_run_sqlite_and_the_redactor_off_the_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed_all: list[bool] = []
    all_users = UserStore.all

    def listed(self: UserStore) -> Any:
        listed_all.append(True)
        return all_users(self)

    monkeypatch.setattr(UserStore, "all", listed)
    seen = on_the_loop(monkeypatch)
    page = {"Authorization": ""}
    for name in ("nobody", "ADMIN"):  # a failed sign-in, of no account and of one
        failed = client.post("/api/session", headers=page, json={"name": name, "password": "x"})
        assert failed.status_code == 401
    signed_in = client.post("/api/session", headers=page,
                            json={"name": "admin", "password": ADMIN_PASSWORD})  # fmt: skip
    page["X-CSRF-Token"] = signed_in.json()["csrf"]
    made = client.post("/api/keys", headers=page, json={"name": "laptop"})
    assert made.status_code == 201
    assert client.get("/api/keys", headers=page).status_code == 200
    key_id = made.json()["key"]["id"]
    assert client.delete(f"/api/keys/{key_id}", headers=page).status_code == 200
    user = {"name": "kim", "password": ADMIN_PASSWORD}
    assert client.post("/api/users", headers=page, json=user).status_code == 201
    assert client.patch("/api/users/kim", headers=page, json={"disabled": True}).status_code == 200
    assert [u["name"] for u in client.get("/api/users", headers=page).json()] == ["admin", "kim"]
    assert client.get("/api/feedback", headers=page).status_code == 200
    assert client.delete("/api/session", headers=page).status_code == 200
    assert seen == []
    assert listed_all == [True]  # by GET /api/users only: a failed sign-in looks up one name
    failures = client.get("/api/audit", params={"action": "sign_in_failed"}).json()
    assert sorted(r["target"] for r in failures) == ["(unknown name)", "ADMIN"]


def test_a_stopped_answer_is_stored_before_its_stream_ends(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Litestar stops a stream by cancelling an anyio scope, which cancels each await again:
    the stopped answer's storing (on a thread) is waited for all the same, however slow."""
    services = build_services(settings)
    analyze = PresidioRedactor.analyze

    def slow(self: PresidioRedactor, text: str) -> Any:
        threading.Event().wait(0.3)  # a long answer's analysis; it runs on a thread
        return analyze(self, text)

    async def stopped(conversation_id: str) -> None:
        params = SamplingParams(temperature=0, top_p=1, max_tokens=200)
        tokens = 0
        with anyio.CancelScope() as scope:
            events = services.chat.reply(Asker(id=None), conversation_id, "Tell a story", params)
            async for event in events:
                tokens += isinstance(event, TokenEvent)
                if tokens == 3:
                    monkeypatch.setattr(PresidioRedactor, "analyze", slow)
                    scope.cancel()
        assert scope.cancelled_caught

    with TestClient(create_app(settings, services)):
        assert services.engine.wait_ready(60)  # type: ignore[attr-defined]
        conversation = services.conversations.start(None, "")
        anyio.run(stopped, conversation.id)
        _, shown = services.conversations.show(None, conversation.id)  # at once: no waiting here
    assert [m.message.role for m in shown] == ["user", "assistant"]
    assert shown[1].message.finish_reason == "cancelled"
    assert shown[1].message.content
