"""The OpenAI endpoint through Litestar: template refusals and request checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_settings
from tests.web.conftest import Client, running_app

# ChatML, but refusing two user turns in a row, as Mistral's and Gemma's templates do.
STRICT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if loop.index0 > 0 and m.role == messages[loop.index0 - 1].role %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n"
)


@pytest.fixture
def strict_client(tmp_path: Path) -> Iterator[Client]:
    with running_app(make_settings(tmp_path, chat_template=STRICT_TEMPLATE)) as client:
        yield client


def test_configured_chat_template_is_used_and_its_refusal_is_a_400(strict_client: Client) -> None:
    ok = strict_client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3},
    )
    assert ok.status_code == 200, ok.text
    refused = strict_client.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},
    )
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["param"] == "messages"
    assert "must alternate" in error["message"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         "messages[0].content"),
        ({"messages": [{"role": "user", "content": "x"}], "seed": -1}, "seed"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        ({"messages": []}, "messages"),
    ],
)  # fmt: skip
def test_unusable_requests_are_400_naming_the_field(
    client: Client, body: dict[str, object], param: str
) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
