"""A real server signing people in with a real OpenLDAP: the session cookie, groups on the
users API, a wrong password, and local accounts beside the directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.directory.slapd import PASSWORDS, Slapd, running_slapd, server_settings
from tests.e2e.conftest import Server, running_server


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server


@pytest.fixture(scope="module")
def server(directory: Slapd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("server")
    env = {
        **server_settings(directory, Path(data)),
        "APPLIANCE_AUTH__LDAP__ADMIN_GROUPS": '["appliance-admins"]',
    }
    with running_server(Path(data), env) as srv:
        yield srv


def test_a_directory_user_signs_in_and_gets_a_session(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        wrong = browser.post("/api/session", json={"name": "carol", "password": "not it"})
        assert wrong.status_code == 401
        signed = browser.post(
            "/api/session", json={"name": "carol", "password": PASSWORDS["carol"]}
        )
        assert signed.status_code == 200, signed.text
        assert signed.json()["role"] == "employee"
        assert browser.get("/api/me").json()["name"] == "carol"
    listed = {u["name"]: u for u in server.http.get("/api/users").json()}
    assert listed["carol"]["source"] == "ldap"
    assert listed["carol"]["groups"] == ["engineering", "loop-a", "loop-b", "staff"]


def test_the_admin_group_makes_an_admin(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as browser:
        signed = browser.post("/api/session", json={"name": "bob", "password": PASSWORDS["bob"]})
        assert signed.json()["role"] == "admin"
        assert browser.get("/api/users").status_code == 200
