"""Sign-in with a real OpenLDAP: the user's bind checks the password, groups (nested too) and
the admin group are synced, typed names are escaped, and the refresh ends a leaver's access."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import msgspec
import pytest

from appliance.accounts.ldap import LdapDirectory
from appliance.accounts.service import Accounts
from appliance.accounts.sync import DirectorySync
from appliance.config import LdapSettings
from appliance.errors import ApplianceError, DirectoryUnavailable
from appliance.store.audit import AuditLog
from appliance.store.db import Database
from appliance.store.users import UserStore
from tests.directory.slapd import (
    GROUPS,
    PASSWORDS,
    PEOPLE,
    READER_DN,
    READER_PASSWORD,
    Slapd,
    free_port,
    group_dn,
    user_dn,
)

LOCAL_PASSWORD = "a local password"  # noqa: S105 - a test account
_fresh = itertools.count()


def ldap_settings(slapd: Slapd, tmp_path: Path, **extra: object) -> LdapSettings:
    secret = tmp_path / "bind-password"
    secret.write_text(READER_PASSWORD + "\n")
    return msgspec.convert(
        {
            "url": slapd.url,
            "bind_dn": READER_DN,
            "bind_password_file": str(secret),
            "user_base": PEOPLE,
            "admin_groups": ["Appliance-Admins"],
            "group_base": GROUPS,
            **extra,
        },
        LdapSettings,
    )


def make_accounts(tmp_path: Path, settings: LdapSettings, local: bool = True) -> Accounts:
    return Accounts(
        UserStore(Database(tmp_path / "appliance.db")),
        directory=LdapDirectory(settings),
        local=local,
    )


@pytest.fixture
def accounts(slapd: Slapd, tmp_path: Path) -> Accounts:
    return make_accounts(tmp_path, ldap_settings(slapd, tmp_path))


def new_user(slapd: Slapd, groups: list[str]) -> str:
    """A directory user of its own (tests that change the directory don't share one)."""
    name = f"temp{next(_fresh)}"
    slapd.add_user(name, PASSWORDS["alice"])
    for group in groups:  # groupOfNames needs a member left when the user is taken out
        slapd.add_group(f"{name}-{group}", [user_dn(name), READER_DN])
    return name


def test_a_directory_user_signs_in_with_the_directory_password(accounts: Accounts) -> None:
    found = accounts.sign_in("alice", PASSWORDS["alice"])
    assert found is not None
    user = found[0]
    assert (user.name, user.source, user.role, user.email) == (
        "alice",
        "ldap",
        "employee",
        "alice@example.com",
    )
    assert accounts.users.password_hash(user.id) is None  # the directory keeps it
    assert accounts.sign_in("alice", "wrong password") is None
    assert accounts.sign_in("alice", "") is None  # an anonymous bind must not pass
    assert accounts.sign_in("nobody", PASSWORDS["alice"]) is None
    again = accounts.sign_in("ALICE", PASSWORDS["alice"])  # the same account, any case
    assert again is not None
    assert again[0].id == user.id


def test_groups_nested_and_cyclic_come_from_the_directory(accounts: Accounts) -> None:
    carol = accounts.sign_in("carol", PASSWORDS["carol"])
    assert carol is not None
    # engineering directly, staff through engineering; loop-a and loop-b contain each other
    assert accounts.users.groups_of(carol[0].id) == ["engineering", "loop-a", "loop-b", "staff"]
    bob = accounts.sign_in("bob", PASSWORDS["bob"])
    assert bob is not None
    assert bob[0].role == "admin"  # appliance-admins, matched without case
    assert accounts.groups_of(bob[0]) == {"appliance-admins", "hr", "staff"}


def test_a_group_search_finds_the_same_groups(slapd: Slapd, tmp_path: Path) -> None:
    accounts = make_accounts(tmp_path, ldap_settings(slapd, tmp_path, group_lookup="search"))
    carol = accounts.sign_in("carol", PASSWORDS["carol"])
    assert carol is not None
    assert accounts.users.groups_of(carol[0].id) == ["engineering", "loop-a", "loop-b", "staff"]
    flat = make_accounts(tmp_path / "flat", ldap_settings(slapd, tmp_path, nested="none"))
    alice = flat.sign_in("alice", PASSWORDS["alice"])
    assert alice is not None
    assert flat.users.groups_of(alice[0].id) == ["engineering"]  # staff is a nested one


def test_admin_groups_may_name_a_dn_and_local_groups_stay(slapd: Slapd, tmp_path: Path) -> None:
    settings = ldap_settings(slapd, tmp_path, admin_groups=[group_dn("hr").upper()])
    accounts = make_accounts(tmp_path, settings)
    bob = accounts.sign_in("bob", PASSWORDS["bob"])
    assert bob is not None
    assert bob[0].role == "admin"
    accounts.add_to_group("bob", "payroll")  # an admin's group: the directory leaves it
    assert accounts.sign_in("bob", PASSWORDS["bob"]) is not None
    assert "payroll" in accounts.groups_of(bob[0])


@pytest.mark.parametrize(
    "typed",
    [
        "*",
        "al*",
        "alice)(|(uid=*",
        "*)(uid=*))(|(uid=*",
        "alice\x00",
        "(uid=alice)",
        "alice)(objectClass=*",
    ],
)
def test_the_typed_name_is_escaped(accounts: Accounts, typed: str) -> None:
    # unescaped, each of these finds alice (or everyone) and alice's password would pass
    assert accounts.sign_in(typed, PASSWORDS["alice"]) is None
    assert accounts.users.count() == 0


def test_a_local_account_wins_over_the_directory_name(accounts: Accounts) -> None:
    accounts.add("alice", LOCAL_PASSWORD)
    assert accounts.sign_in("alice", PASSWORDS["alice"]) is None  # the local password only
    found = accounts.sign_in("alice", LOCAL_PASSWORD)
    assert found is not None
    assert found[0].source == "local"


def test_without_local_sign_in_only_the_directory_passes(slapd: Slapd, tmp_path: Path) -> None:
    accounts = make_accounts(tmp_path, ldap_settings(slapd, tmp_path), local=False)
    accounts.add("root", LOCAL_PASSWORD, "admin")
    assert accounts.sign_in("root", LOCAL_PASSWORD) is None
    assert accounts.sign_in("alice", PASSWORDS["alice"]) is not None


def test_a_directory_password_is_not_set_here(accounts: Accounts) -> None:
    assert accounts.sign_in("alice", PASSWORDS["alice"]) is not None
    with pytest.raises(ApplianceError, match="change the password there"):
        accounts.set_password("alice", "a new long password")


def test_the_refresh_follows_the_directory(
    slapd: Slapd, accounts: Accounts, tmp_path: Path
) -> None:
    leaver, mover = new_user(slapd, ["team"]), new_user(slapd, ["team", "other"])
    for name in (leaver, mover):
        assert accounts.sign_in(name, PASSWORDS["alice"]) is not None
    gone = accounts.users.by_name(leaver)
    _, key = accounts.create_key(leaver)
    audit = AuditLog(Database(tmp_path / "appliance.db"))
    sync = DirectorySync(accounts, accounts.directory, 900, audit)  # type: ignore[arg-type]
    slapd.remove_member(f"{mover}-team", user_dn(mover))
    slapd.delete(user_dn(leaver))
    assert sync.refresh() == (1, 1)
    assert accounts.users.groups_of(accounts.users.by_name(mover).id) == [f"{mover}-other"]
    assert accounts.users.by_name(leaver).disabled
    assert accounts.user_for_key(key) is None
    assert accounts.users.keys(gone.id)[0].revoked_at is not None
    assert accounts.session("any") is None
    assert [r.target for r in audit.records(action="user.end_access")] == [leaver]


def test_the_refresh_ends_sessions_of_a_disabled_account(slapd: Slapd, tmp_path: Path) -> None:
    name = new_user(slapd, [])
    settings = ldap_settings(slapd, tmp_path, disabled_filter="(employeeType=left)")
    accounts = make_accounts(tmp_path, settings)
    found = accounts.sign_in(name, PASSWORDS["alice"])
    assert found is not None
    with slapd.admin() as c:
        assert c.modify(user_dn(name), {"employeeType": [("MODIFY_ADD", ["left"])]})
    assert accounts.sign_in(name, PASSWORDS["alice"]) is None  # disabled there: refused
    sync = DirectorySync(
        accounts,
        accounts.directory,
        900,  # type: ignore[arg-type]
        AuditLog(Database(tmp_path / "appliance.db")),
    )
    assert sync.refresh() == (0, 1)
    assert accounts.session(found[1]) is None


def test_a_directory_that_is_down_fails_clearly(slapd: Slapd, tmp_path: Path) -> None:
    down = ldap_settings(slapd, tmp_path, url=f"ldap://127.0.0.1:{free_port()}", timeout_s=2)
    accounts = make_accounts(tmp_path, down)
    accounts.add("local", LOCAL_PASSWORD)
    with pytest.raises(DirectoryUnavailable, match=r"auth.ldap.url\) cannot be reached"):
        accounts.sign_in("alice", PASSWORDS["alice"])
    assert accounts.sign_in("local", LOCAL_PASSWORD) is not None  # local accounts still work
    sync = DirectorySync(
        accounts,
        accounts.directory,
        900,  # type: ignore[arg-type]
        AuditLog(Database(tmp_path / "appliance.db")),
    )
    accounts.users.upsert_external("ldap", "some-id", "someone", "employee", None)
    with pytest.raises(DirectoryUnavailable):
        sync.refresh()
    assert not accounts.users.by_name("someone").disabled  # down is not gone


def test_a_wrong_service_password_names_the_setting(slapd: Slapd, tmp_path: Path) -> None:
    settings = ldap_settings(slapd, tmp_path)
    Path(settings.bind_password_file).write_text("not it")
    with pytest.raises(DirectoryUnavailable, match="bind_password_file"):
        make_accounts(tmp_path, settings).sign_in("alice", PASSWORDS["alice"])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"url": "http://x"}, "auth.ldap.url"),
        ({"url": "ldaps://x", "start_tls": True}, "auth.ldap.start_tls"),
        ({"user_base": ""}, "auth.ldap.user_base"),
        ({"user_filter": "(uid=alice)"}, "auth.ldap.user_filter"),
        ({"nested": "in_chain", "group_base": ""}, "auth.ldap.group_base"),
        ({"bind_password_file": "/nonexistent"}, "auth.ldap.bind_password_file"),
        ({"ca_file": "/nonexistent"}, "auth.ldap.ca_file"),
    ],
)
def test_bad_settings_name_the_setting(
    slapd: Slapd, tmp_path: Path, change: dict[str, object], named: str
) -> None:
    with pytest.raises(ApplianceError, match=named):
        LdapDirectory(ldap_settings(slapd, tmp_path, **change))


def test_the_refresh_runs_on_its_own_thread(
    slapd: Slapd, accounts: Accounts, tmp_path: Path
) -> None:
    name = new_user(slapd, [])
    found = accounts.sign_in(name, PASSWORDS["alice"])
    assert found is not None
    sync = DirectorySync(
        accounts,
        accounts.directory,
        0.1,  # type: ignore[arg-type]
        AuditLog(Database(tmp_path / "appliance.db")),
    )
    sync.start()
    try:
        slapd.delete(user_dn(name))
        deadline = time.monotonic() + 30  # a bound on the wait, not a timing check
        while accounts.session(found[1]) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accounts.session(found[1]) is None
    finally:
        sync.stop()
