"""Schemathesis against a real server, from the schema it serves: every operation, a bounded
number of derandomized examples each; no 5xx but a 503 with Retry-After, and each answer as
the schema describes it."""

from __future__ import annotations

from collections import Counter

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
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.conftest import Server

SERVER_ENV = {
    # a generation ends at the context's end: a small one bounds what any body can ask for
    "APPLIANCE_LLM__N_CTX": "1024",
    "APPLIANCE_LLM__QUEUE_SIZE": "2",
}
EXAMPLES = 12  # per operation and mode (valid and invalid data)

# The checks run on every answer: schemathesis's conformance to the schema, plus ours below.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,  # Retry-After, which the schema requires on 429 and 503
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]


@pytest.fixture(scope="module")
def api(server: Server) -> BaseSchema:
    config = SchemathesisConfig.from_dict({
        "seed": 11,
        "base-url": server.base_url,
        "max-stream-events": 40,  # then the client leaves: the server stops that answer
        "request-timeout": 60,
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
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:
        seen[operation.label] = Counter()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, server, own_key, seen[operation.label])
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing to get wrong: no parameters
            except (Exception, BaseExceptionGroup) as exc:  # each operation gets its turn
                failures.append(f"{operation.label} ({mode}): {exc}")
    (server.log.parent / "fuzz.txt").write_text(
        "\n".join(f"{label}: {dict(statuses)}" for label, statuses in seen.items())
    )
    assert not failures, "\n\n".join(failures)
    # the key lived throughout: each operation got past the sign-in check
    assert server.http.get("/api/me").json()["name"] == "admin"
    assert not [label for label, statuses in seen.items() if not set(statuses) - {401}]


def fuzz(operation: APIOperation, mode: GenerationMode, server: Server, own_key: int,
         statuses: Counter[int]) -> None:  # fmt: skip
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
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
