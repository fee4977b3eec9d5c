"""The perimeter through the real HTTP stack: nothing without signing in (walking the route
table, so a new route cannot slip through), roles, private conversations, CSRF, first admin."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from appliance.accounts.limits import SignInBrake
from appliance.accounts.service import Accounts
from appliance.config import WebSettings
from appliance.services import Services
from appliance.web.app import create_app
from appliance.wiring import build_services
from tests.conftest import ADMIN_PASSWORD, make_admin, make_settings
from tests.web.conftest import Client

PUBLIC = {
    ("GET", "/signin"),
    ("GET", "/setup"),
    ("GET", "/healthz"),
    ("POST", "/api/session"),
    ("POST", "/api/setup"),
    # the sign-in page's: what it offers (a directory, single sign-on), and the OIDC redirects
    ("GET", "/api/auth"),
    ("GET", "/auth/oidc/login"),
    ("GET", "/auth/oidc/callback"),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Litestar, Services]]:
    settings = make_settings(tmp_path_factory.mktemp("auth") / "data")
    services = build_services(settings)
    app = create_app(settings, services)
    with TestClient(app):  # runs the lifespan: the engine starts
        yield app, services


def client(app: Litestar, key: str | None = None) -> TestClient:  # type: ignore[type-arg]
    c = TestClient(app)
    if key:
        c.headers["Authorization"] = f"Bearer {key}"
    return c


def routes(app: Litestar) -> Iterator[tuple[str, str]]:
    for route in app.routes:
        for method in sorted(getattr(route, "methods", {"GET"}) - {"HEAD", "OPTIONS"}):
            path = re.sub(r"\{[^}]+:int\}", "1", route.path)
            path = re.sub(r"\{[^}]+\}", "x", path)
            yield method, "/static/app.js" if path.startswith("/static") else path


def test_first_admin_through_the_one_time_setup_link(world: tuple[Litestar, Services]) -> None:
    app, services = world
    token = services.accounts.setup_token()
    assert token
    anon = client(app)
    refused = anon.post(
        "/api/setup", json={"token": "guess", "name": "boss", "password": ADMIN_PASSWORD}
    )
    assert refused.status_code == 403
    made = anon.post(
        "/api/setup", json={"token": token, "name": "boss", "password": ADMIN_PASSWORD}
    )
    assert made.status_code == 200
    assert made.json()["role"] == "admin"
    assert services.accounts.setup_token() is None
    again = client(app).post(
        "/api/setup", json={"token": token, "name": "boss2", "password": ADMIN_PASSWORD}
    )
    assert again.status_code == 403


def test_every_route_refuses_anonymous_requests(world: tuple[Litestar, Services]) -> None:
    app, _ = world
    anon = client(app)
    checked = 0
    for method, path in routes(app):
        if (method, path) in PUBLIC or path.startswith("/static"):
            continue
        reply = anon.request(method, path, json={})
        assert reply.status_code == 401, (method, path, reply.status_code)
        assert reply.json()["error"]["code"] == "invalid_api_key"
        checked += 1
    assert checked >= 15
    assert anon.get("/static/app.js").status_code == 200
    assert anon.get("/healthz").status_code == 200
    page = anon.get("/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code in (302, 303, 307)
    assert page.headers["location"] == "/signin"


def test_employees_get_403_on_admin_routes(
    world: tuple[Litestar, Services], tmp_path: Path
) -> None:
    app, services = world
    key = services.accounts.create_key(
        services.accounts.add("emma", ADMIN_PASSWORD, "employee").name
    )[1]
    employee = client(app, key)
    assert employee.get("/api/users").status_code == 403
    assert employee.get("/users").status_code == 403
    assert employee.get("/api/audit").status_code == 403
    assert employee.get("/api/conversations").status_code == 200
    # the documents they may see, without who else may (tests/e2e/test_permissions.py)
    assert employee.get("/api/documents").status_code == 200


def test_a_conversation_is_private_to_its_user(world: tuple[Litestar, Services]) -> None:
    app, services = world
    services.accounts.add("anna", ADMIN_PASSWORD)
    services.accounts.add("ben", ADMIN_PASSWORD)
    anna = client(app, services.accounts.create_key("anna")[1])
    ben = client(app, services.accounts.create_key("ben")[1])
    conv = anna.post("/api/conversations", json={"title": "travel plans"}).json()
    url = f"/api/conversations/{conv['id']}"
    assert ben.get(url).status_code == 404
    assert ben.post(f"{url}/messages", json={"content": "hi", "max_tokens": 2}).status_code == 404
    assert ben.post(f"{url}/regenerate", json={}).status_code == 404
    assert ben.patch(url, json={"title": "mine now"}).status_code == 404
    assert ben.delete(url).status_code == 404
    assert conv["id"] not in str(ben.get("/api/conversations").json())
    assert anna.get(url).json()["title"] == "travel plans"


def test_sessions_need_the_csrf_token_and_end_at_sign_out(world: tuple[Litestar, Services]) -> None:
    app, services = world
    services.accounts.add("carl", ADMIN_PASSWORD)
    page = client(app)
    assert (
        page.post("/api/session", json={"name": "carl", "password": "wrong one!"}).status_code
        == 401
    )
    signed = page.post("/api/session", json={"name": "carl", "password": ADMIN_PASSWORD})
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain http here; over TLS it is set
    csrf = signed.json()["csrf"]
    assert page.get("/api/me").json()["name"] == "carl"
    assert page.post("/api/conversations", json={}).status_code == 403  # no CSRF token
    assert (
        page.post("/api/conversations", json={}, headers={"X-CSRF-Token": csrf}).status_code == 201
    )
    assert page.delete("/api/session", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert page.get("/api/me").status_code == 401


def test_no_response_ever_carries_a_password_hash(
    world: tuple[Litestar, Services], tmp_path: Path
) -> None:
    app, services = world
    admin = client(app, make_admin(tmp_path, "unused"))  # another db: this key is unknown here
    assert admin.get("/api/me").status_code == 401
    key = services.accounts.create_key("boss")[1]
    admin = client(app, key)
    bodies: list[Any] = [
        admin.get(path).text for method, path in routes(app)
        if method == "GET" and "{" not in path and path != "/api/events"  # endless: the page's
    ]
    assert all("$argon2" not in body for body in bodies)


def test_sign_ins_and_chats_are_audited_for_admins_only(world: tuple[Litestar, Services]) -> None:
    app, services = world
    services.accounts.add("dora", ADMIN_PASSWORD)
    page = client(app)
    page.post("/api/session", json={"name": "dora", "password": "wrong password"})
    page.post("/api/session", json={"name": "dora", "password": ADMIN_PASSWORD})
    dora = client(app, services.accounts.create_key("dora")[1])
    dora.post(
        "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
    )
    assert dora.get("/api/audit").status_code == 403
    admin = client(app, services.accounts.create_key("boss")[1])
    records = admin.get("/api/audit", params={"actor": "dora"}).json()
    assert [r["action"] for r in records] == ["chat", "key.use", "sign_in"]
    failed = admin.get("/api/audit", params={"action": "sign_in_failed"}).json()
    assert failed[0]["target"] == "dora"
    assert "Hi" not in str(records)  # who asked, never what
    assert admin.get("/api/audit/verify").json()["intact"] is True


def test_data_rights_export_delete_all_and_admin_erase(world: tuple[Litestar, Services]) -> None:
    app, services = world
    services.accounts.add("fay", ADMIN_PASSWORD)
    services.accounts.add("gus", ADMIN_PASSWORD)
    fay = client(app, services.accounts.create_key("fay")[1])
    gus = client(app, services.accounts.create_key("gus")[1])
    mine = [
        fay.post("/api/conversations", json={"title": f"plan {n}"}).json()["id"] for n in range(2)
    ]
    theirs = gus.post("/api/conversations", json={"title": "gus"}).json()["id"]
    export = fay.get("/api/conversations/export")
    assert export.status_code == 200
    assert "attachment" in export.headers["content-disposition"]
    assert sorted(c["id"] for c in export.json()["conversations"]) == sorted(mine)
    assert fay.delete("/api/conversations").json() == {"deleted": 2}
    assert fay.get("/api/conversations").json() == []
    assert gus.get(f"/api/conversations/{theirs}").status_code == 200
    assert gus.delete("/api/users/fay/data").status_code == 403  # admins only
    admin = client(app, services.accounts.create_key("boss")[1])
    assert admin.delete("/api/users/gus/data").json() == {"deleted": 1}
    assert gus.get(f"/api/conversations/{theirs}").status_code == 404
    assert "$argon2" not in admin.get("/api/users").text


def test_retention_deletes_old_conversations(
    world: tuple[Litestar, Services], tmp_path: Path
) -> None:
    app, services = world
    services.accounts.add("hal", ADMIN_PASSWORD)
    hal = client(app, services.accounts.create_key("hal")[1])
    old = hal.post("/api/conversations", json={"title": "old"}).json()["id"]
    new = hal.post("/api/conversations", json={"title": "new"}).json()["id"]
    store = services.conversations.store
    with store._db.transaction() as tx:
        tx.execute(
            "UPDATE conversations SET updated_at = updated_at - 40 * 86400 WHERE id = ?", (old,)
        )
    assert services.conversations.purge(30) >= 1
    assert hal.get(f"/api/conversations/{old}").status_code == 404
    assert hal.get(f"/api/conversations/{new}").status_code == 200


def test_feedback_on_answers_reaches_the_admins_list(world: tuple[Litestar, Services]) -> None:
    app, services = world
    services.accounts.add("ivy", ADMIN_PASSWORD)
    ivy = client(app, services.accounts.create_key("ivy")[1])
    conv = ivy.post("/api/conversations", json={}).json()["id"]
    with ivy.stream(
        "POST",
        f"/api/conversations/{conv}/messages",
        json={"content": "What is the capital of France?", "max_tokens": 4},
    ) as r:
        r.read()
    messages = ivy.get(f"/api/conversations/{conv}").json()["messages"]
    question, answer = messages[0]["id"], messages[1]["id"]
    url = f"/api/conversations/{conv}/messages"
    comment = {"rating": "down", "comment": "Wrong; ask maria@example.com"}
    assert ivy.post(f"{url}/{answer}/feedback", json=comment).status_code == 200
    assert ivy.post(f"{url}/{question}/feedback", json=comment).status_code == 404  # not an answer
    other = client(app, services.accounts.create_key("boss")[1])
    assert other.post(f"{url}/{answer}/feedback", json=comment).status_code == 404  # not theirs
    assert ivy.get("/api/feedback").status_code == 403
    listed = other.get("/api/feedback").json()
    mine = [f for f in listed if f["message_id"] == answer]
    assert mine[0]["question"].startswith("What is the capital of")  # as stored: placeholders
    assert mine[0]["user"] == "ivy"
    assert "maria@example.com" not in mine[0]["comment"]


def test_users_manage_their_own_keys_on_the_page_api(world: tuple[Litestar, Services]) -> None:
    app, services = world
    services.accounts.add("jon", ADMIN_PASSWORD)
    page = client(app)
    csrf = page.post("/api/session", json={"name": "jon", "password": ADMIN_PASSWORD}).json()[
        "csrf"
    ]
    made = page.post("/api/keys", json={"name": "laptop"}, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201
    secret, key_id = made.json()["secret"], made.json()["key"]["id"]
    assert client(app, secret).get("/api/me").json()["name"] == "jon"
    listed = page.get("/api/keys").json()
    assert secret not in str(listed)
    assert [k["name"] for k in listed] == ["laptop"]
    boss = client(app, services.accounts.create_key("boss")[1])
    assert boss.delete(f"/api/keys/{key_id}").status_code == 404  # not boss's key
    assert page.delete(f"/api/keys/{key_id}", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert client(app, secret).get("/api/me").status_code == 401


def test_admins_add_disable_and_enable_users(world: tuple[Litestar, Services]) -> None:
    app, services = world
    admin = client(app, services.accounts.create_key("boss")[1])
    made = admin.post("/api/users", json={"name": "kim", "password": ADMIN_PASSWORD})
    assert made.status_code == 201
    assert made.json()["role"] == "employee"
    assert "password" not in made.text
    assert (
        admin.post("/api/users", json={"name": "kim", "password": ADMIN_PASSWORD}).status_code
        == 409
    )
    kim = client(app, services.accounts.create_key("kim")[1])
    assert kim.get("/api/users").status_code == 403
    assert admin.patch("/api/users/kim", json={"disabled": True}).json()["disabled"] is True
    assert kim.get("/api/me").status_code == 401  # a disabled user's keys stop working
    assert admin.patch("/api/users/kim", json={"disabled": False}).status_code == 200
    assert kim.get("/api/me").status_code == 200
    assert admin.patch("/api/users/boss", json={"disabled": True}).status_code == 409
    records = admin.get("/api/audit", params={"action": "key.use", "actor": "kim"}).json()
    assert records  # the key's use is audited


def test_sign_in_from_another_site_and_stale_sessions_are_refused(
    world: tuple[Litestar, Services],
) -> None:
    app, services = world
    services.accounts.add("lee", ADMIN_PASSWORD)
    body = f'{{"name":"lee","password":"{ADMIN_PASSWORD}"}}'
    forged = client(app).post("/api/session", headers={"Content-Type": "text/plain"}, content=body)
    assert forged.status_code == 403  # a form on another site cannot send JSON
    page = client(app)
    page.post("/api/session", json={"name": "lee", "password": ADMIN_PASSWORD})
    assert page.get("/api/me").status_code == 200
    services.accounts.set_password("lee", "a brand new password")
    assert page.get("/api/me").status_code == 401  # a new password ends old sessions
    page.post("/api/session", json={"name": "lee", "password": "a brand new password"})
    services.accounts.set_disabled("lee", True)
    services.accounts.set_disabled("lee", False)
    assert page.get("/api/me").status_code == 401  # so does disabling, for good
    client(app).post("/api/session", json={"name": "my secret pw", "password": "x" * 10})
    admin = client(app, services.accounts.create_key("boss")[1])
    failed = admin.get("/api/audit", params={"action": "sign_in_failed"}).json()
    assert failed[0]["target"] == "(unknown name)"


def rebuilt(world: tuple[Litestar, Services], tmp_path: Path, **web: Any) -> Litestar:
    """The same services under other web settings, with a brake whose clock stands still (its
    waits never run out within a test) and two free failures per account, eight per address."""
    _, services = world
    accounts = Accounts(services.accounts.users, SignInBrake(free=2, clock=lambda: 1000.0))
    settings = msgspec.structs.replace(make_settings(tmp_path), web=WebSettings(**web))
    changed = dataclasses.replace(
        services, accounts=accounts, secure_cookies=settings.web.secure_cookies
    )
    return create_app(settings, changed)


def behind(app: Litestar, peer: str) -> Client:
    """A client whose requests come from the address `peer` (a proxy, or a client)."""

    async def from_peer(scope: Any, receive: Any, send: Any) -> None:
        scope["client"] = (peer, 50000)
        await app(scope, receive, send)

    return TestClient(from_peer)


def sign_in(c: Client, name: str, password: str, via: str | None = None) -> int:
    headers = {"X-Forwarded-For": via} if via else {}
    return c.post(
        "/api/session", json={"name": name, "password": password}, headers=headers
    ).status_code


def test_clients_behind_a_trusted_proxy_are_counted_apart(
    world: tuple[Litestar, Services], tmp_path: Path
) -> None:
    app = rebuilt(world, tmp_path, trusted_proxies=["10.9.0.0/16"])
    world[1].accounts.add("otto", ADMIN_PASSWORD)
    proxy = behind(app, "10.9.0.1")
    for n in range(8):  # one client sprays names (the proxy adds its address on the right)
        assert sign_in(proxy, f"nobody{n}", "Summer2026!", "6.6.6.6, 203.0.113.7") == 401
    assert sign_in(proxy, "otto", ADMIN_PASSWORD, "203.0.113.7") == 429
    assert sign_in(proxy, "otto", ADMIN_PASSWORD, "1.2.3.4, 203.0.113.8") == 200  # another one


def test_an_untrusted_peers_forwarded_for_is_ignored(
    world: tuple[Litestar, Services], tmp_path: Path
) -> None:
    app = rebuilt(world, tmp_path, trusted_proxies=["10.9.0.0/16"])
    world[1].accounts.add("pia", ADMIN_PASSWORD)
    peer = behind(app, "198.51.100.9")
    for n in range(8):  # a new made-up address with each try: still one peer
        assert sign_in(peer, f"nobody{n}", "Summer2026!", f"203.0.113.{n}") == 401
    assert sign_in(peer, "pia", ADMIN_PASSWORD, "203.0.113.99") == 429
    assert sign_in(behind(app, "198.51.100.10"), "pia", ADMIN_PASSWORD) == 200
    # nor does its X-Forwarded-Proto make the cookie a TLS one
    fake = behind(app, "198.51.100.11").post(
        "/api/session",
        headers={"X-Forwarded-Proto": "https"},
        json={"name": "pia", "password": ADMIN_PASSWORD},
    )
    assert fake.headers["set-cookie"].startswith("appliance_session=")
    assert "Secure" not in fake.headers["set-cookie"]
    tls = behind(app, "10.9.0.1").post(
        "/api/session",
        headers={"X-Forwarded-Proto": "https"},
        json={"name": "pia", "password": ADMIN_PASSWORD},
    )
    assert tls.headers["set-cookie"].startswith("__Host-appliance_session=")


def test_over_tls_the_session_cookie_is_host_prefixed(
    world: tuple[Litestar, Services], tmp_path: Path
) -> None:
    app, services = world
    services.accounts.add("quin", ADMIN_PASSWORD)
    page = client(app)
    page.base_url = "https://testserver.local"  # type: ignore[assignment]
    signed = page.post("/api/session", json={"name": "quin", "password": ADMIN_PASSWORD})
    cookie = signed.headers["set-cookie"]
    token = cookie.split(";")[0].split("=", 1)[1]
    assert cookie.startswith("__Host-appliance_session=")
    assert "Secure" in cookie
    assert "Path=/" in cookie
    assert "domain" not in cookie.lower()
    assert "Strict-Transport-Security" not in signed.headers  # not without web.secure_cookies
    assert page.get("/api/me").json()["name"] == "quin"
    plain = client(app)  # the same token under the plain name, over https: no session
    plain.base_url = "https://testserver.local"  # type: ignore[assignment]
    assert plain.get("/api/me", headers={"Cookie": f"appliance_session={token}"}).status_code == 401
    out = page.delete("/api/session", headers={"X-CSRF-Token": signed.json()["csrf"]})
    gone = out.headers["set-cookie"]
    assert gone.startswith("__Host-appliance_session=")
    assert "Max-Age=0" in gone
    assert "Secure" in gone  # else browsers would not let it replace the Secure cookie


def test_with_secure_cookies_hsts_is_sent_and_only_the_host_cookie_counts(
    world: tuple[Litestar, Services], tmp_path: Path
) -> None:
    app = rebuilt(world, tmp_path, secure_cookies=True)
    world[1].accounts.add("rita", ADMIN_PASSWORD)
    page = client(app)  # plain http to the app: TLS ends at a proxy in front
    signed = page.post("/api/session", json={"name": "rita", "password": ADMIN_PASSWORD})
    assert signed.headers["strict-transport-security"] == "max-age=31536000"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith("__Host-appliance_session=")
    assert "Secure" in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    me = client(app)
    assert (
        me.get("/api/me", headers={"Cookie": f"__Host-appliance_session={token}"}).json()["name"]
        == "rita"
    )
    assert me.get("/api/me", headers={"Cookie": f"appliance_session={token}"}).status_code == 401
    assert client(world[0]).get("/healthz").headers.get("strict-transport-security") is None
