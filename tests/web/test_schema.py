"""The OpenAPI document: signed-in only, JSON only, every route with its bodies and errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from appliance.services import Services
from appliance.web.app import create_app
from appliance.web.deps import MAX_ROW_ID
from appliance.web.openapi import ERRORS, EVENT_STREAMS, EXTRA_ERRORS
from appliance.wiring import build_services
from tests.conftest import ADMIN_PASSWORD, make_admin, make_settings

URL = "/schema/openapi.json"
ERROR = {"$ref": "#/components/schemas/ErrorResponse"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, Services, str]]:
    settings = make_settings(tmp_path_factory.mktemp("schema") / "data")
    key = make_admin(settings.data_path)
    services = build_services(settings)
    app = create_app(settings, services)
    with TestClient(app):  # started and stopped as served: the lock, database and worker go
        yield app, services, key


@pytest.fixture(scope="module")
def document(world: tuple[Litestar, Services, str]) -> dict[str, Any]:
    app, _, key = world
    reply = TestClient(app).get(URL, headers={"Authorization": f"Bearer {key}"})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_only_signed_in_users_get_the_schema(world: tuple[Litestar, Services, str]) -> None:
    app, services, key = world
    anon = TestClient(app)
    refused = anon.get(URL)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    with_key = anon.get(URL, headers={"Authorization": f"Bearer {key}"})
    assert with_key.status_code == 200
    assert with_key.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    assert with_key.json()["openapi"].startswith("3.1")
    services.accounts.add("page", ADMIN_PASSWORD, "employee")
    page = TestClient(app)
    assert page.post("/api/session", json={"name": "page", "password": ADMIN_PASSWORD}).is_success
    assert page.get(URL).json()["info"]["title"] == "appliance"  # a session (an employee) too


ELSEWHERE = [
    "/schema",
    "/schema/swagger",
    "/schema/redoc",
    "/schema/elements",
    "/schema/rapidoc",
    "/schema/openapi.yaml",
    "/schema/openapi.yml",
]


@pytest.mark.parametrize("path", ELSEWHERE)
def test_no_ui_nor_other_format_is_served(world: tuple[Litestar, Services, str], path: str) -> None:
    """The UIs load their scripts from CDNs; the page's policy forbids that, and so do we."""
    app, _, key = world
    assert TestClient(app).get(path, headers={"Authorization": f"Bearer {key}"}).status_code == 404


def test_every_route_is_in_the_schema(
    world: tuple[Litestar, Services, str], document: dict[str, Any]
) -> None:
    app, _, _ = world
    served = {operation for operation, _ in operations(document)}
    routed = {
        f"{method} {route.path_format}"
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if handler.resolve_include_in_schema()
        for method in handler.http_methods - {"HEAD", "OPTIONS"}
    }
    assert served == routed
    assert len(served) >= 30
    # pages, static files and the schema itself are not API routes
    assert not [o for o in served if o.startswith(("GET /static", "GET /schema", "GET /signin"))]
    assert set(EXTRA_ERRORS) <= served  # no entry of the table names a route that is gone


def test_every_error_has_the_one_error_shape(document: dict[str, Any]) -> None:
    public = {"GET /healthz", "POST /api/session", "POST /api/setup", "GET /api/auth",
              "GET /auth/oidc/login", "GET /auth/oidc/callback"}  # sign-in's own
    for name, operation in operations(document):
        errors = {int(code): r for code, r in operation["responses"].items() if int(code) >= 400}
        if name == "GET /readyz":
            errors.pop(503)  # not ready: the engine's state, not an error
        assert set(errors) <= set(ERRORS), name
        for code, response in errors.items():
            assert response["content"]["application/json"]["schema"] == ERROR, (name, code)
            if code in (429, 503):
                assert response["headers"]["Retry-After"]["required"], (name, code)
        if name in public:
            assert operation["security"] == [], name
            continue
        assert 401 in errors, name
        assert {"apiKey": []} in operation["security"], name
        if name.split()[0] in ("POST", "PATCH", "DELETE"):
            assert 403 in errors, name  # the session's CSRF token
        if "requestBody" in operation:
            assert {400, 413} <= set(errors), name
        if "{" in name:
            assert 404 in errors, name


def test_generation_routes_stream_and_say_when_to_retry(document: dict[str, Any]) -> None:
    ops = dict(operations(document))
    for name in EVENT_STREAMS:
        assert "text/event-stream" in ops[name]["responses"]["200"]["content"], name
        if name != "GET /api/events":  # the page's notifications: no generation
            assert {"429", "503"} <= set(ops[name]["responses"]), name
    completion = ops["POST /v1/chat/completions"]["responses"]["200"]["content"]
    assert completion["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletion"
    }


def test_bodies_carry_their_constraints(document: dict[str, Any]) -> None:
    """As msgspec checks them: Litestar's own translation drops `ge=0` and item constraints."""
    ops = dict(operations(document))
    body = ops["POST /v1/chat/completions"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ChatCompletionRequest"}
    schemas = document["components"]["schemas"]
    fields = schemas["ChatCompletionRequest"]["properties"]
    assert {"type": "number", "minimum": 0, "maximum": 2} in fields["temperature"]["anyOf"]
    assert fields["collections"]["items"] == {"type": "string", "maxLength": 200}
    assert schemas["NewUser"]["additionalProperties"] is False  # unknown fields are refused
    assert schemas["NewUser"]["properties"]["role"]["enum"] == ["admin", "employee"]
    for name, operation in ops.items():
        if "requestBody" in operation:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in schemas, name


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/api/keys/881503860934013878272"),
        ("GET", "/api/audit?before=881503860934013878272"),
        ("POST", f"/api/conversations/{'a' * 32}/messages/881503860934013878272/feedback"),
    ],
)
def test_an_id_beyond_sqlite_integers_is_a_400(
    world: tuple[Litestar, Services, str], method: str, path: str
) -> None:
    """Refused before any lookup: the fuzzer (tests/e2e/test_fuzz.py) found SQLite's
    OverflowError turning such ids into 500s."""
    app, _, key = world
    reply = TestClient(app).request(
        method, path, json={"rating": "up"}, headers={"Authorization": f"Bearer {key}"}
    )
    assert reply.status_code == 400, reply.text
    assert str(MAX_ROW_ID) in reply.json()["error"]["message"]


def test_the_schema_bounds_ids_as_the_server_does(document: dict[str, Any]) -> None:
    """Exactly, even as JSON's float: a fuzzer sends the largest id the schema allows."""
    (key_id,) = document["paths"]["/api/keys/{key_id}"]["delete"]["parameters"]
    assert key_id["schema"]["maximum"] == MAX_ROW_ID
    assert int(float(MAX_ROW_ID)) == MAX_ROW_ID
