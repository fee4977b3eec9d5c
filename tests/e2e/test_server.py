"""The real server on 127.0.0.1: the official openai client, disconnects, a full queue."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import LONG_PROMPT
from tests.e2e.conftest import Server

# A long, deterministic answer (~1,500 tokens at temperature 0): it is still running when a
# test acts on it.
LONG_CHAT = {"messages": [{"role": "user", "content": LONG_PROMPT}], "max_tokens": 1500,
             "temperature": 0}  # fmt: skip


@pytest.fixture
def oai(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.key, max_retries=0)


def model_id(oai: openai.OpenAI) -> str:
    return oai.models.list().data[0].id


def test_models_lists_the_served_model(oai: openai.OpenAI) -> None:
    assert model_id(oai) == "SmolLM2-135M-Instruct.Q4_1"


def test_non_streaming_completion_with_usage(oai: openai.OpenAI) -> None:
    reply = oai.chat.completions.create(
        model=model_id(oai),
        messages=[{"role": "user", "content": LONG_PROMPT}],
        max_tokens=8,
        temperature=0,
    )
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 8
    assert reply.usage.prompt_tokens > 10
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 8


def test_streaming_completion_with_usage(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model=model_id(oai),
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a color."},
        ],
        max_tokens=10,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert text
    assert finishes[-1] in ("stop", "length")
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    usage = chunks[-1].usage
    assert usage is not None
    assert 1 <= usage.completion_tokens <= 10


def test_errors_arrive_in_openai_shape(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(
            model=model_id(oai), messages=[{"role": "user", "content": "hi"}], temperature=9
        )
    assert caught.value.status_code == 400
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error"
    assert body["param"] == "temperature"


def test_disconnect_mid_stream_frees_the_engine(server: Server, oai: openai.OpenAI) -> None:
    before = server.wait_until("idle", lambda s: s["pending"] == 0)["cancelled"]
    body = {
        "messages": [{"role": "user", "content": LONG_PROMPT}],
        "max_tokens": 1500,
        "temperature": 0,
        "stream": True,
    }
    with server.http.stream("POST", "/v1/chat/completions", json=body) as response:
        lines = response.iter_lines()
        received = [line for line, _ in zip(lines, range(8), strict=False) if line]
        assert len(received) >= 3
    # Leaving the block closed the connection while the model had ~1,500 tokens to go.
    state = server.wait_until("idle", lambda s: s["pending"] == 0)
    assert state["cancelled"] == before + 1  # type: ignore[operator]
    reply = oai.chat.completions.create(
        model=model_id(oai), messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    assert reply.usage is not None
    assert reply.usage.completion_tokens >= 1


def test_stop_on_the_page_keeps_the_partial_answer(server: Server) -> None:
    conv = server.http.post("/api/conversations", json={}).json()
    url = f"{server.base_url}/api/conversations/{conv['id']}/messages"
    body = {"content": LONG_PROMPT, "max_tokens": 1500, "temperature": 0}
    with server.http.stream("POST", url, json=body) as response:
        tokens = 0
        for line in response.iter_lines():
            tokens += line == "event: token"
            if tokens == 4:
                break
    server.wait_until("idle", lambda s: s["pending"] == 0)
    # A disconnect that cancels the task mid-wait frees the engine first; the stopped answer
    # is stored just after (through the redactor): a bounded wait for it, not a timing check.
    deadline = time.monotonic() + 30
    while True:
        shown = server.http.get(f"/api/conversations/{conv['id']}").json()
        if len(shown["messages"]) > 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"]  # stored once
    answer = shown["messages"][-1]
    assert answer["finish_reason"] == "cancelled"
    assert answer["content"]


def test_full_queue_answers_503_with_retry_after(server: Server) -> None:
    url = f"{server.base_url}/v1/chat/completions"
    short = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    slots = server.wait_until("idle", lambda s: s["pending"] == 0)["slots"]
    with contextlib.ExitStack() as streams:
        for _ in range(slots):  # type: ignore[call-overload]
            running = streams.enter_context(
                server.http.stream("POST", url, json={**LONG_CHAT, "stream": True}))
            lines = running.iter_lines()
            next(lines)  # this slot is answering
            streams.callback(lines.close)  # keep a reference: dropping it closes the connection
        replies: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: replies.append(server.http.post(url, json=short, timeout=120))
        )
        waiting.start()
        server.wait_until("one queued", lambda s: s["queued"] == 1)
        refused = server.http.post(url, json=short)
    waiting.join(timeout=120)
    assert [r.status_code for r in replies] == [200]  # the queued one was served after all
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1  # estimated from the answers' durations
    assert refused.json()["error"]["code"] == "engine_busy"


def test_disconnect_before_a_non_streamed_answer_frees_the_engine(server: Server) -> None:
    body = LONG_CHAT
    url = f"{server.base_url}/v1/chat/completions"
    before = server.wait_until("idle", lambda s: s["pending"] == 0)["cancelled"]
    with pytest.raises(httpx.ReadTimeout):
        # The short read timeout is how this client walks away mid-answer.
        server.http.post(url, json=body, timeout=httpx.Timeout(30, read=0.5))
    state = server.wait_until("idle", lambda s: s["pending"] == 0)
    assert state["cancelled"] == before + 1  # type: ignore[operator]


def test_one_answer_at_a_time_per_conversation(server: Server) -> None:
    conv = server.http.post("/api/conversations", json={}).json()
    url = f"{server.base_url}/api/conversations/{conv['id']}/messages"
    long = {"content": LONG_PROMPT, "max_tokens": 1500, "temperature": 0}
    with server.http.stream("POST", url, json=long) as first:
        lines = first.iter_lines()
        assert next(lines) == "event: start"
        second = server.http.post(url, json={"content": "And another?"})
        deleted = server.http.delete(f"/api/conversations/{conv['id']}")
        lines.close()
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "conflict"
    assert deleted.status_code == 409
    server.wait_until("idle", lambda s: s["pending"] == 0)


def test_leaving_while_queued_keeps_the_question_and_costs_nothing(server: Server) -> None:
    chat = f"{server.base_url}/v1/chat/completions"
    long = LONG_CHAT
    conv = server.http.post("/api/conversations", json={}).json()
    page = f"{server.base_url}/api/conversations/{conv['id']}/messages"
    before = server.wait_until("idle", lambda s: s["pending"] == 0)
    slots = int(before["slots"])  # type: ignore[call-overload]
    with contextlib.ExitStack() as streams:
        for _ in range(slots):  # every slot busy with a long answer
            running = streams.enter_context(
                server.http.stream("POST", chat, json={**long, "stream": True}))
            lines = running.iter_lines()
            next(lines)
            streams.callback(lines.close)
        with pytest.raises(httpx.ReadTimeout):  # queued behind them, then the client walks away
            server.http.post(page, json={"content": "Hello?"}, timeout=httpx.Timeout(30, read=0.5))
    after = server.wait_until("idle", lambda s: s["pending"] == 0)
    assert after["cancelled"] == before["cancelled"] + slots + 1  # type: ignore[operator]
    assert after["completed"] == before["completed"]
    shown = server.http.get(f"/api/conversations/{conv['id']}").json()["messages"]
    assert [m["role"] for m in shown] == ["user", "assistant"]  # the question, and a stop
    assert shown[0]["content"] == "Hello?"
    assert (shown[1]["content"], shown[1]["finish_reason"]) == ("", "cancelled")


def _nice_of_threads(pid: int) -> dict[str, list[int]]:
    """Each thread name of the process, with its threads' nice values (from /proc)."""
    found: dict[str, list[int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        stat = (task / "stat").read_text()
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        found.setdefault(name, []).append(int(fields[16]))  # field 19 of stat: nice
    return found


def test_generation_runs_above_the_serving_threads(server: Server) -> None:
    server.wait_until("idle", lambda s: s["pending"] == 0)
    reply = server.http.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2})  # fmt: skip
    assert reply.status_code == 200
    pid = server.process.pid
    engine = _nice_of_threads(pid)["llm-engine"]
    main = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    assert set(engine) == {0}  # with llama.cpp's own threads, started from it
    assert int(main[main.rindex(")") + 2 :].split()[16]) == 5  # the event loop's thread
