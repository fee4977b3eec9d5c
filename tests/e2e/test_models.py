"""Choosing the served model on a real server, with the official openai client: a typo in
`model` is a 404 (NotFoundError), `default` and the served id are answered; a switch while an
answer streams lets that answer finish on the old model while new requests get the new one; a
broken file leaves the old model serving; the choice survives a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from appliance.llm.models import BUNDLED_FILE
from tests.conftest import LONG_PROMPT
from tests.e2e.conftest import Server, running_server
from tests.llm.model_files import copy_of, truncated_copy, unloadable_copy

BUNDLED_ID = "SmolLM2-135M-Instruct.Q4_1"
HI = [{"role": "user", "content": "Say hi."}]
LONG_TOKENS = 400  # still being written when the new model has loaded


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    folder = tmp_path_factory.mktemp("models")
    copy_of(model_path, folder / "second.gguf")  # the same weights, another id
    unloadable_copy(model_path, folder / "broken.gguf")  # a header llama.cpp refuses
    truncated_copy(model_path, folder / "cut.gguf")
    return folder


@pytest.fixture(scope="module")
def env(models_dir: Path) -> dict[str, str]:
    return {"APPLIANCE_LLM__MODELS_DIR": str(models_dir)}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="module")
def server(data: Path, env: dict[str, str]) -> Iterator[Server]:
    with running_server(data, env) as srv:
        yield srv


def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key=server.key, max_retries=0)


def settled(server: Server, limit: float = 90) -> dict[str, Any]:
    """The Models API once no model is loading and no old one is still being freed."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view: dict[str, Any] = server.http.get("/api/models").json()
        if view["loading"] is None and view["replaced"] is None:
            return view
        time.sleep(0.05)
    raise AssertionError(f"the switch never ended: {server.http.get('/api/models').text}")


def test_the_model_named_must_be_the_served_one(server: Server) -> None:
    oai = client(server)
    assert [m.id for m in oai.models.list().data] == [BUNDLED_ID]
    for name in (BUNDLED_ID, "default"):
        reply = oai.chat.completions.create(model=name, messages=HI, max_tokens=3)
        assert reply.model == BUNDLED_ID
        assert reply.choices[0].message.content
    for stream in (False, True):
        with pytest.raises(openai.NotFoundError) as caught:
            oai.chat.completions.create(model="gpt-4o", messages=HI, max_tokens=3, stream=stream)
        assert caught.value.code == "model_not_found"
        assert "'gpt-4o'" in caught.value.message
        assert f"'{BUNDLED_ID}'" in caught.value.message


def test_a_broken_file_leaves_the_old_model_serving(server: Server) -> None:
    cut = server.http.put("/api/models/served", json={"name": "cut.gguf"})
    assert cut.status_code == 409
    assert "truncated" in cut.json()["error"]["message"]
    started = server.http.put("/api/models/served", json={"name": "broken.gguf"})
    assert started.status_code == 202  # its header reads well: llama.cpp refuses it
    view = settled(server)
    assert (view["served"], view["failed"]) == (BUNDLED_FILE, "broken.gguf")
    assert "failed to load" in view["error"]
    assert server.http.get("/readyz").status_code == 200
    reply = client(server).chat.completions.create(model="default", messages=HI, max_tokens=3)
    assert reply.model == BUNDLED_ID


def test_a_switch_mid_answer_and_across_a_restart(
    server: Server, data: Path, env: dict[str, str]
) -> None:
    oai = client(server)
    chunks: list[Any] = []
    first = threading.Event()

    def stream() -> None:
        for chunk in oai.chat.completions.create(
            model=BUNDLED_ID,
            messages=[{"role": "user", "content": LONG_PROMPT}],
            max_tokens=LONG_TOKENS,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        ):
            chunks.append(chunk)
            first.set()

    streaming = threading.Thread(target=stream)
    streaming.start()
    assert first.wait(60)
    started = server.http.put("/api/models/served", json={"name": "second.gguf"})
    assert started.status_code == 202, started.text
    assert started.json()["loading"] == "second.gguf"
    deadline = time.monotonic() + 60
    while server.http.get("/api/models").json()["served"] != "second.gguf":
        assert time.monotonic() < deadline, "the new model never served"
        time.sleep(0.05)
    assert streaming.is_alive()  # the old model is still writing the long answer
    assert [m.id for m in oai.models.list().data] == ["second"]
    reply = oai.chat.completions.create(model="second", messages=HI, max_tokens=3)
    assert reply.model == "second"
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model=BUNDLED_ID, messages=HI, max_tokens=3)
    streaming.join(180)
    assert not streaming.is_alive()
    assert {c.model for c in chunks} == {BUNDLED_ID}  # written by the old model to the end
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "length"
    assert chunks[-1].usage.completion_tokens == LONG_TOKENS
    view = settled(server)  # the old model is freed
    assert view["chosen"]["name"] == "second.gguf"
    server.process.terminate()  # one server per data dir: this one goes, the next one starts
    server.process.wait(timeout=30)
    with running_server(data, env) as again:
        assert [m.id for m in client(again).models.list().data] == ["second"]
        view = again.http.get("/api/models").json()
        assert (view["served"], view["chosen"]["name"]) == ("second.gguf", "second.gguf")
        reply = client(again).chat.completions.create(model="second", messages=HI, max_tokens=3)
        assert reply.model == "second"
