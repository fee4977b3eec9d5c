"""`GET /metrics` of a real server, parsed by prometheus_client's own parser, after it has
answered, indexed, refused a sign-in and been asked for a path no route has."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.e2e.conftest import Server

TOKEN = "scrape-3f9a8c1e7d"  # noqa: S105
SERVER_ENV = {"APPLIANCE_WEB__METRICS_TOKEN": TOKEN, "APPLIANCE_PII__DOCUMENTS": "redact"}
NAME_IN_PATH = "zebulon-quartermaine"  # made up by the client: must never become a label


def scrape(server: Server, **headers: str) -> list[Sample]:
    reply = httpx.get(f"{server.base_url}/metrics", headers=headers, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=")
    return [s for f in text_string_to_metric_families(reply.text) for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    wanted = labels.items()
    found = [s.value for s in samples if s.name == name and wanted <= s.labels.items()]
    assert found, f"no sample {name} {labels}"
    return sum(found)


def wait_for(what: str, check: object, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def test_metrics_say_what_the_server_did(server: Server) -> None:
    folder = server.log.parent / "documents"
    (folder / "contacts.md").write_text(
        "# Contacts\n\nQuestions about travel go to Maria Lopez, maria.lopez@example.com.\n"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    wait_for("the file indexed",
             lambda: value(scrape(server, **headers), "appliance_documents",
                           status="indexed") >= 1)  # fmt: skip
    reply = server.http.post("/v1/chat/completions", timeout=60, json={
        "messages": [{"role": "user", "content": "Write a haiku about spring."}],
        "max_tokens": 12})  # fmt: skip
    assert reply.status_code == 200
    found = server.http.post("/api/search", json={"query": "Who answers travel questions?"})
    assert found.status_code == 200
    refused = httpx.post(f"{server.base_url}/api/session", timeout=30,
                         json={"name": NAME_IN_PATH, "password": "wrong-password-1"})  # fmt: skip
    assert refused.status_code == 401
    assert server.http.get(f"/api/{NAME_IN_PATH}").status_code == 404

    samples = scrape(server, **headers)
    names = {s.name for s in samples}
    assert all(n.startswith("appliance_") for n in names)
    assert not any(NAME_IN_PATH in str(s.labels) for s in samples)
    requests = "appliance_http_requests_total"
    assert value(samples, requests, route="/v1/chat/completions", status="200") >= 1
    assert value(samples, requests, route="unmatched", status="404") >= 1
    assert value(samples, "appliance_http_request_duration_seconds_count",
                 route="/v1/chat/completions") >= 1  # fmt: skip
    assert value(samples, "appliance_prompt_tokens_total") > 0
    assert value(samples, "appliance_generated_tokens_total") > 0
    assert value(samples, "appliance_time_to_first_token_seconds_count") >= 1
    assert value(samples, "appliance_inter_token_latency_seconds_count") >= 1
    assert value(samples, "appliance_prefix_cache_lookups_total") >= 1
    assert value(samples, "appliance_answers_total") >= 1
    assert value(samples, "appliance_retrieval_duration_seconds_count") >= 1
    assert value(samples, "appliance_ingest_files_total", outcome="indexed") >= 1
    assert value(samples, "appliance_chunks_embedded_total") >= 1
    assert value(samples, "appliance_embed_seconds_total") > 0
    assert value(samples, "appliance_personal_data_found_total", source="document",
                 type="EMAIL_ADDRESS") >= 1  # fmt: skip
    assert value(samples, "appliance_sign_ins_failed_total") >= 1
    assert value(samples, "appliance_engine_slots") >= 1
    assert value(samples, "appliance_engine_queue_length") == 0
    assert value(samples, "appliance_process_resident_memory_bytes") > 0
    assert value(samples, "appliance_engine_ready") == 1


def test_metrics_are_for_admins_and_the_scraper(server: Server) -> None:
    assert httpx.get(f"{server.base_url}/metrics", timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.get(f"{server.base_url}/metrics", headers=wrong, timeout=30).status_code == 401
    password = "reader-password-9"  # noqa: S105
    added = server.http.post("/api/users", json={"name": "reader", "password": password})
    assert added.status_code == 201, added.text
    with httpx.Client(base_url=server.base_url, timeout=30) as user:
        signed = user.post("/api/session", json={"name": "reader", "password": password})
        assert signed.status_code == 200
        assert user.get("/metrics").status_code == 403  # signed in, not an admin
    assert server.http.get("/metrics").status_code == 200  # an admin's key
    assert scrape(server, Authorization=f"Bearer {TOKEN}")
