"""Sign-in with a real OpenID provider (oidc-provider-mock on loopback): the whole code flow
with PKCE through the app, and refused states, nonces and expired ID tokens."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from oidc_provider_mock import User, run_server_in_thread

from appliance.accounts.oidc import OidcSignIn
from appliance.config import AuthSettings, OidcSettings
from appliance.errors import ApplianceError, Unauthorized
from appliance.services import Services
from appliance.web.app import create_app
from appliance.wiring import build_services
from tests.conftest import make_settings

CALLBACK = "http://testserver.local/auth/oidc/callback"
ERIN = User(
    sub="erin-sub",
    claims={
        "preferred_username": "erin",
        "email": "erin@example.com",
        "groups": ["HR", "appliance-admins"],
    },
)


def issuer_of(port: int) -> str:
    return f"http://localhost:{port}"


SECRET: list[str] = []  # the client secret's file, made by the provider fixture


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("oidc-secret") / "client-secret"
    path.write_text("client-secret\n")
    SECRET[:] = [str(path)]
    with run_server_in_thread(user_claims=[ERIN]) as server:
        yield issuer_of(server.server_port)


def oidc(issuer: str, **extra: object) -> OidcSettings:
    return msgspec.convert(
        {
            "issuer": issuer,
            "client_id": "appliance",
            "admin_groups": ["appliance-admins"],
            "client_secret_file": SECRET[0] if SECRET else "",
            **extra,
        },
        OidcSettings,
    )


def at_provider(url: str, sub: str = "erin-sub") -> tuple[str, str]:
    """The provider's sign-in form, answered as `sub`: the (state, code) it sends back."""
    with httpx.Client(timeout=10, trust_env=False) as browser:
        assert browser.get(url).status_code == 200
        back = browser.post(url, data={"sub": sub})
    assert back.status_code == 302, back.text
    query = parse_qs(urlsplit(back.headers["location"]).query)
    return query["state"][0], query["code"][0]


@pytest.fixture(scope="module")
def world(
    provider: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Litestar, Services]]:
    settings = make_settings(tmp_path_factory.mktemp("oidc") / "data")
    settings = msgspec.structs.replace(settings, auth=AuthSettings(oidc=oidc(provider)))
    services = build_services(settings)
    app = create_app(settings, services)
    with TestClient(app):
        yield app, services


def test_the_code_flow_signs_in_and_keeps_groups(world: tuple[Litestar, Services]) -> None:
    app, services = world
    browser = TestClient(app)
    assert browser.get("/api/auth").json() == {
        "local": True,
        "password": True,
        "sso": "single sign-on",
    }
    sent = browser.get("/auth/oidc/login", follow_redirects=False)
    assert sent.status_code == 302
    where = parse_qs(urlsplit(sent.headers["location"]).query)
    assert where["code_challenge_method"] == ["S256"]
    assert where["redirect_uri"] == [CALLBACK]
    state, code = at_provider(sent.headers["location"])
    back = browser.get(
        "/auth/oidc/callback", params={"state": state, "code": code}, follow_redirects=False
    )
    assert back.status_code == 302
    assert back.headers["location"] == "/"
    me = browser.get("/api/me").json()
    assert (me["name"], me["role"]) == ("erin", "admin")
    user = services.accounts.users.by_name("erin")
    assert (user.source, user.email) == ("oidc", "erin@example.com")
    assert services.accounts.users.groups_of(user.id) == ["appliance-admins", "HR"]
    replayed = TestClient(app).get("/auth/oidc/callback", params={"state": state, "code": code})
    assert replayed.status_code == 401  # a state is good for one return
    csrf = {"X-CSRF-Token": me["csrf"]}
    assert browser.delete("/api/session", headers=csrf).status_code == 200
    assert browser.get("/api/me").status_code == 401  # sign-out ends the local session


def test_a_refusal_at_the_provider_goes_back_to_the_sign_in_page(
    world: tuple[Litestar, Services],
) -> None:
    app, _ = world
    page = TestClient(app).get(
        "/auth/oidc/callback",
        params={"error": "access_denied"},
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert page.status_code == 302
    assert page.headers["location"].startswith("/signin?error=")


def test_an_unknown_state_is_refused(provider: str) -> None:
    sso = OidcSignIn(oidc(provider))
    at_provider(sso.begin(CALLBACK))
    with pytest.raises(Unauthorized, match="unknown or took too long"):
        sso.finish("made-up", "made-up")


def test_another_nonce_is_refused(provider: str) -> None:
    sso = OidcSignIn(oidc(provider))
    state, code = at_provider(sso.begin(CALLBACK))
    when, _, verifier, uri = sso._pending[state]
    sso._pending[state] = (when, "another nonce", verifier, uri)
    with pytest.raises(Unauthorized, match="nonce"):
        sso.finish(state, code)


def test_a_stale_sign_in_is_refused(provider: str) -> None:
    sso = OidcSignIn(oidc(provider))
    state, code = at_provider(sso.begin(CALLBACK))
    when, nonce, verifier, uri = sso._pending[state]
    sso._pending[state] = (when - 3600, nonce, verifier, uri)
    with pytest.raises(Unauthorized, match="took too long"):
        sso.finish(state, code)


def test_an_expired_id_token_is_refused(provider: str) -> None:
    with run_server_in_thread(
        user_claims=[ERIN], access_token_max_age=timedelta(seconds=-120)
    ) as server:
        sso = OidcSignIn(oidc(issuer_of(server.server_port)))
        state, code = at_provider(sso.begin(CALLBACK))
        with pytest.raises(Unauthorized, match="exp"):
            sso.finish(state, code)


def test_a_token_for_another_audience_is_refused(provider: str) -> None:
    sso = OidcSignIn(oidc(provider, client_id="someone-else"))
    other = OidcSignIn(oidc(provider))
    state, code = at_provider(sso.begin(CALLBACK))
    token = sso._client().fetch_token(
        sso._discovery()["token_endpoint"],
        code=code,
        redirect_uri=CALLBACK,
        code_verifier=sso._pending[state][2],
    )
    with pytest.raises(Unauthorized, match="aud"):
        other.claims(token["id_token"], sso._pending[state][1])


def test_an_issuer_that_names_another_is_refused(provider: str) -> None:
    sso = OidcSignIn(oidc(provider + "/"))  # discovery found, the issuer it names differs
    with pytest.raises(ApplianceError, match=r"auth\.oidc\.issuer"):
        sso.begin(CALLBACK)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"issuer": "http://sso.example.com"}, "auth.oidc.issuer"),
        ({"client_id": ""}, "auth.oidc.client_id"),
        ({"client_secret_file": "/nonexistent"}, "auth.oidc.client_secret_file"),
    ],
)
def test_bad_settings_name_the_setting(
    provider: str, change: dict[str, object], named: str
) -> None:
    with pytest.raises(ApplianceError, match=named):
        OidcSignIn(oidc(**{"issuer": "http://localhost:1", **change}))  # type: ignore[arg-type]
