"""Schemathesis against a real server, from the schema it serves: every operation, a bounded
number of derandomized examples each; no 5xx but a 503 with Retry-After, and each answer as
the schema describes it."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Server

SERVER_ENV = {
    # an answer ends at the context's end at the latest: a small one bounds what a body asks
    "APPLIANCE_LLM__N_CTX": "384",
    "APPLIANCE_LLM__QUEUE_SIZE": "2",
}
EXAMPLES = 12  # per operation and mode (valid and invalid data)
# Valid data on these runs the model (a streamed answer stops at max-stream-events; one
# that is not, at the context's end): a few examples each.
ANSWERING = {
    "POST /v1/chat/completions": 3,
    "POST /api/conversations/{conversation_id}/messages": 3,
    "POST /api/conversations/{conversation_id}/regenerate": 3,
}

# Streams that stay open while the page does (each example would wait out the request
# timeout): their own tests drive them (tests/web/test_handoff.py, tests/e2e/test_handoff_page.py).
ENDLESS = {"GET /api/events"}

# The checks run on every answer (besides no 5xx): schemathesis's, all those about one answer.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,  # Retry-After, which the schema requires on 429 and 503
    response_schema_conformance,
    negative_data_rejection,  # invalid data gets a 4xx
    positive_data_acceptance,  # valid data is not refused with a 400 (404, 409... may come)
    ignored_auth,  # a 2xx answer is a 401 without the key, or with a wrong one
]


@pytest.fixture(scope="module")
def api(server: Server) -> BaseSchema:
    config = SchemathesisConfig.from_dict({
        "seed": 11,
        "base-url": server.base_url,
        "max-stream-events": 12,  # then the client leaves: the server stops that answer
        "request-timeout": 120,
    })  # fmt: skip
    return schemathesis.openapi.from_url(f"{server.base_url}/schema/openapi.json",
                                         config=config, headers=auth(server))  # fmt: skip


def auth(server: Server) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.key}"}


def test_no_server_errors_and_answers_as_the_schema_says(server: Server, api: BaseSchema) -> None:
    """schemathesis's pytest loader reads `node._nodeid`, which pytest 9.2 no longer has: each
    operation's examples run here instead, through hypothesis with schemathesis's strategies."""
    own_key = int(server.http.get("/api/keys").json()[0]["id"])
    failures: list[str] = []
    seen: dict[str, Counter[int]] = {}
    operations = [op for op in (result.ok() for result in api.get_all_operations())
                  if op.label not in ENDLESS]  # fmt: skip
    assert len(operations) >= 30
    with (server.log.parent / "fuzz.txt").open("w") as report:  # what each one answered
        for operation in operations:
            seen[operation.label] = statuses = Counter()
            started = time.monotonic()
            for mode, ids in passes(operation, server):
                try:
                    fuzz(operation, mode, ids, server, own_key, statuses)
                except Unsatisfiable:
                    assert mode == GenerationMode.NEGATIVE  # no parameters to get wrong
                except (Exception, BaseExceptionGroup) as exc:  # each operation gets its turn
                    failures.append(f"{operation.label} ({mode}, {ids}): {exc}")
            print(f"{operation.label}: {dict(statuses)} in {time.monotonic() - started:.1f} s",
                  file=report, flush=True)  # fmt: skip
    assert not failures, "\n\n".join(failures)
    # the key lived throughout: each operation got past the sign-in check, most further
    assert server.http.get("/api/me").json()["name"] == "admin"
    assert not [label for label, statuses in seen.items() if not set(statuses) - {401}]
    assert sum(1 for statuses in seen.values() if any(200 <= s < 300 for s in statuses)) >= 25


def passes(operation: APIOperation, server: Server) -> list[tuple[GenerationMode, dict[str, Any]]]:
    """Valid and invalid data with whatever ids come; and valid data on a real conversation
    with an answer, or a real user, so that their routes (answering included) do more than
    say 404."""
    runs: list[tuple[GenerationMode, dict[str, Any]]] = [
        (GenerationMode.POSITIVE, {}),
        (GenerationMode.NEGATIVE, {}),
    ]
    if "{conversation_id}" in operation.path:
        conversation = server.http.post("/api/conversations", json={}).json()["id"]
        answer = asked(server, conversation)
        ids = {"conversation_id": conversation, "message_id": answer}
        runs.append((GenerationMode.POSITIVE, {k: v for k, v in ids.items()
                                                if f"{{{k}}}" in operation.path}))  # fmt: skip
    if "{name}" in operation.path:
        name = f"fuzzed-{uuid.uuid4().hex[:8]}"
        made = server.http.post("/api/users", json={"name": name, "password": "p" * 12})
        assert made.status_code == 201, made.text
        runs.append((GenerationMode.POSITIVE, {"name": name}))
    return runs


def asked(server: Server, conversation: str) -> int:
    """The id of the answer to a short question in `conversation`."""
    with server.http.stream("POST", f"/api/conversations/{conversation}/messages",
                            json={"content": "Say hi.", "max_tokens": 4}) as reply:  # fmt: skip
        assert reply.status_code == 200
        done = [line for line in reply.iter_lines() if '"finish_reason"' in line]
    return int(msgspec.json.decode(done[-1].removeprefix("data: "))["message"]["id"])


def fuzz(operation: APIOperation, mode: GenerationMode, ids: dict[str, Any], server: Server,
         own_key: int, statuses: Counter[int]) -> None:  # fmt: skip
    examples = EXAMPLES if mode == GenerationMode.NEGATIVE else ANSWERING.get(operation.label)

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=ids or None))
    @settings(max_examples=examples or EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: a bounded run
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def run(case: Case) -> None:
        # revoking the fuzzer's own key would turn the rest of the run into 401s
        assume(case.path_parameters is None or case.path_parameters.get("key_id") != own_key)
        response = case.call(headers=auth(server))
        status = response.status_code
        statuses[status] += 1
        assert status < 500 or (status == 503 and "Retry-After" in response.headers), (
            f"{case.method} {case.formatted_path}: {status} {response.text[:500]}"
        )
        case.validate_response(response, checks=CHECKS, headers=auth(server))

    run()


def test_both_answer_streams_are_sent_as_event_streams(server: Server) -> None:
    """The fuzzing found `/v1/chat/completions` streams labelled application/json."""
    ask = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "stream": True}
    conversation = server.http.post("/api/conversations", json={}).json()["id"]
    say = {"content": "Hi", "max_tokens": 2}
    for path, body in (("/v1/chat/completions", ask),
                       (f"/api/conversations/{conversation}/messages", say)):  # fmt: skip
        with server.http.stream("POST", path, json=body) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"] == "text/event-stream; charset=utf-8", path
            assert any(line.startswith("data: ") for line in reply.iter_lines())
