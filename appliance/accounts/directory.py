"""The seam to a company directory: who an account is there and which groups it is in."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import msgspec

from appliance.store.users import Role, Source


class DirectoryAccount(msgspec.Struct, frozen=True):
    """An account as the directory reads now."""

    external_id: str  # never changes for the account there (entryUUID, objectGUID, iss|sub)
    name: str
    email: str | None
    groups: list[str]
    admin: bool | None  # None: the directory does not decide the role


class Directory(Protocol):
    """A directory that checks passwords itself (LDAP). Raises DirectoryUnavailable when it
    cannot be asked; None means no such account, a wrong password, or disabled there."""

    source: Source

    def authenticate(self, name: str, password: str) -> DirectoryAccount | None: ...

    def lookup(self, external_id: str) -> DirectoryAccount | None:
        """The account as it reads now; None when gone or disabled in the directory."""
        ...


class SingleSignOn(Protocol):
    """A provider the browser is sent to (OIDC): it checks the password, we check its word."""

    source: Source
    display_name: str

    def begin(self, redirect_uri: str) -> str:
        """Where to send the browser to sign in."""
        ...

    def finish(self, state: str, code: str) -> DirectoryAccount:
        """The account, from what the browser brought back (Unauthorized when not valid)."""
        ...


def role_for(admin: bool | None, current: Role | None) -> Role:
    """The directory's word on the role where it has one, else the role as it is here."""
    if admin is None:
        return current or "employee"
    return "admin" if admin else "employee"


def in_admin_groups(groups: Iterable[str], admin_groups: Iterable[str]) -> bool | None:
    """Whether any of `groups` is an admin group (any case); None when none are configured."""
    wanted = {g.casefold() for g in admin_groups}
    if not wanted:
        return None
    return any(g.casefold() in wanted for g in groups)
