"""Signing in and out (a password, or the OIDC provider's round trip), the first admin on a
fresh box, and who am I (for the page)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import QueryParameter
from litestar.response import Redirect
from msgspec import Meta

from appliance.accounts.directory import SingleSignOn
from appliance.accounts.service import SESSION_TTL_S
from appliance.errors import ApplianceError, NotFound, Unauthorized
from appliance.services import Services
from appliance.web.auth import PUBLIC, SECURE_SESSION_COOKIE, Identity, session_cookie
from appliance.web.deps import JSONBody, ServicesDep


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class FirstAdmin(Credentials, forbid_unknown_fields=True):
    token: Annotated[str, Meta(min_length=1, max_length=200)]


class Me(msgspec.Struct):
    name: str
    role: str
    csrf: str | None  # send it as X-CSRF-Token with every POST, PATCH and DELETE
    expert: bool = False  # answers questions handed to people (the Experts page)


@post("/api/session", opt=PUBLIC, status_code=200)
async def sign_in(request: Request[Any, Any, Any], data: JSONBody[Credentials],
                  services: ServicesDep) -> Response[Me]:  # fmt: skip
    """Name and password give a session cookie (HttpOnly, SameSite=Lax; over TLS Secure and
    named `__Host-appliance_session`)."""
    # argon2 takes tens of milliseconds on purpose: not on the event loop
    return await asyncio.to_thread(_signed_in, request, services, data.name, data.password)


class SignInOptions(msgspec.Struct):
    local: bool  # the password form signs in local accounts (auth.local)
    password: bool  # the password form is shown: local accounts, or LDAP's
    sso: str | None  # the "Sign in with …" button's name (auth.oidc.display_name), or none


@get("/api/auth", opt=PUBLIC)
async def sign_in_options(services: ServicesDep) -> SignInOptions:
    """What the sign-in page offers: the password form, a provider's button, or both."""
    sso = services.sso
    password = services.local_sign_in or services.accounts.directory is not None
    return SignInOptions(services.local_sign_in, password, sso.display_name if sso else None)


@get("/auth/oidc/login", opt=PUBLIC, status_code=302)
async def oidc_login(request: Request[Any, Any, Any], services: ServicesDep) -> Redirect:
    """Sends the browser to the OIDC provider (authorization code with PKCE)."""
    sso = _sso(services)
    callback = str(request.base_url).rstrip("/") + "/auth/oidc/callback"
    return Redirect(await asyncio.to_thread(sso.begin, callback))


@get("/auth/oidc/callback", opt=PUBLIC, status_code=302)
async def oidc_callback(
    request: Request[Any, Any, Any],
    services: ServicesDep,
    oauth_state: Annotated[str, QueryParameter(name="state", max_length=512)] = "",
    code: Annotated[str, QueryParameter(max_length=4096)] = "",
    error: Annotated[str, QueryParameter(max_length=512)] = "",
) -> Response[Any]:
    """Where the provider sends the browser back: a session cookie, and on to the chat."""
    try:
        if error or not oauth_state or not code:
            raise Unauthorized(f"the provider did not sign you in ({error or 'no code'})")
        return await asyncio.to_thread(_provider_signed_in, request, services, oauth_state, code)
    except ApplianceError as exc:
        if "text/html" not in request.headers.get("accept", ""):
            raise
        return Redirect("/signin?error=" + quote(str(exc)))


@post("/api/setup", opt=PUBLIC, status_code=200)
async def first_admin(request: Request[Any, Any, Any], data: JSONBody[FirstAdmin],
                      services: ServicesDep) -> Response[Me]:  # fmt: skip
    """Creates the first admin with the one-time token from the server's log, and signs in."""
    await asyncio.to_thread(services.accounts.create_first_admin, data.token, data.name,
                            data.password)  # fmt: skip
    await asyncio.to_thread(services.audit.record, "-", "user.add", data.name,
                            "the first admin, by the set-up link")  # fmt: skip
    return await asyncio.to_thread(_signed_in, request, services, data.name, data.password)


@delete("/api/session", status_code=200)
async def sign_out(request: Request[Any, Any, Any],
                   services: ServicesDep) -> Response[dict[str, str]]:  # fmt: skip
    identity: Identity = request.state.identity
    if identity.session:
        await asyncio.to_thread(_signed_out, services, identity)  # SQLite: not on the loop
    response = Response({"status": "signed out"})
    _set_cookie(response, request, services, "", max_age=0)
    return response


@get("/api/me")
async def me(request: Request[Any, Any, Any], services: ServicesDep) -> Me:
    identity: Identity = request.state.identity
    expert = services.handoffs.is_expert(identity.user)
    return Me(identity.user.name, identity.user.role, identity.csrf, expert)


def _signed_out(services: Services, identity: Identity) -> None:
    if identity.session:
        services.accounts.sign_out(identity.session)
        services.audit.record(identity.user.name, "sign_out", identity.user.name)


def _signed_in(request: Request[Any, Any, Any], services: Services, name: str,
               password: str) -> Response[Me]:  # fmt: skip
    address = request.client.host if request.client else ""
    found = services.accounts.sign_in(name, password, address)
    if found is None:
        known = _is_account(services, name)
        # a name that is no account may be a password typed in the wrong field: not kept
        services.audit.record("-", "sign_in_failed", name if known else "(unknown name)",
                              address=address)  # fmt: skip
        raise Unauthorized("wrong name or password")
    user, token, csrf = found
    services.audit.record(user.name, "sign_in", user.name, address=address)
    response = Response(Me(user.name, user.role, csrf))
    _set_cookie(response, request, services, token, max_age=SESSION_TTL_S)
    return response


def _sso(services: Services) -> SingleSignOn:
    if services.sso is None:
        raise NotFound("OIDC sign-in is not set up (auth.oidc.issuer)")
    return services.sso


def _provider_signed_in(request: Request[Any, Any, Any], services: Services, state: str,
                        code: str) -> Response[Any]:  # fmt: skip
    sso = _sso(services)
    address = request.client.host if request.client else ""
    account = sso.finish(state, code)
    found = services.accounts.sign_in_account(sso.source, account, address)
    if found is None:
        services.audit.record("-", "sign_in_failed", account.name, "disabled", address=address)
        raise Unauthorized(f"the account {account.name!r} is disabled here; ask an admin")
    user, token, _ = found
    services.audit.record(user.name, "sign_in", user.name, sso.source, address=address)
    response: Response[Any] = Redirect("/")
    _set_cookie(response, request, services, token, max_age=SESSION_TTL_S)
    return response


def _is_account(services: Services, name: str) -> bool:
    """One indexed lookup (names compare without case), not a read of every user."""
    try:
        services.accounts.users.by_name(name)
    except NotFound:
        return False
    return True


def _set_cookie(
    response: Response[Any],
    request: Request[Any, Any, Any],
    services: Services,
    token: str,
    max_age: int,
) -> None:
    """The session cookie, or its deletion (max_age 0: a `__Host-` one must be Secure even
    then, or browsers refuse the change). Path / and no Domain, as `__Host-` requires."""
    name = session_cookie(request, services.secure_cookies)
    response.set_cookie(
        name,
        token,
        path="/",
        httponly=True,
        samesite="lax",
        secure=name == SECURE_SESSION_COOKIE,
        max_age=max_age,
        expires=0 if max_age == 0 else None,
    )
