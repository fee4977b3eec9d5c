"""What the model is sent under each prompt policy, on the page API and the OpenAI API: the real
engine, observed through a wrapper that records each request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from appliance.config import PiiSettings
from appliance.llm.types import GenerationRequest
from appliance.web.app import create_app
from appliance.wiring import build_services
from tests.conftest import make_admin, make_settings
from tests.web.conftest import sse_events

MESSAGE = "Please greet Maria Garcia (maria.garcia@example.com) from me."
RAW = ("Maria Garcia", "maria.garcia@example.com")


@pytest.fixture(params=["off", "redact", "pseudonymize"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, list[str], str]]:
    settings = msgspec.structs.replace(make_settings(tmp_path / "data"),
                                       pii=PiiSettings(prompts=request.param))  # fmt: skip
    key = make_admin(settings.data_path)
    services = build_services(settings)
    seen: list[str] = []
    submit = services.chat.engine.submit

    def recording(req: GenerationRequest) -> Any:
        seen.append("\n".join(m.content for m in req.messages))
        return submit(req)

    services.chat.engine.submit = recording  # type: ignore[method-assign]
    app_ = create_app(settings, services)
    with TestClient(app_) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        assert services.engine.wait_ready(60)  # type: ignore[attr-defined]
        yield client, seen, request.param


def test_the_page_api_sends_the_model_what_the_policy_says(app: tuple[Any, list[str], str]) -> None:
    client, seen, policy = app
    conv = client.post("/api/conversations", json={}).json()
    body = {"content": MESSAGE, "max_tokens": 4, "temperature": 0}
    with client.stream("POST", f"/api/conversations/{conv['id']}/messages", json=body) as r:
        events = sse_events(r.iter_lines())
    assert events[-1][0] == "done"
    body["content"] = "And again?"
    with client.stream("POST", f"/api/conversations/{conv['id']}/messages", json=body) as r:
        sse_events(r.iter_lines())
    first, second = seen
    if policy == "off":
        assert all(value in first for value in RAW)
        assert all(value in second for value in RAW)  # the history as written, too
    else:
        assert not any(value in first + second for value in RAW)
        marker = "<PERSON_1>" if policy == "pseudonymize" else "<PERSON>"
        assert marker in first
        assert marker in second


def test_the_openai_api_follows_the_same_policy(app: tuple[Any, list[str], str]) -> None:
    client, seen, policy = app
    reply = client.post("/v1/chat/completions", json={
        "messages": [{"role": "user", "content": MESSAGE}], "max_tokens": 4})  # fmt: skip
    assert reply.status_code == 200
    (sent,) = seen
    assert (all(v in sent for v in RAW)) == (policy == "off")
