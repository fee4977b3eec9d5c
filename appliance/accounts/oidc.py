"""OpenID Connect sign-in (authlib's httpx client, joserfc): authorization code with PKCE, the
ID token checked (signature by the provider's cached keys, issuer, audience, expiry, nonce)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2 import OAuth2Error
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from appliance.accounts.directory import DirectoryAccount, in_admin_groups
from appliance.config import OidcSettings
from appliance.errors import ApplianceError, DirectoryUnavailable, Unauthorized
from appliance.store.users import Source

log = logging.getLogger(__name__)
PENDING_S = 600  # a sign-in started must come back within 10 minutes
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]  # never none/HS
_MOST_PENDING = 10_000


class OidcSignIn:
    source: Source = "oidc"

    def __init__(self, settings: OidcSettings) -> None:
        self._s = checked(settings)
        self.display_name = settings.display_name
        self._secret = _secret(settings.client_secret_file) if settings.client_secret_file else None
        self._pending: dict[str, tuple[float, str, str, str]] = {}  # state: when, nonce, ...
        self._config: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    def begin(self, redirect_uri: str) -> str:
        """The provider's authorization URL for a new sign-in (state, nonce, PKCE kept here)."""
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        with self._client() as client:
            url, _ = client.create_authorization_url(
                self._discovery()["authorization_endpoint"],
                redirect_uri=redirect_uri,
                state=state,
                nonce=nonce,
                code_verifier=verifier,
            )
        with self._lock:
            now = time.monotonic()
            for old in [k for k, v in self._pending.items() if now - v[0] > PENDING_S]:
                del self._pending[old]
            if len(self._pending) >= _MOST_PENDING:
                self._pending.pop(next(iter(self._pending)))
            self._pending[state] = (now, nonce, verifier, redirect_uri)
        return str(url)

    def finish(self, state: str, code: str) -> DirectoryAccount:
        """The account the provider vouches for, from the callback's state and code."""
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or time.monotonic() - pending[0] > PENDING_S:
            raise Unauthorized("this sign-in is unknown or took too long; sign in again")
        _, nonce, verifier, redirect_uri = pending
        with self._client() as client:
            try:
                token = client.fetch_token(
                    self._discovery()["token_endpoint"],
                    code=code,
                    redirect_uri=redirect_uri,
                    code_verifier=verifier,
                )
            except (OAuth2Error, OAuthError) as exc:
                raise Unauthorized(f"the provider refused the sign-in: {exc}") from None
            except httpx.HTTPError as exc:
                raise self._unavailable(exc) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthorized("the provider sent no ID token; check auth.oidc.scopes has openid")
        return self._account(self.claims(id_token, nonce))

    def claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims, once its signature, issuer, audience, expiry and nonce hold."""
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), algorithms=ALGORITHMS)
            except JoseError:  # signed with a key newer than ours: read the keys once again
                decoded = jwt.decode(id_token, self._key_set(fresh=True), algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self._s.issuer},
                aud={"essential": True, "value": self._s.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            log.warning("OIDC: an ID token was refused: %s", exc)
            raise Unauthorized(f"the ID token is not valid ({exc}); sign in again") from None
        return dict(decoded.claims)

    # ---- the provider -----------------------------------------------------------------------

    def _client(self) -> OAuth2Client:
        return OAuth2Client(
            self._s.client_id,
            self._secret,
            scope=" ".join(self._scopes()),
            code_challenge_method="S256",
            timeout=self._s.timeout_s,
            token_endpoint_auth_method="client_secret_basic" if self._secret else "none",
            trust_env=False,
        )

    def _scopes(self) -> list[str]:
        return ["openid", *(s for s in self._s.scopes if s != "openid")]

    def _discovery(self) -> dict[str, Any]:
        if self._config is None:
            url = self._s.issuer.rstrip("/") + "/.well-known/openid-configuration"
            config = self._get(url)
            if config.get("issuer") != self._s.issuer:
                raise DirectoryUnavailable(
                    f"setting auth.oidc.issuer: {self._s.issuer!r}, but the provider calls "
                    f"itself {config.get('issuer')!r}; set it exactly so"
                )
            self._config = config
        return self._config

    def _key_set(self, fresh: bool = False) -> KeySet:
        if self._keys is None or fresh:
            self._keys = KeySet.import_key_set(self._get(self._discovery()["jwks_uri"]))  # type: ignore[arg-type]
        return self._keys

    def _get(self, url: str) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=self._s.timeout_s, trust_env=False) as http:
                reply = http.get(url)
                reply.raise_for_status()
                body: dict[str, Any] = reply.json()
                return body
        except (httpx.HTTPError, ValueError) as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: Exception) -> DirectoryUnavailable:
        log.warning("OIDC %s: %s", self._s.issuer, exc)
        return DirectoryUnavailable(
            f"the sign-in provider ({self._s.issuer}, auth.oidc.issuer) "
            f"cannot be reached: {exc}; local accounts can still sign in"
        )

    def _account(self, claims: dict[str, Any]) -> DirectoryAccount:
        s = self._s
        name = claims.get(s.name_claim) or claims.get("email") or claims["sub"]
        groups = claims.get(s.groups_claim) or []
        groups = [str(g) for g in groups] if isinstance(groups, list) else [str(groups)]
        admin = in_admin_groups(groups, s.admin_groups)
        if s.role_claim:
            roles = claims.get(s.role_claim) or []
            roles = roles if isinstance(roles, list) else [roles]
            admin = bool(admin) or "admin" in [str(r).casefold() for r in roles]
        email = claims.get(s.email_claim)
        return DirectoryAccount(
            f"{claims['iss']}|{claims['sub']}",
            str(name)[:64],
            str(email) if email else None,
            groups,
            admin,
        )


def checked(s: OidcSettings) -> OidcSettings:
    parts = urlsplit(s.issuer)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ApplianceError(
            f"setting auth.oidc.issuer: {s.issuer!r} must be an https:// URL "
            "(http:// only on loopback)"
        )
    if not s.client_id:
        raise ApplianceError(
            "setting auth.oidc.client_id: give the appliance's client id at the provider"
        )
    if s.client_secret_file and not Path(s.client_secret_file).is_file():
        raise ApplianceError(
            f"setting auth.oidc.client_secret_file: {s.client_secret_file} is "
            "not a file; create it or fix the path"
        )
    return s


def _secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ApplianceError(
            f"setting auth.oidc.client_secret_file: {path} cannot be read "
            f"({exc}); make it readable by this user"
        ) from None
