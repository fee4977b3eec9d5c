"""The chat page's API end to end through Litestar: SSE answers, persistence, regenerate."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import Settings
from appliance.store.conversations import ConversationStore
from appliance.store.db import Database
from appliance.web import conversations
from appliance.web.markdown import render
from tests.conftest import make_admin, make_settings
from tests.web.conftest import Client, running_app, sse_events


def ask(client: Client, conv_id: str, content: str, **extra: object) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    body = {"content": content, "max_tokens": 12, "temperature": 0, **extra}
    with client.stream("POST", f"/api/conversations/{conv_id}/messages", json=body) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_events(response.iter_lines())


def test_answer_streams_over_sse_and_is_stored(client: Client) -> None:
    conv = client.post("/api/conversations", json={}).json()
    events = ask(client, conv["id"], "What is the capital of France?")
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "done"
    assert kinds.count("token") >= 2
    streamed = "".join(str(data["text"]) for kind, data in events if kind == "token")
    done = events[-1][1]
    message = done["message"]
    assert isinstance(message, dict)
    assert message["content"] == streamed
    assert done["finish_reason"] == "length"
    assert message["completion_tokens"] == 12

    shown = client.get(f"/api/conversations/{conv['id']}").json()
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["messages"][1]["content"] == streamed
    assert shown["title"] == "What is the capital of France?"


def test_conversation_survives_an_app_restart(settings: Settings) -> None:
    with running_app(settings) as client:
        conv = client.post("/api/conversations", json={}).json()
        ask(client, conv["id"], "Hello there")
    with running_app(settings) as client:
        listed = client.get("/api/conversations").json()
        assert [c["id"] for c in listed] == [conv["id"]]
        shown = client.get(f"/api/conversations/{conv['id']}").json()
        assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
        assert shown["messages"][0]["content"] == "Hello there"
    assert (Path(settings.data_dir) / "appliance.db").is_file()


def test_regenerate_replaces_the_last_answer(client: Client) -> None:
    conv = client.post("/api/conversations", json={}).json()
    ask(client, conv["id"], "Tell me a joke.")
    url = f"/api/conversations/{conv['id']}/regenerate"
    body = {"max_tokens": 6, "temperature": 1.0, "seed": 3}
    with client.stream("POST", url, json=body) as response:
        events = sse_events(response.iter_lines())
    assert events[0] == ("start", {"conversation_id": conv["id"], "user_message": None})
    shown = client.get(f"/api/conversations/{conv['id']}").json()
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]
    assert shown["messages"][1]["completion_tokens"] == 6


def test_unsafe_model_output_is_stored_raw_but_served_inert(
    client: Client, settings: Settings
) -> None:
    conv = client.post("/api/conversations", json={}).json()
    # An answer as a model could write it (the 135M model cannot be steered to write it),
    # written through a second connection to the same database file.
    store = ConversationStore(Database(settings.data_path / "appliance.db"))
    store.add_message(conv["id"], "user", "hi")
    store.add_message(
        conv["id"], "assistant", '<script>alert(1)</script> <img src=x onerror="alert(2)">'
    )
    answer = client.get(f"/api/conversations/{conv['id']}").json()["messages"][1]
    assert "<script>" in answer["content"]
    assert "<script" not in answer["html"]
    assert "<img" not in answer["html"]
    assert "&lt;script&gt;" in answer["html"]


def test_errors_have_one_shape_and_lose_nothing(client: Client) -> None:
    missing = client.post("/api/conversations/nope/messages", json={"content": "hi"})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    conv = client.post("/api/conversations", json={}).json()
    empty = client.post(f"/api/conversations/{conv['id']}/messages", json={"content": "  "})
    assert empty.status_code == 400
    assert empty.json()["error"]["param"] == "content"
    bad = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "hi", "top_p": 7}
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "top_p"
    too_long = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "word " * 3000}
    )
    assert too_long.status_code == 400
    assert "context is 2048" in too_long.json()["error"]["message"]
    # Nothing half-done was stored by the refused requests.
    assert client.get(f"/api/conversations/{conv['id']}").json()["messages"] == []


def test_rename_and_delete(client: Client) -> None:
    conv = client.post("/api/conversations", json={"title": "a"}).json()
    renamed = client.patch(f"/api/conversations/{conv['id']}", json={"title": "b"}).json()
    assert renamed["title"] == "b"
    assert client.delete(f"/api/conversations/{conv['id']}").status_code == 204
    assert client.get(f"/api/conversations/{conv['id']}").status_code == 404


def test_page_and_assets_are_served_locally(client: Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert 'src="/static/app.js"' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no remote asset
    for asset in ("/static/app.js", "/static/app.css"):
        assert client.get(asset).status_code == 200


def test_health_and_readiness(tmp_path: Path) -> None:
    with running_app(make_settings(tmp_path, n_gpu_layers=-1)) as client:  # ask for all layers
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["ready"] is True
        assert body["pending"] == 0
        # What went to the GPU is what this build can do, not what was asked for.
        assert (body["gpu_layers"] > 0) == body["gpu_offload_supported"]


def test_readiness_shows_the_slots_and_the_prompt_cache(tmp_path: Path) -> None:
    with running_app(make_settings(tmp_path, parallel=1)) as client:
        body = client.get("/readyz").json()
        assert (body["slots"], body["slots_busy"], body["queued"]) == (1, 0, 0)
        assert (body["cache_entries"], body["cache_bytes"], body["cache_hit_rate"]) == (0, 0, 0)
        history = [{"role": "user", "content": "Tell me about the sea in three sentences."}]
        first = client.post("/v1/chat/completions", json={"messages": history, "max_tokens": 24})
        history += [first.json()["choices"][0]["message"], {"role": "user", "content": "More."}]
        second = client.post("/v1/chat/completions", json={"messages": history, "max_tokens": 4})
        cached = second.json()["usage"].get("prompt_tokens_details", {}).get("cached_tokens")
        assert cached is None or cached > 0
        assert client.get("/readyz").json()["cache_hit_rate"] == 0.5  # the second found its own
        # One slot: another user's request pushes this user's state out, into the RAM cache.
        other = make_admin(tmp_path, name="other")
        client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {other}"},
                    json={"messages": [{"role": "user", "content": "Hi."}], "max_tokens": 4})
        body = client.get("/readyz").json()
        assert body["cache_entries"] == 1
        assert body["cache_bytes"] > 0


def test_page_is_served_under_a_strict_content_security_policy(client: Client) -> None:
    headers = client.get("/").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_streamed_answer_is_rendered_as_it_grows(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversations, "RENDER_INTERVAL_S", 0.0)  # render after every piece
    conv = client.post("/api/conversations", json={}).json()
    events = ask(client, conv["id"], "Write a list of three fruits.", max_tokens=40)
    parts: list[str] = []  # as the page keeps them
    text, renders = "", 0
    for kind, data in events:
        if kind == "token":
            assert renders == 0 or "".join(parts) == render(text)  # after each round of renders
            text += str(data["text"])
            renders = 0
        elif kind == "render":
            assert isinstance(data["part"], int)
            assert data["part"] <= len(parts)
            del parts[data["part"] :]
            parts.append(str(data["html"]))
            renders += 1
    final = events[-1][1]["message"]
    assert isinstance(final, dict)
    assert "".join(parts) == final["html"] == render(final["content"])
