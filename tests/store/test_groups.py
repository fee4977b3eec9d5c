"""Groups on a real SQLite file: an admin's memberships and a directory's kept apart, one name
one group whatever its case, and accounts of the directory made, updated and shut out."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.accounts.service import Accounts
from appliance.errors import Conflict, InvalidRequest, NotFound
from appliance.store.db import Database
from appliance.store.users import UserStore

PASSWORD = "correct horse battery"  # noqa: S105 - a test account


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(UserStore(Database(tmp_path / "appliance.db")))


def test_a_directory_sync_replaces_its_own_memberships_only(accounts: Accounts) -> None:
    user = accounts.add("ingrid", PASSWORD)
    accounts.add_to_group("ingrid", "Project X")  # an admin's
    store = accounts.users
    assert store.set_groups(user.id, ["HR", "staff", " "], "ldap") == ["HR", "Project X", "staff"]
    assert store.set_groups(user.id, ["staff"], "ldap") == ["Project X", "staff"]  # left HR
    assert accounts.groups_of(user) == {"project x", "staff"}
    assert store.set_groups(user.id, [], "ldap") == ["Project X"]
    # the same name in another case is the same group
    assert accounts.add_to_group("ingrid", "project x") == ["Project X"]


def test_groups_list_their_members_and_sources(accounts: Accounts) -> None:
    a, b = accounts.add("ann", PASSWORD), accounts.add("bo", PASSWORD)
    accounts.users.set_groups(a.id, ["hr"], "ldap")
    accounts.users.set_groups(b.id, ["HR"], "ldap")
    accounts.add_to_group("bo", "finance")
    listed = {g.name: (g.source, g.members) for g in accounts.users.groups()}
    assert listed == {"finance": ("local", ["bo"]), "hr": ("ldap", ["ann", "bo"])}
    accounts.remove_from_group("bo", "finance")  # the last member: the local group goes
    assert [g.name for g in accounts.users.groups()] == ["hr"]
    with pytest.raises(NotFound):
        accounts.remove_from_group("bo", "finance")
    with pytest.raises(InvalidRequest):
        accounts.add_to_group("bo", "two\nlines")


def test_directory_accounts_are_made_updated_and_shut_out(accounts: Accounts) -> None:
    store = accounts.users
    made = store.upsert_external("ldap", "uid=ola,ou=people,dc=x", "ola", "employee", "o@x")
    assert (made.source, made.email, made.role) == ("ldap", "o@x", "employee")
    assert store.password_hash(made.id) is None  # the directory checks the password
    again = store.upsert_external("ldap", "uid=ola,ou=people,dc=x", "ola", "admin", None)
    assert again.id == made.id
    assert again.role == "admin"
    assert store.by_external("ldap", "uid=ola,ou=people,dc=x") == again
    assert store.external("ldap") == [(again, "uid=ola,ou=people,dc=x")]
    assert store.by_external("oidc", "uid=ola,ou=people,dc=x") is None
    _, secret = accounts.create_key("ola")
    store.add_session(made.id, "token", "csrf", 3600)
    store.end_access(made.id)
    assert accounts.user_for_key(secret) is None
    assert accounts.session("token") is None
    assert store.by_id(made.id).disabled

    accounts.add("kari", PASSWORD)  # a local account is never taken over by the directory's
    with pytest.raises(Conflict, match="exists already, not from oidc"):
        store.upsert_external("oidc", "https://idp|kari", "kari", "employee", None)
