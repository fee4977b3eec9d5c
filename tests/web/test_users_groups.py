"""Admins see each account's source and groups and put accounts in local groups (API, CLI)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from appliance.services import Services
from appliance.web.app import create_app
from appliance.wiring import build_services
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.web.test_auth import client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, Services]]:
    settings = make_settings(tmp_path_factory.mktemp("groups") / "data")
    services = build_services(settings)
    app = create_app(settings, services)
    with TestClient(app):
        yield app, services


def test_admins_see_sources_and_groups_and_change_local_groups(
    world: tuple[Litestar, Services],
) -> None:
    app, services = world
    accounts = services.accounts
    accounts.add("boss", ADMIN_PASSWORD, "admin")
    accounts.add("kim", ADMIN_PASSWORD)
    dana = accounts.users.upsert_external("ldap", "uuid-1", "dana", "employee", "d@example.com")
    accounts.users.set_groups(dana.id, ["engineering"], "ldap")
    admin, kim = (
        client(app, accounts.create_key("boss")[1]),
        client(app, accounts.create_key("kim")[1]),
    )
    listed = {u["name"]: u for u in admin.get("/api/users").json()}
    assert (listed["dana"]["source"], listed["dana"]["groups"]) == ("ldap", ["engineering"])
    assert (listed["kim"]["source"], listed["kim"]["groups"]) == ("local", [])
    changed = admin.patch("/api/users/dana/groups", json={"add": ["HR Reviewers"]})
    assert changed.json() == {"groups": ["engineering", "HR Reviewers"]}
    assert admin.patch("/api/users/kim/groups", json={"add": ["hr reviewers"]}).json() == {
        "groups": ["HR Reviewers"]  # one group, whatever the case typed
    }
    assert kim.patch("/api/users/kim/groups", json={"add": ["admins"]}).status_code == 403
    accounts.users.set_groups(dana.id, [], "ldap")  # the directory's next sync
    assert accounts.users.groups_of(dana.id) == ["HR Reviewers"]  # an admin's group stays
    gone = admin.patch("/api/users/kim/groups", json={"remove": ["HR Reviewers"]})
    assert gone.json() == {"groups": []}
    assert admin.patch("/api/users/kim/groups", json={"remove": ["nope"]}).status_code == 404
    assert admin.patch("/api/users/nobody/groups", json={"add": ["x"]}).status_code == 404
    assert admin.patch("/api/users/kim/groups", json={"add": [""]}).status_code == 400
    records = admin.get("/api/audit", params={"action": "user.groups"}).json()
    assert records


def test_the_cli_puts_users_in_groups(tmp_path: Path) -> None:
    env = {**os.environ, "APPLIANCE_DATA_DIR": str(tmp_path / "data")}

    def appliance(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "appliance", *args], input=stdin,
                              text=True, capture_output=True, env=env, timeout=60,
                              check=False)  # fmt: skip

    assert appliance("users", "add", "ann", stdin=ADMIN_PASSWORD + "\n").returncode == 0
    added = appliance("users", "groups", "ann", "--add", "finance", "--add", "hr")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == "ann: finance, hr"
    removed = appliance("users", "groups", "ann", "--remove", "hr")
    assert removed.stdout.strip() == "ann: finance"
    listed = appliance("users", "list").stdout
    assert "GROUPS" in listed
    assert "finance" in listed
    assert "local" in listed
    missing = appliance("users", "groups", "ann", "--remove", "nope")
    assert missing.returncode == 1
    assert "not in a group named 'nope'" in missing.stderr
