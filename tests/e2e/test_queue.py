"""A real server with one slot (llm.parallel=1): a chat that waits for it is told its place in
line before its first token; the OpenAI-compatible API waits without a word."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import msgspec

from tests.conftest import LONG_PROMPT
from tests.e2e.conftest import Server
from tests.web.conftest import sse_events

SERVER_ENV = {"APPLIANCE_LLM__PARALLEL": "1", "APPLIANCE_LLM__QUEUE_SIZE": "2"}
T = TypeVar("T")
Events = list[tuple[str, dict[str, Any]]]


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=120,
                        headers={"Authorization": f"Bearer {server.key}"})  # fmt: skip


def conversation(server: Server) -> str:
    conv_id: str = server.http.post("/api/conversations", json={}).json()["id"]
    return conv_id


@contextmanager
def answering(server: Server) -> Iterator[None]:
    """A long page chat holding the one slot, from its first token to the block's end (then
    its client leaves, which frees the slot)."""
    body = {"content": LONG_PROMPT, "max_tokens": 1500, "temperature": 0}
    url = f"/api/conversations/{conversation(server)}/messages"
    with client(server) as http, http.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        lines = response.iter_lines()  # held: an iterator let go of closes the connection
        for line in lines:
            if line == "event: token":
                break
        yield


def in_thread(work: Callable[[], T]) -> tuple[threading.Thread, list[T]]:
    done: list[T] = []
    thread = threading.Thread(target=lambda: done.append(work()), daemon=True)
    thread.start()
    return thread, done


def page_chat(server: Server, told: threading.Event, question: str = "Name a color.") -> Events:
    """A short page chat's events; `told` is set once it is told its place in line."""
    url = f"/api/conversations/{conversation(server)}/messages"
    body = {"content": question, "max_tokens": 8, "temperature": 0}
    lines: list[str] = []
    with client(server) as http, http.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            lines.append(line)
            if line == "event: queued":
                told.set()
    return sse_events(iter(lines))


def test_a_chat_that_waits_is_told_its_place_before_its_first_token(server: Server) -> None:
    told = threading.Event()
    with answering(server):
        thread, done = in_thread(lambda: page_chat(server, told))
        told.wait(60)  # then the running answer's client leaves, and the slot is free
    thread.join(120)
    (events,) = done
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "done"
    assert "queued" in kinds
    assert kinds.index("queued") < kinds.index("token")
    places = [data for kind, data in events if kind == "queued"]
    assert places[0] == {"ahead": 0}  # the running answer is not ahead: it has started
    assert all(kind != "queued" for kind in kinds[kinds.index("token") :])


def test_the_openai_api_waits_in_line_without_a_word(server: Server) -> None:
    body = {"messages": [{"role": "user", "content": "Name a color."}], "max_tokens": 8,
            "temperature": 0, "stream": True}  # fmt: skip

    def ask() -> list[str]:
        with client(server) as http, http.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            return [line for line in r.iter_lines() if line.startswith("data: ")]

    told = threading.Event()
    with answering(server):
        api, api_done = in_thread(ask)
        server.wait_until("the API request waits", lambda s: s["queued"] >= 1)
        # a page chat queued behind it: told its place (1) when the API request is told its own
        page, page_done = in_thread(lambda: page_chat(server, told))
        told.wait(60)
    api.join(120)
    page.join(120)
    assert ("queued", {"ahead": 1}) in page_done[0]
    (lines,) = api_done
    assert lines[-1] == "data: [DONE]"
    chunks = [msgspec.json.decode(line[6:]) for line in lines[:-1]]
    assert all("error" not in chunk for chunk in chunks)
    assert all(chunk["id"].startswith("chatcmpl-") for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")


def test_a_chat_left_while_it_waits_gives_up_its_place_and_keeps_its_question(
    server: Server,
) -> None:
    conv = conversation(server)
    body = {"content": "Name a color.", "max_tokens": 8, "temperature": 0}
    with answering(server):
        with client(server) as http:
            url = f"/api/conversations/{conv}/messages"
            with http.stream("POST", url, json=body) as response:
                lines = response.iter_lines()
                assert "event: queued" in (next(lines), next(lines), next(lines), next(lines))
        # the answer so far (none) is stored before its place is given up
        server.wait_until("its place is given up", lambda s: s["queued"] == 0)
    messages = server.http.get(f"/api/conversations/{conv}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[1]["content"] == ""
    assert messages[1]["finish_reason"] == "cancelled"
