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
