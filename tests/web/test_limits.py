"""Limits through the HTTP stack: chat requests per minute (429 + Retry-After), message and body
size (413), and the brake on failed sign-ins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from appliance.accounts.limits import ChatLimits
from appliance.config import LimitsSettings
from appliance.errors import RateLimited
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.web.conftest import Client, running_app


@pytest.fixture
def tight(tmp_path: Path) -> Iterator[Client]:
    limits = LimitsSettings(chat_per_minute=2, concurrent_streams=1, max_message_chars=100,
                            max_body_kb=4, redact_max_chars=50,
                            search_max_collections=3)  # fmt: skip
    settings = msgspec.structs.replace(make_settings(tmp_path / "data"), limits=limits)
    with running_app(settings) as client:
        yield client


def chat(client: Client, content: str = "Hi") -> int:
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 2}
    return client.post("/v1/chat/completions", json=body).status_code


def test_chat_requests_per_minute(tight: Client) -> None:
    assert [chat(tight), chat(tight)] == [200, 200]
    refused = tight.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})  # fmt: skip
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 61
    assert refused.json()["error"]["type"] == "rate_limit_error"
    conv = tight.post("/api/conversations", json={}).json()
    page = tight.post(f"/api/conversations/{conv['id']}/messages", json={"content": "Hi"})
    assert page.status_code == 429  # the page and the API share the budget


def test_too_long_messages_and_bodies_get_413(tight: Client) -> None:
    reply = tight.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "x" * 101}]})  # fmt: skip
    assert reply.status_code == 413
    assert "limits.max_message_chars" in reply.json()["error"]["message"]
    conv = tight.post("/api/conversations", json={}).json()
    page = tight.post(f"/api/conversations/{conv['id']}/messages", json={"content": "y" * 101})
    assert page.status_code == 413
    huge = tight.post("/api/redact", json={"text": "z" * 8000})
    assert huge.status_code == 413
    assert "limits.max_body_kb" in huge.json()["error"]["message"]


def test_searches_have_limits_of_their_own(tight: Client) -> None:
    many = tight.post("/api/search", json={"query": "q", "collections": ["a", "b", "c", "d"]})
    assert many.status_code == 413
    assert "limits.search_max_collections" in many.json()["error"]["message"]
    same = tight.post("/api/search", json={"query": "q", "collections": ["a"] * 10})
    assert same.status_code == 200  # one collection, however often it is named
    assert tight.post("/api/search", json={"query": "q"}).status_code == 200
    refused = tight.post("/api/search", json={"query": "q"})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 61
    assert "search requests a minute" in refused.json()["error"]["message"]
    assert chat(tight) == 200  # chat is counted apart


def test_redactions_have_limits_of_their_own(tight: Client) -> None:
    long = tight.post("/api/redact", json={"text": "Call Maria Garcia. " * 3})
    assert long.status_code == 413
    assert "limits.redact_max_chars" in long.json()["error"]["message"]
    for _ in range(2):
        done = tight.post("/api/redact", json={"text": "Call Maria Garcia."})
        assert done.status_code == 200
        assert "Maria" not in done.json()["text"]
    refused = tight.post("/api/redact", json={"text": "Call Maria Garcia."})
    assert refused.status_code == 429
    assert "redaction requests a minute" in refused.json()["error"]["message"]
    assert tight.post("/api/search", json={"query": "q"}).status_code == 200  # apart, too


def test_failed_sign_ins_are_slowed_per_account(tight: Client) -> None:
    anon = {"Authorization": ""}
    for _ in range(5):
        assert tight.post("/api/session", headers=anon, json={
            "name": "admin", "password": "not the password"}).status_code == 401  # fmt: skip
    braked = tight.post("/api/session", headers=anon, json={
        "name": "admin", "password": ADMIN_PASSWORD})  # fmt: skip
    assert braked.status_code == 429  # even the right password waits now
    assert int(braked.headers["retry-after"]) >= 1


def test_concurrent_answers_per_user() -> None:
    limits = ChatLimits(per_minute=100, concurrent=1)
    with limits.request("ann"):
        with pytest.raises(RateLimited, match="already running"), limits.request("ann"):
            pass
        with limits.request("bob"):  # another user is not held up
            pass
    with limits.request("ann"):  # released when the first answer ended
        pass
