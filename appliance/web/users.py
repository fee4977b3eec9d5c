"""Accounts over HTTP: one's own API keys; for admins, the user list and erasing data.

Every handler reads or writes SQLite, and the audit log of a key's creation runs the redactor
(spaCy): all run on threads, none on the event loop."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, delete, get, patch, post
from msgspec import Meta

from appliance.accounts.passwords import MIN_LENGTH
from appliance.accounts.service import NAME_PATTERN
from appliance.errors import Conflict, Forbidden, InvalidRequest
from appliance.store.users import ApiKey, User
from appliance.web.auth import ADMIN, Identity
from appliance.web.deps import JSONBody, PathId, RowId, ServicesDep, UserDep


class UserView(msgspec.Struct):
    """An account as the Users page shows it."""

    id: int
    name: str
    role: str
    disabled: bool
    created_at: float
    source: str  # local, ldap or oidc: where the account and its password live
    email: str | None
    groups: list[str]  # the directory's and the admins' (local) groups together


# A group name: one line, not blank (as the store takes it, store/users.py).
GroupName = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^[^\n\r\t]*\S[^\n\r\t]*$")]


class GroupChange(msgspec.Struct, forbid_unknown_fields=True):
    add: list[GroupName] = []
    remove: list[GroupName] = []


@get("/api/users", opt=ADMIN, sync_to_thread=True)
def list_users(services: ServicesDep) -> list[UserView]:
    """Every account with its source (local, ldap, oidc) and groups."""
    return [_view(u, g) for u, g in services.accounts.listing()]


@patch("/api/users/{name:str}/groups", opt=ADMIN, sync_to_thread=True)
def change_groups(
    name: PathId, data: JSONBody[GroupChange], services: ServicesDep, user: UserDep
) -> dict[str, list[str]]:
    """Puts the user (local or from the directory) in local groups (`add`, made when new) and
    takes them out of groups (`remove`); the user's groups after."""
    groups = services.accounts.change_groups(name, data.add, data.remove)
    changes = [f"+{g}" for g in data.add] + [f"-{g}" for g in data.remove]
    services.audit.record(user.name, "user.groups", name, " ".join(changes))
    return {"groups": groups}


def _view(u: User, groups: list[str]) -> UserView:
    return UserView(u.id, u.name, u.role, u.disabled, u.created_at, u.source, u.email, groups)


# a thread: the erasure ends with a WAL checkpoint (ms per MB), not for the event loop
@delete("/api/users/{name:str}/data", opt=ADMIN, status_code=200, sync_to_thread=True)
def erase_user_data(name: PathId, services: ServicesDep, user: UserDep) -> dict[str, int]:
    """Deletes every conversation of the user `name` (the account itself stays), and erases
    them from the database file."""
    target = services.accounts.users.by_name(name)
    deleted = services.conversations.delete_all(target.id)
    services.audit.record(user.name, "user.erase", target.name, f"{deleted} conversations")
    return {"deleted": deleted}


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(min_length=1, max_length=64)] = "api"
    expires_in_days: Annotated[int, Meta(ge=1, le=3650)] | None = None  # or:
    expires_at: Annotated[float, Meta(gt=0)] | None = None  # Unix time; neither: never expires

    def expiry(self) -> float | None:
        if self.expires_in_days is not None and self.expires_at is not None:
            raise InvalidRequest("give expires_in_days or expires_at, not both", param="expires_at")
        if self.expires_in_days is not None:
            return time.time() + self.expires_in_days * 86400
        return self.expires_at


class CreatedKey(msgspec.Struct):
    key: ApiKey
    secret: str  # shown this once; only its hash is kept


@get("/api/keys", sync_to_thread=True)
def my_keys(services: ServicesDep, user: UserDep) -> list[ApiKey]:
    """The signed-in user's API keys (prefixes only), revoked and expired ones too."""
    return services.accounts.users.keys(user.id)


@post("/api/keys", status_code=201, sync_to_thread=True)
def create_key(
    request: Request[Any, Any, Any], data: JSONBody[NewKey], services: ServicesDep, user: UserDep
) -> CreatedKey:
    """A new key for the signed-in user, with a session only: a key that could make keys would
    outlive its own revocation. A new password revokes every key."""
    identity: Identity = request.state.identity
    if identity.session is None:
        raise Forbidden(
            "an API key cannot create API keys: sign in on the page (My API keys) "
            "or run `appliance keys create USER` on the server"
        )
    key, secret = services.accounts.create_key(user.name, data.name, data.expiry())
    services.audit.record(
        user.name, "key.create", user.name, f"key {key.id} ({key.name})", private=True
    )
    return CreatedKey(key=key, secret=secret)


@delete("/api/keys/{key_id:int}", status_code=200, sync_to_thread=True)
def revoke_key(key_id: RowId, services: ServicesDep, user: UserDep) -> dict[str, str]:
    services.accounts.users.revoke_key(user.id, key_id)
    services.audit.record(user.name, "key.revoke", user.name, f"key {key_id}")
    return {"status": "revoked"}


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
    # the schema says what accounts.add checks (whose messages say what to type instead)
    name: Annotated[str, Meta(min_length=1, max_length=64,
                              extra_json_schema={"pattern": f"^{NAME_PATTERN}$"})]  # fmt: skip
    password: Annotated[str, Meta(max_length=1024, extra_json_schema={"minLength": MIN_LENGTH})]
    role: Literal["admin", "employee"] = "employee"


class UserChange(msgspec.Struct, forbid_unknown_fields=True):
    disabled: bool


@post("/api/users", opt=ADMIN, status_code=201, sync_to_thread=True)  # argon2 too
def add_user(data: JSONBody[NewUser], services: ServicesDep, user: UserDep) -> User:
    made = services.accounts.add(data.name, data.password, data.role)
    services.audit.record(user.name, "user.add", made.name, made.role)
    return made


@patch("/api/users/{name:str}", opt=ADMIN, sync_to_thread=True)
def change_user(
    name: PathId, data: JSONBody[UserChange], services: ServicesDep, user: UserDep
) -> User:
    if name.lower() == user.name.lower() and data.disabled:
        raise Conflict("you cannot disable your own account")
    changed = services.accounts.set_disabled(name, data.disabled)
    services.audit.record(user.name, "user.disable" if data.disabled else "user.enable", name)
    return changed
