"""API keys through the real HTTP stack and the command line: made with a session only, with an
expiry, and revoked all at once by a new password."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from appliance.cli import main
from appliance.config import Settings
from appliance.services import Services
from appliance.store.db import Database
from appliance.web.app import create_app
from appliance.wiring import build_services
from tests.conftest import ADMIN_PASSWORD, make_settings
from tests.web.conftest import Client

World = tuple[Litestar, Services, Settings]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = make_settings(tmp_path_factory.mktemp("keys") / "data")
    services = build_services(settings)
    app = create_app(settings, services)
    with TestClient(app):
        yield app, services, settings


def signed_in(app: Litestar, name: str, password: str = ADMIN_PASSWORD) -> Client:
    page = TestClient(app)
    reply = page.post("/api/session", json={"name": name, "password": password})
    assert reply.status_code == 200, reply.text
    page.headers["X-CSRF-Token"] = reply.json()["csrf"]
    return page


def with_key(app: Litestar, secret: str) -> Client:
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {secret}"
    return client


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings,
        *args: str, stdin: str = "") -> tuple[int, str, str]:  # fmt: skip
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(settings.data_path))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    done = main(list(args))
    out = capsys.readouterr()
    return done, out.out, out.err


def test_an_api_key_cannot_create_more_keys(world: World) -> None:
    app, services, _ = world
    services.accounts.add("ann", ADMIN_PASSWORD)
    _, secret = services.accounts.create_key("ann")  # as `appliance keys create` does
    key = with_key(app, secret)
    refused = key.post("/api/keys", json={"name": "another"})
    assert refused.status_code == 403
    assert "an API key cannot create API keys" in refused.json()["error"]["message"]
    assert key.get("/api/keys").status_code == 200  # listing its user's keys is fine
    made = signed_in(app, "ann").post("/api/keys", json={"name": "laptop"})
    assert made.status_code == 201
    assert [k["name"] for k in key.get("/api/keys").json()] == ["api", "laptop"]


def test_keys_can_expire_and_an_expired_key_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app, services, settings = world
    services.accounts.add("bea", ADMIN_PASSWORD)
    page = signed_in(app, "bea")
    before = time.time()
    made = page.post("/api/keys", json={"name": "a day", "expires_in_days": 1}).json()
    assert before + 86400 <= made["key"]["expires_at"] <= time.time() + 86400
    assert with_key(app, made["secret"]).get("/api/me").json()["name"] == "bea"
    at = time.time() + 3600
    later = page.post("/api/keys", json={"name": "an hour", "expires_at": at}).json()
    assert later["key"]["expires_at"] == at
    db = Database(settings.data_path / "appliance.db")
    with db.transaction() as tx:  # an hour on: past its expiry
        tx.execute("UPDATE api_keys SET expires_at = ? WHERE id = ?",
                   (time.time() - 1, later["key"]["id"]))  # fmt: skip
    db.close()
    assert with_key(app, later["secret"]).get("/api/me").status_code == 401
    assert with_key(app, made["secret"]).get("/api/me").status_code == 200
    listed = {k["name"]: k for k in page.get("/api/keys").json()}
    assert listed["an hour"]["expires_at"] < time.time()  # the page shows it expired
    for wrong in ({"expires_at": time.time() - 60}, {"expires_in_days": 0},
                  {"expires_in_days": 1, "expires_at": time.time() + 60}):  # fmt: skip
        reply = page.post("/api/keys", json={"name": "bad", **wrong})
        assert reply.status_code == 400, wrong
        assert "expires_" in reply.json()["error"]["message"], wrong
    done, out, _ = cli(monkeypatch, capsys, settings, "keys", "list", "bea")
    assert done == 0
    assert "EXPIRES" in out
    assert "expired" in next(line for line in out.splitlines() if "an hour" in line)


def test_a_new_password_revokes_every_key(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app, services, settings = world
    services.accounts.add("cal", ADMIN_PASSWORD)
    page = signed_in(app, "cal")
    from_page = page.post("/api/keys", json={"name": "page"}).json()["secret"]
    done, from_cli, err = cli(monkeypatch, capsys, settings, "keys", "create", "cal", "--days", "3")
    assert done == 0
    assert "expires" in err
    keys = [with_key(app, secret) for secret in (from_page, from_cli.strip())]
    assert [k.get("/api/me").status_code for k in keys] == [200, 200]
    new = "a brand new password"
    done, out, _ = cli(monkeypatch, capsys, settings, "users", "passwd", "cal", stdin=new + "\n")
    assert done == 0
    assert "2 API keys revoked" in out
    assert [k.get("/api/me").status_code for k in keys] == [401, 401]
    assert page.get("/api/me").status_code == 401  # and the session ended
    listed = signed_in(app, "cal", new).get("/api/keys").json()
    assert all(k["revoked_at"] for k in listed)
    done, out, _ = cli(monkeypatch, capsys, settings, "keys", "list", "cal")
    assert out.count("revoked") == 2


def test_the_keys_page_offers_an_expiry_and_warns_of_password_changes(world: World) -> None:
    app, services, _ = world
    services.accounts.add("dee", ADMIN_PASSWORD)
    html = signed_in(app, "dee").get("/keys", headers={"Accept": "text/html"}).text
    assert '<select id="expires">' in html
    assert "A new password revokes all your keys" in html
