"""The Models API through Litestar on the real model: admins only, names only from the list
(no path), a file that cannot be served or too little memory refused with the old model
serving, a switch audited and kept in appliance.db; the OpenAI `model` must be the served
model's id or `default`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from appliance.llm.models import BUNDLED_FILE
from appliance.store.db import Database
from appliance.store.settings import SERVED_MODEL, SettingStore
from tests.conftest import make_admin, make_settings
from tests.llm.model_files import copy_of, truncated_copy
from tests.web.conftest import Client, running_app

BUNDLED_ID = "SmolLM2-135M-Instruct.Q4_1"
HI = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0}


@pytest.fixture
def models_dir(tmp_path: Path, model_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    copy_of(model_path, folder / "second.gguf")
    truncated_copy(model_path, folder / "cut.gguf")
    return folder


@pytest.fixture
def client(tmp_path: Path, models_dir: Path) -> Iterator[Client]:
    with running_app(make_settings(tmp_path / "data", models_dir=str(models_dir))) as c:
        yield c


def employee(client: Client, tmp_path: Path) -> Client:
    key = make_admin(tmp_path / "data", "emma", "employee")
    other = TestClient(client.app)
    other.headers["Authorization"] = f"Bearer {key}"
    return other


def served_when_loaded(client: Client, limit: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view: dict[str, object] = client.get("/api/models").json()
        if view["loading"] is None and view["replaced"] is None:
            return view
        time.sleep(0.05)
    raise AssertionError("the switch never ended")


def test_admins_see_every_model_with_its_metadata(client: Client) -> None:
    view = client.get("/api/models").json()
    assert (view["served"], view["served_id"], view["loading"]) == (BUNDLED_FILE, BUNDLED_ID, None)
    assert view["chosen"] is None
    models = {m["name"]: m for m in view["models"]}
    assert list(models) == [BUNDLED_FILE, "cut.gguf", "second.gguf"]
    second = models["second.gguf"]
    assert second["error"] is None
    info = second["info"]
    assert (info["id"], info["architecture"], info["quantization"]) == ("second", "llama", "Q4_1")
    assert info["context_length"] == 8192
    assert info["supports_tools"] is False
    assert 130e6 < info["parameters"] < 140e6
    assert models["cut.gguf"]["info"] is None
    assert "is truncated" in models["cut.gguf"]["error"]


def test_employees_get_403(client: Client, tmp_path: Path) -> None:
    other = employee(client, tmp_path)
    assert other.get("/api/models").status_code == 403
    assert other.put("/api/models/served", json={"name": "second.gguf"}).status_code == 403
    assert other.get("/models").status_code == 403
    assert client.get("/api/models").json()["served"] == BUNDLED_FILE


@pytest.mark.parametrize(
    "name", ["nothing.gguf", "../models/second.gguf", "second", "/etc/passwd", "models/second.gguf"]
)
def test_only_a_listed_file_name_can_be_chosen(client: Client, models_dir: Path, name: str) -> None:
    refused = client.put("/api/models/served", json={"name": name})
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    assert client.get("/api/models").json()["served"] == BUNDLED_FILE


def test_a_file_that_cannot_be_served_is_refused_and_the_old_one_serves(client: Client) -> None:
    refused = client.put("/api/models/served", json={"name": "cut.gguf"})
    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert "cut.gguf cannot be served" in message
    assert "truncated" in message
    assert f"{BUNDLED_FILE} still serves" in message
    view = client.get("/api/models").json()
    assert (view["served"], view["failed"]) == (BUNDLED_FILE, "cut.gguf")
    assert "truncated" in view["error"]
    assert client.post("/v1/chat/completions", json=HI).json()["model"] == BUNDLED_ID


def test_too_little_memory_is_refused_and_the_old_one_serves(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("appliance.ops.models.ram_available", lambda: (200 << 20, 8 << 30))
    refused = client.put("/api/models/served", json={"name": "second.gguf"})
    assert refused.status_code == 409
    message = refused.json()["error"]["message"]
    assert "not enough memory to load it beside" in message
    assert "KV cache" in message
    assert client.get("/api/models").json()["served"] == BUNDLED_FILE


def test_a_switch_serves_the_new_model_audited_and_kept(client: Client, tmp_path: Path) -> None:
    started = client.put("/api/models/served", json={"name": "second.gguf"})
    assert started.status_code == 202, started.text
    view = served_when_loaded(client)
    assert (view["served"], view["served_id"], view["error"]) == ("second.gguf", "second", None)
    assert view["chosen"]["name"] == "second.gguf"
    assert view["chosen"]["by"] == "admin"
    assert client.get("/v1/models").json()["data"][0]["id"] == "second"
    assert client.post("/v1/chat/completions", json=HI).json()["model"] == "second"
    again = client.put("/api/models/served", json={"name": "second.gguf"})
    assert again.status_code == 200  # served already: nothing to load
    records = client.get("/api/audit").json()
    served = [r for r in records if r["action"] == "model.serve"]
    assert [(r["actor"], r["target"]) for r in served] == [("admin", "second.gguf")]
    # back to the model llm.model names: the choice is dropped, the settings decide again
    assert client.put("/api/models/served", json={"name": BUNDLED_FILE}).status_code == 202
    assert served_when_loaded(client)["served"] == BUNDLED_FILE
    db = Database(tmp_path / "data" / "appliance.db")
    assert SettingStore(db).get(SERVED_MODEL) is None
    db.close()


def test_the_openai_model_must_be_the_served_one(client: Client) -> None:
    for name in (BUNDLED_ID, "default", None):
        body = {**HI, "model": name} if name else HI
        answered = client.post("/v1/chat/completions", json=body)
        assert answered.status_code == 200, answered.text
        assert answered.json()["model"] == BUNDLED_ID
    typo = client.post("/v1/chat/completions", json={**HI, "model": "SmolLM2-135M-Instruct"})
    assert typo.status_code == 404
    error = typo.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "model_not_found",
        "model",
        "invalid_request_error",
    )
    assert "'SmolLM2-135M-Instruct'" in error["message"]
    assert f"'{BUNDLED_ID}'" in error["message"]
